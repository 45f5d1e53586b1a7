"""Driver crash -> `hyperseq resume`: real Ray, real sqlite MLflow, noop children that sleep.

The driver (`python -m hyperseq.cli run ...`, a subprocess) is SIGKILLed while some trials
are done and others running, and Tune's newest state files are then cut short (as a kill
while Tune rewrites them leaves them). `hyperseq resume` must then finish the job: completed trials
keep their runs and are not run again, the controller continues from its checkpoint (its
ask/tell counters cover every trial), interrupted trials run again, and MLflow ends with one
FINISHED run per trial, the interrupted runs KILLED, the parent reused and FINISHED.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from drivers import driver, noop_space, running_for_a_while, wait_until
from waiting import all_gone, state_kept_since, wait_for, writer_helpers

from hyperseq.cli import cli
from hyperseq.tracking import tags as T
from hyperseq.tracking.mlflow_store import trial_config
from hyperseq.tracking.store import default_tracking_uri, open_store

TRIALS, EPOCHS, SLEEP = 6, 2, 1.5
SPACE = noop_space("sleepy", SLEEP)


def _children(uri: str, parent: str) -> list:
    return open_store(uri).trial_runs(parent) if open_store(uri).exists() else []


def _wait_mid_search(uri: str, experiment: Path, proc: subprocess.Popen, timeout: float = 120) -> str:
    """Poll the store until >= 2 trials FINISHED and >= 1 RUNNING; return the parent run id.

    Only once Tune's experiment directory exists: the driver has created the store by then
    (opening a sqlite store while another process creates it corrupts it).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "driver exited"
        jobs = open_store(uri).job_runs("crashy") if experiment.exists() else []
        if jobs:
            runs = _children(uri, jobs[0].info.run_id)
            status = [r.info.status for r in runs]
            if status.count("FINISHED") >= 2 and "RUNNING" in status:
                return jobs[0].info.run_id
        time.sleep(0.3)
    raise AssertionError("the search never reached a mid-search state")


@pytest.mark.slow
def test_sigkilled_driver_resumes_to_completion(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "space.yaml").write_text(SPACE)
    uri, storage = f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "ray"
    args = [str(tmp_path / "space.yaml"), "--final-top", "0", "--searcher", "rnn",
            "--trials", str(TRIALS), "--concurrency", "2", "--epochs", str(EPOCHS), "--name", "crashy",
            "--tracking-uri", uri, "--storage", str(storage), "--seed", "3"]
    t0 = time.monotonic()
    with driver(tmp_path, *args) as proc:                # its group (local Ray too) ends with it
        parent = _wait_mid_search(uri, storage / "crashy", proc)
        before = {r.data.tags[T.TAG_TRIAL]: r for r in _children(uri, parent)
                  if r.info.status == "FINISHED"}
        seen = time.time()  # Tune saves `before` after this, and the keeper keeps a copy of it
        wait_until(proc, lambda: state_kept_since(storage / "crashy", seen))
        wait_until(proc, lambda: running_for_a_while(_children(uri, parent)))
        writers = writer_helpers(proc.pid)
        assert writers, "found no MLflow writer helper of the driver to wait for"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    killed_at = time.monotonic() - t0
    wait_for(lambda: all_gone(writers), 30, what="the killed driver's MLflow writer helper to exit")
    at_crash = _children(uri, parent)
    assert [j.info.status for j in open_store(uri).job_runs("crashy")] == ["RUNNING"]
    assert any(r.info.status == "RUNNING" for r in at_crash)
    done_before = {r.data.tags[T.TAG_TRIAL]: r for r in at_crash if r.info.status == "FINISHED"}
    assert set(before) <= set(done_before) and 2 <= len(before) < TRIALS

    # The kill came while Tune rewrote its state (seen in 1 of 3 random kills before the last
    # good copy was kept): the newest experiment state and searcher state are cut short.
    for pattern in ("experiment_state-*.json", "searcher-state-*.pkl"):
        newest = max((storage / "crashy").glob(pattern))
        newest.write_bytes(newest.read_bytes()[:40])

    t1 = time.monotonic()
    result = CliRunner().invoke(cli, ["resume", "crashy", "--tracking-uri", uri, "--storage", str(storage)])
    resumed_in = time.monotonic() - t1
    assert result.exit_code == 0, result.output
    assert "restored from the last good copy" in caplog.text
    print(f"driver killed after {killed_at:.1f} s; resume took {resumed_in:.1f} s")

    [job] = open_store(uri).job_runs("crashy")
    assert job.info.run_id == parent and job.info.status == "FINISHED"
    runs = _children(uri, parent)
    finished = [r for r in runs if r.info.status == "FINISHED"]
    trial_ids = [r.data.tags[T.TAG_TRIAL] for r in finished]
    assert len(finished) == TRIALS and len(set(trial_ids)) == TRIALS       # one FINISHED run per trial
    for trial_id, run in before.items():                                   # kept, not re-run
        [now] = [r for r in finished if r.data.tags[T.TAG_TRIAL] == trial_id]
        assert now.info.run_id == run.info.run_id and now.data.metrics == run.data.metrics
    others = [r for r in runs if r.info.status != "FINISHED"]
    assert others and all(r.info.status == "KILLED" for r in others)       # none left RUNNING
    assert all(r.data.tags.get(T.TAG_INTERRUPTED) == "true" or r.data.tags.get("hyperseq.superseded") == "true"
               for r in others)                # cut short, or finished after the state resumed from
    # (their trials ran again: under the same id if the restored state knew them, else as new trials)
    for run in finished:
        assert len(open_store(uri).client.get_metric_history(run.info.run_id, "score")) == EPOCHS

    # The controller continued from its checkpoint: it asked and was told once per trial in all.
    # One file per Tune session (run, resume), named by its start time; Tune syncs them all
    # at each checkpoint, so their mtimes do not tell which is newer.
    ckpts = sorted((storage / "crashy").glob("searcher-state-*.pkl"))
    assert len(ckpts) == 2
    ckpt = ckpts[-1]
    state = torch.load(ckpt, weights_only=True)["searcher"]
    assert state["stats"]["asked"] == TRIALS and state["stats"]["told"] == TRIALS
    assert job.data.metrics["trials_completed"] == TRIALS

    again = CliRunner().invoke(cli, ["resume", "crashy", "--tracking-uri", uri])
    assert again.exit_code == 2 and "FINISHED" in again.stderr and "crashy" in again.stderr


def test_close_interrupted_reconciles_mlflow_with_tunes_checkpoint(tmp_path: Path, monkeypatch) -> None:
    """Each MLflow trial run ends as Tune's last experiment checkpoint says (no Ray needed)."""
    from types import SimpleNamespace

    import ray.tune
    from hyperseq.jobs.resume import close_interrupted
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    parent, exp = open_store(uri).start_job("j", {}, {})
    tune_says = {"done": ("TERMINATED", {"reward": 0.7}), "lost_close": ("TERMINATED", {"reward": 0.4}),
                 "running": ("RUNNING", {}), "late": ("RUNNING", {}), "crashed": ("ERROR", {}),
                 "unheard": ("TERMINATED", {"reward": 0.9, "epoch": 2, "trial_done": True,
                                            "child": {"epoch": 2, "reward": 0.9, "score": 0.9}})}
    mlflow_says = {"done": "FINISHED", "lost_close": "RUNNING", "running": "RUNNING",
                   "late": "FINISHED", "crashed": "FAILED"}
    for trial_id, status in mlflow_says.items():
        run = open_store(uri).open_child(exp, parent, "j", trial_id, {"a": 1})
        if status != "RUNNING":
            run.finish(status)
    trials = [SimpleNamespace(trial_id=t, status=s, last_result=r, config={"a": 1}) for t, (s, r) in tune_says.items()]
    monkeypatch.setattr(ray.tune, "ExperimentAnalysis", lambda path: SimpleNamespace(trials=trials))
    history = close_interrupted(uri, parent, str(tmp_path))
    assert history == [0.7, 0.4, None, 0.9]             # three done, one errored: 4 completed
    after = {r.data.tags[T.TAG_TRIAL]: r for r in open_store(uri).trial_runs(parent)}
    assert {t: r.info.status for t, r in after.items()} == {
        "done": "FINISHED", "lost_close": "FINISHED", "running": "KILLED", "late": "KILLED",
        "crashed": "FAILED", "unheard": "FINISHED"}
    unheard = after["unheard"]                          # the store missed it: recorded from Tune's state
    assert unheard.data.tags["hyperseq.recovered"] == "true" and unheard.data.params == {"a": "1"}
    assert unheard.data.metrics["reward"] == 0.9
    assert after["running"].data.tags[T.TAG_INTERRUPTED] == "true"
    assert after["late"].data.tags["hyperseq.superseded"] == "true"      # Tune re-runs it


class _Submits:
    """Records what a monitor queues (isolates its logic from the writer process)."""

    alive = True

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def submit(self, fn, *args, **kwargs) -> None:
        self.calls.append(args)


def test_a_resume_with_nothing_left_logs_the_counts_again() -> None:
    from hyperseq.jobs.monitor import JobMonitor
    idle = _Submits()
    JobMonitor("sqlite:///x.db", "run", 6, idle, history=[0.1, None, 0.3, 0.2, 0.1, 0.2]).close()
    [(_, _, points)] = idle.calls
    assert points == [({"trials_completed": 6, "trials_failed": 1, "best_reward": 0.3}, 6)]
    fresh = _Submits()
    JobMonitor("sqlite:///x.db", "run", 6, fresh).close()              # nothing done: nothing logged
    assert fresh.calls == []
