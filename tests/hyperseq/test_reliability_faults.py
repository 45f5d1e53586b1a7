"""Reliability faults a hostile probe found: a job name that shares another job's storage
folders, special-filesystem storage, a job whose every trial failed, and a final phase whose
default config trained on other data than the space fixes.

Usage errors (names, storage) run through the CLI with no Ray; the jobs run on a real local Ray
and a sqlite MLflow store.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from hyperseq.cli import cli
from hyperseq.jobs import JobFailed, run_search
from hyperseq.tracking import tags as T
from drivers import usage_error
from hyperseq.tracking.mlflow_store import trial_config
from hyperseq.tracking.store import open_store

GOOD = "name: tiny\ntask: noop\ndecisions:\n  - {name: a, choices: [1, 2]}\n"


@pytest.fixture
def env(tmp_path: Path) -> tuple[Path, list[str]]:
    (tmp_path / "good.yaml").write_text(GOOD)
    return tmp_path, ["--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"]




# ---- 3. a job name that is another job's final-phase folder ------------------------------------
@pytest.mark.parametrize("name", ["cf.final", "cf.FINAL"])
def test_a_job_name_ending_in_final_is_refused_and_nothing_is_written(env, name: str) -> None:
    tmp, opts = env
    result = CliRunner().invoke(cli, ["run", str(tmp / "good.yaml"), "--name", name, *opts,
                                      "--storage", str(tmp / "ray")])
    usage_error(result, ["'--name'", name, ".final"])
    assert not (tmp / "mlflow.db").exists() and not (tmp / "ray").exists()


def test_a_job_whose_final_folder_is_taken_is_refused(env) -> None:
    """A folder ``cf.final`` left by a job of that name (allowed before) is not job cf's to use."""
    tmp, opts = env
    (tmp / "ray" / "cf.final").mkdir(parents=True)
    (tmp / "ray" / "cf.final" / "marker").write_text("another job's")
    result = CliRunner().invoke(cli, ["run", str(tmp / "good.yaml"), "--name", "cf", *opts,
                                      "--storage", str(tmp / "ray")])
    usage_error(result, ["'--name'", "cf", str(tmp / "ray" / "cf.final"), "already exists"])
    assert not (tmp / "mlflow.db").exists()
    assert sorted(p.name for p in (tmp / "ray").iterdir()) == ["cf.final"]
    assert (tmp / "ray" / "cf.final" / "marker").read_text() == "another job's"


# ---- 7. storage on a special filesystem ---------------------------------------------------------
def _refuses_files(directory: str) -> bool:
    """`directory` passes permission and read-only-mount checks yet refuses a new folder."""
    if not (os.path.isdir(directory) and os.access(directory, os.W_OK | os.X_OK)) or \
            os.statvfs(directory).f_flag & os.ST_RDONLY:
        return False
    try:
        os.rmdir(tempfile.mkdtemp(dir=directory))
    except OSError:
        return True
    return False


@pytest.mark.skipif(not _refuses_files("/sys/kernel"),
                    reason="needs a writable-looking /sys/kernel that refuses files (Linux sysfs)")
def test_storage_on_sysfs_is_a_usage_error_before_ray_starts(env) -> None:
    tmp, opts = env
    result = CliRunner().invoke(cli, ["run", str(tmp / "good.yaml"), *opts, "--storage", "/sys/kernel/x"])
    line = usage_error(result, ["'--storage'", "/sys/kernel/x", "/sys/kernel", "cannot"])
    assert "not permitted" in line or "denied" in line, line            # the cause, from the OS
    assert "Traceback" not in result.output
    assert not (tmp / "mlflow.db").exists() and not os.path.exists("/sys/kernel/x")


def test_the_storage_probe_leaves_nothing_behind(env) -> None:
    tmp, opts = env
    (tmp / "ray").mkdir()
    result = CliRunner().invoke(cli, ["run", str(tmp / "missing.yaml"), *opts,      # checked after storage
                                      "--storage", str(tmp / "ray")])
    usage_error(result, ["missing.yaml"])
    assert list((tmp / "ray").iterdir()) == []


# ---- 2. every search trial fails --------------------------------------------------------------
CRASHING = """\
name: crashing
task: noop
decisions:
  - {name: a, choices: [1, 2, 3]}
  - {name: outcome, choices: [crash]}
"""


def _random_job(tmp_path: Path, space: str, name: str, *opts: str) -> tuple[str, Any]:
    """`hyperseq run` of the space file in `tmp_path`, random searcher, one epoch, on a sqlite
    store and storage in `tmp_path`: (tracking URI, click result)."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = CliRunner().invoke(cli, ["run", str(tmp_path / space), "--name", name, "--epochs", "1", *opts,
                                      "--searcher", "random", "--tracking-uri", uri,
                                      "--storage", str(tmp_path / "ray")])
    return uri, result


@pytest.mark.slow
def test_a_job_whose_every_trial_failed_ends_failed_with_the_first_error(ray_cluster, tmp_path: Path) -> None:
    (tmp_path / "crash.yaml").write_text(CRASHING)
    uri, result = _random_job(tmp_path, "crash.yaml", "allfail", "--trials", "3", "--max-failures", "0",
                              "--final-top", "2")
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error")]   # after the progress bar
    assert len(lines) == 1 and result.stderr.strip().endswith(lines[0]), result.stderr
    for words in ("allfail", "all 3 search trials failed", "noop child crashed on purpose"):
        assert words in lines[0], (words, lines[0])
    assert "Traceback" not in result.output
    [parent] = open_store(uri).job_runs("allfail")
    assert parent.info.status == "FAILED"
    runs = open_store(uri).trial_runs(parent.info.run_id)
    assert sorted(r.info.status for r in runs) == ["FAILED"] * 3, [(r.info.status, r.data.tags) for r in runs]
    assert all(r.data.tags.get(T.TAG_PHASE, "search") == "search" for r in runs)   # no final phase, no default
    assert not (tmp_path / "ray" / "allfail.final").exists()


@pytest.mark.slow
def test_run_search_raises_job_failed_when_every_trial_failed(ray_cluster, tmp_path: Path) -> None:
    (tmp_path / "crash.yaml").write_text(CRASHING)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with pytest.raises(JobFailed, match="all 2 search trials failed.*crashed on purpose"):
        run_search(tmp_path / "crash.yaml", name="apifail", trials=2, epochs=1, max_failures=0, final_top=0,
                   searcher="random", tracking_uri=uri, storage=tmp_path / "ray")
    [parent] = open_store(uri).job_runs("apifail")
    assert parent.info.status == "FAILED"


# ---- 1. the final phase's default trains on the space's data, at the space's size ----------------
OWN_DATA = """\
name: own_data
task: char_lm
decisions:
  - {name: data_path, choices: ['DATA']}
  - {name: cell, choices: [rnn, gru]}
  - {name: hidden, choices: [8]}
  - {name: embed, choices: [8]}
  - {name: seq_len, choices: [16]}
  - {name: batch_size, choices: [4]}
  - {name: steps_per_epoch, choices: [5]}
  - {name: eval_chars, choices: [256]}
"""


@pytest.mark.slow
def test_the_final_default_takes_the_spaces_fixed_decisions_and_logs_them(ray_cluster, tmp_path: Path,
                                                                          one_thread) -> None:
    corpus = tmp_path / "mine.txt"
    corpus.write_text("ab" * 4000)                # two characters: any model's loss is near ln 2
    (tmp_path / "own.yaml").write_text(OWN_DATA.replace("DATA", str(corpus)))
    uri, result = _random_job(tmp_path, "own.yaml", "own", "--trials", "2", "--final-top", "1",
                              "--final-epochs", "1")
    assert result.exit_code == 0, result.output
    [parent] = open_store(uri).job_runs("own")
    final = [r for r in open_store(uri).trial_runs(parent.info.run_id) if r.data.tags.get(T.TAG_PHASE) == "final"]
    [default] = [r for r in final if r.data.tags.get(T.TAG_DEFAULT) == "true"]
    [finalist] = [r for r in final if r is not default]
    config = trial_config(default)
    fixed = {"data_path": str(corpus), "hidden": 8, "embed": 8, "seq_len": 16, "batch_size": 4,
             "steps_per_epoch": 5, "eval_chars": 256}
    assert config == {**fixed, "cell": "lstm"}       # the task's default where the space does not fix it
    assert default.data.params["data_path"] == str(corpus)             # logged as params too
    assert {k: str(v) for k, v in config.items()} == default.data.params
    # the same data and budget as the finalist: a two-character corpus, one epoch of 5 steps
    for run in (default, finalist):
        assert run.data.metrics["val_loss"] < 2.0, run.data.metrics     # tiny-shakespeare starts near 4.2
        assert run.data.metrics["epoch"] == 1
        assert run.data.metrics["steps"] == 5
    table = json.loads(CliRunner().invoke(cli, ["best", "own", "--top", "0", "--format", "json",
                                                "--tracking-uri", uri]).stdout)
    row = next(r for r in table if r["phase"] == "final" and r.get("default") in (True, "true"))
    assert row["data_path"] == str(corpus)
