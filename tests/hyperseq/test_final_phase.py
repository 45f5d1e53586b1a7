"""The final phase (top configs + the task's default retrained at the final budget), warm
start from earlier jobs, and a resume after the driver dies during the final phase."""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from click.testing import CliRunner
from drivers import driver, trial_runs, wait_until
from waiting import all_gone, state_kept_since, wait_for, writer_helpers

from hyperseq.cli import cli
from hyperseq.tracking import tags as T
from hyperseq.tracking.mlflow_store import trial_config
from hyperseq.tracking.store import open_store

SPACE = """\
name: fin
task: noop
decisions:
  - {name: a, choices: [1, 2, 3, 4, 5]}
  - {name: b, choices: [x, y]}
"""
OTHER = "name: other\ntask: noop\ndecisions:\n  - {name: c, choices: [1, 2]}\n"
pytestmark = pytest.mark.slow        # a Ray cluster and jobs with a final phase


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, ray_cluster) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("final")
    (tmp / "fin.yaml").write_text(SPACE)
    (tmp / "other.yaml").write_text(OTHER)
    return {"uri": f"sqlite:///{tmp / 'mlflow.db'}", "storage": str(tmp / "ray"), "dir": str(tmp)}


def _run(env: dict[str, str], *args: str) -> object:
    return CliRunner().invoke(cli, ["run", *args, "--tracking-uri", env["uri"], "--storage", env["storage"]])


def _runs(uri: str, job: str) -> list:
    [parent] = open_store(uri).job_runs(job)
    return open_store(uri).trial_runs(parent.info.run_id)


def test_final_phase_records_top_configs_and_the_default_and_ranks_them_first(env) -> None:
    result = _run(env, f"{env['dir']}/fin.yaml", "--trials", "6", "--epochs", "1", "--final-top", "2",
                  "--final-epochs", "2", "--name", "fin1", "--searcher", "random")
    assert result.exit_code == 0, result.output
    runs = _runs(env["uri"], "fin1")
    final = [r for r in runs if r.data.tags.get(T.TAG_PHASE) == "final"]
    search = [r for r in runs if r.data.tags.get(T.TAG_PHASE) == "search"]
    assert len(search) == 6 and len(final) == 3 and len(runs) == 9
    assert all(r.info.status == "FINISHED" for r in runs)
    defaults = [r for r in final if r.data.tags.get(T.TAG_DEFAULT) == "true"]
    assert len(defaults) == 1 and trial_config(defaults[0]) == {}
    top = sorted(search, key=lambda r: -r.data.metrics["reward"])
    want = []
    for run in top:                                     # the 2 best distinct search configs
        if trial_config(run) not in want:
            want.append(trial_config(run))
    assert sorted(map(json.dumps, (trial_config(r) for r in final if r not in defaults))) == \
        sorted(map(json.dumps, want[:2]))
    assert all(r.data.metrics["epoch"] == 2 and "train_seconds" in r.data.metrics for r in final)
    table = json.loads(CliRunner().invoke(cli, ["best", "fin1", "--top", "0", "--format", "json",
                                                "--tracking-uri", env["uri"]]).stdout)
    assert [row["phase"] for row in table[:3]] == ["final"] * 3 and len(table) == 9
    assert table[0]["reward"] == pytest.approx(max(r.data.metrics["reward"] for r in final))
    assert {"train_seconds", "trained_units", "default"} <= set(table[0])


def test_warm_start_errors_name_the_job_and_write_nothing(env) -> None:
    store = open_store(env["uri"])
    before = len(store.job_runs()) if store.exists() else 0
    bad = _run(env, f"{env['dir']}/fin.yaml", "--warm-start", "nosuchjob", "--trials", "2")
    assert bad.exit_code == 2 and "'--warm-start'" in bad.stderr and "nosuchjob" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    ok = _run(env, f"{env['dir']}/other.yaml", "--trials", "2", "--epochs", "1", "--final-top", "0",
              "--name", "oth1")
    assert ok.exit_code == 0, ok.output
    before += 1
    wrong = _run(env, f"{env['dir']}/fin.yaml", "--warm-start", "oth1", "--trials", "2")
    assert wrong.exit_code == 2 and "oth1" in wrong.stderr and "other" in wrong.stderr
    assert len(open_store(env["uri"]).job_runs()) == before           # nothing written


def test_warm_start_feeds_earlier_trials_to_the_searcher(env) -> None:
    result = _run(env, f"{env['dir']}/fin.yaml", "--trials", "3", "--epochs", "1", "--final-top", "0",
                  "--name", "warm1", "--warm-start", "auto")
    assert result.exit_code == 0, result.output
    [parent] = open_store(env["uri"]).job_runs("warm1")
    assert parent.data.params["warm_start"] == "fin1"                # auto: the finished jobs of `fin`
    seen = {json.dumps(trial_config(r), sort_keys=True) for r in _runs(env["uri"], "fin1")}
    mine = {json.dumps(trial_config(r), sort_keys=True) for r in _runs(env["uri"], "warm1")}
    assert len(mine) == 3 and not mine & seen      # the rnn learnt them: it proposes none again


def test_resume_after_a_sigkill_in_the_final_phase(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(SPACE + "  - {name: sleep, choices: [0.7]}\n")
    uri, storage = f"sqlite:///{tmp_path / 'm.db'}", tmp_path / "ray"

    def in_final_phase() -> bool:
        return (storage / "fk.final").exists() and any(
            r.data.tags.get(T.TAG_PHASE) == "final" and r.info.status == "RUNNING" for r in trial_runs(uri, "fk"))
    with driver(tmp_path, str(tmp_path / "s.yaml"), "--trials", "4", "--epochs", "1", "--final-top", "2",
                "--final-epochs", "4", "--name", "fk", "--tracking-uri", uri, "--storage", str(storage)) as proc:
        wait_until(proc, in_final_phase)
        wait_until(proc, lambda: state_kept_since(storage / "fk.final"))     # Tune saved the final phase
        writers = writer_helpers(proc.pid)
        assert writers, "found no MLflow writer helper of the driver to wait for"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    wait_for(lambda: all_gone(writers), 30, what="the killed driver's MLflow writer helper to exit")
    result = CliRunner().invoke(cli, ["resume", "fk", "--tracking-uri", uri, "--storage", str(storage)])
    assert result.exit_code == 0, result.output
    [job] = open_store(uri).job_runs("fk")
    assert job.info.status == "FINISHED"
    runs = trial_runs(uri, "fk")
    done = [r for r in runs if r.info.status == "FINISHED"]
    assert sorted(r.data.tags[T.TAG_PHASE] for r in done) == ["final"] * 3 + ["search"] * 4
    assert len({r.data.tags[T.TAG_TRIAL] for r in done}) == 7                # none duplicated
    assert all(r.info.status == "KILLED" for r in runs if r not in done)     # none RUNNING
