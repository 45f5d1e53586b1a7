"""Reliability: diverging children, concurrent MLflow writes, security basics.

Real local Ray (one instance, 8 logical CPUs so 8 noop trials run at once on a 2-core
machine) and a sqlite MLflow store per test. Driver crashes and worker crashes have their
own files (`test_reliability_resume.py`, `test_reliability_retry.py`); malformed input is in
`test_cli_errors.py`.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from hyperseq.cli import local as cli_module
from hyperseq.cli import cli
from hyperseq.jobs import resume_search, run_search
from hyperseq.jobs import JobError
from search_spaces import SpecError, load_space
from hyperseq.tracking import tags as T
from hyperseq.tracking.mlflow_store import trial_config
from hyperseq.tracking.store import default_tracking_uri, open_store

ROOT = Path(__file__).resolve().parents[2]

DIVERGING = """\
name: diverging_char_lm
task: char_lm
decisions:
  - name: optimizer
    choices: [sgd]
  - name: lr
    choices: [1000.0]
  - name: grad_clip
    choices: [0.0]
  - name: cell
    choices: [rnn, gru, lstm]        # 3 configs for 3 trials: the controller never repeats one
  - name: layers
    choices: [1]
  - repeat: layers
    decisions:
      - name: hidden
        choices: [8]
  - name: embed
    choices: [8]
  - name: seq_len
    choices: [16]
  - name: batch_size
    choices: [8]
  - name: steps_per_epoch
    choices: [10]
  - name: eval_chars
    choices: [256]
"""
RAY_CPUS = 8          # 8 concurrent noop trials (concurrent-writer test)
CHATTY = """\
name: chatty
task: noop
decisions:
  - name: a
    choices: [1, 2, 3, 4, 5, 6, 7, 8]
  - name: b
    choices: [x, y]
  - name: sleep
    choices: [0.2]
"""


def _env(tmp: Path) -> dict:
    return {"tracking_uri": f"sqlite:///{tmp / 'mlflow.db'}", "storage": tmp / "ray"}


def _controller_state(experiment: Path) -> dict:
    newest = max(experiment.glob("searcher-state-*.pkl"))         # named by session start time
    return torch.load(newest, weights_only=True)["searcher"]


# ---- 3. diverging children ----------------------------------------------------------------------
@pytest.mark.slow
def test_diverging_char_lm_gets_the_floor_and_does_not_poison_the_controller(
        ray_cluster, tmp_path: Path, one_thread) -> None:
    (tmp_path / "space.yaml").write_text(DIVERGING)
    env = _env(tmp_path)
    result = run_search(tmp_path / "space.yaml", final_top=0, searcher="rnn", trials=3, concurrency=2, epochs=2,
                        name="diverge", controller_options={"batch_size": 2}, **env)
    assert result.status == "FINISHED"
    [parent] = open_store(env["tracking_uri"]).job_runs("diverge")
    runs = open_store(env["tracking_uri"]).trial_runs(parent.info.run_id)
    assert len(runs) == 3
    for run in runs:                        # diverged: a failed trial, floor reward, flagged
        assert run.info.status == "FAILED" and run.data.tags["hyperseq.diverged"] == "true"
        assert run.data.metrics["diverged"] == 1.0 and run.data.metrics["reward"] == 0.0
        assert "val_loss" not in run.data.metrics or not math.isfinite(run.data.metrics["val_loss"])
    state = _controller_state(Path(result.storage_path))
    assert state["stats"]["told"] == 3 and state["stats"]["failed"] == 0     # floors are told
    assert state["stats"]["updates"] >= 1                                   # and trained on
    for name, tensor in state["policy"].items():
        assert torch.isfinite(tensor).all(), name
    assert math.isfinite(state["baseline"])


# ---- 5. concurrent writers ------------------------------------------------------------------------
@pytest.mark.slow
def test_eight_concurrent_trials_lose_no_metric_point(ray_cluster, tmp_path: Path, capfd) -> None:
    (tmp_path / "space.yaml").write_text(CHATTY)
    env = _env(tmp_path)
    trials, epochs = 8, 5
    result = run_search(tmp_path / "space.yaml", final_top=0, searcher="random", trials=trials, concurrency=8,
                        epochs=epochs, cpus_per_trial=1, name="chatty", **env)
    assert result.status == "FINISHED"
    uri = env["tracking_uri"]
    [parent] = open_store(uri).job_runs("chatty")
    runs = open_store(uri).trial_runs(parent.info.run_id)
    assert len(runs) == trials and all(r.info.status == "FINISHED" for r in runs)
    c = open_store(uri).client
    for metric in ("score", "reward", "train_loss", "fidelity"):
        points = [m for r in runs for m in c.get_metric_history(r.info.run_id, metric)]
        assert len(points) == trials * epochs, metric
        assert {(m.step) for m in points} == set(range(1, epochs + 1))
    assert len(c.get_metric_history(parent.info.run_id, "trials_completed")) == trials
    out, err = capfd.readouterr()
    assert "database is locked" not in out + err and "MLflow write" not in out + err


# ---- 6. security basics -----------------------------------------------------------------------------
UNSAFE = [re.compile(r"\byaml\.(unsafe_)?load\("), re.compile(r"yaml\.(Unsafe|Full)?Loader\b"),
          re.compile(r"(?<![.\w])eval\("), re.compile(r"(?<![.\w])exec\("),
          re.compile(r"\bpickle\.loads?\("), re.compile(r"\bcloudpickle\.loads?\("),
          re.compile(r"torch\.load\((?![^)]*weights_only=True)")]
# The writer helper unpickles the calls its own parent process sends over a private pipe.
TRUSTED = {("workers/writer.py", r"\bpickle\.loads?\(")}


def test_no_unsafe_deserialisation_or_eval_in_the_source() -> None:
    found = []
    for folder in ("controller", "workers", "search_spaces", "tasks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            for n, line in enumerate(path.read_text().splitlines(), 1):
                code = line.split("#", 1)[0]
                for pattern in UNSAFE:
                    if pattern.search(code) and (rel, pattern.pattern) not in TRUSTED:
                        found.append(f"{rel}:{n}: {line.strip()}")
    assert not found, "\n".join(found)


def test_yaml_python_tags_are_rejected_and_run_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    spec = tmp_path / "evil.yaml"
    spec.write_text(f"name: !!python/object/apply:os.system ['touch {marker}']\ntask: noop\n"
                    "decisions:\n  - name: a\n    choices: [1]\n")
    with pytest.raises(SpecError):
        load_space(spec)
    assert not marker.exists()


def test_ui_binds_to_localhost_by_default(monkeypatch, tmp_path: Path) -> None:
    calls = []
    monkeypatch.setattr(cli_module, "_serve", lambda cmd: calls.append(cmd) or 0)
    result = CliRunner().invoke(cli, ["ui", "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}",
                                      "--port", "5123"])
    assert result.exit_code == 0, result.output
    [cmd] = calls
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1" and cmd[cmd.index("--port") + 1] == "5123"
    assert "mlflow" in cmd and "ui" in cmd
    CliRunner().invoke(cli, ["ui", "--host", "0.0.0.0"])           # only when asked
    assert calls[-1][calls[-1].index("--host") + 1] == "0.0.0.0"


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", "x/../../y", "/abs", "-dash", "a" * 200])
def test_job_names_cannot_escape_the_storage_directory(tmp_path: Path, name: str) -> None:
    (tmp_path / "space.yaml").write_text(CHATTY)
    with pytest.raises(JobError):
        run_search(tmp_path / "space.yaml", final_top=0, name=name, **_env(tmp_path))
    with pytest.raises(JobError):
        resume_search(name, tracking_uri=_env(tmp_path)["tracking_uri"])
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "ray").exists()


def test_space_names_cannot_escape(tmp_path: Path) -> None:
    spec = tmp_path / "evil.yaml"
    spec.write_text("name: ../../evil\ntask: noop\ndecisions:\n  - name: a\n    choices: [1]\n")
    with pytest.raises(SpecError, match="name"):
        run_search(spec, final_top=0, **_env(tmp_path))
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "ray").exists()
