"""Worker crash -> retry: a trial whose worker process is killed (-9) mid-trial runs again.

Real local Ray and a sqlite MLflow store; noop children write their pid to a directory
(`$HYPERSEQ_NOOP_PID_DIR`) so a watcher thread can kill the first worker once. With the
default `max_failures` (2) the job still completes every trial; the crashed attempt's run is
FAILED (tag ``hyperseq.retried``), the retry's run FINISHED.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
import ray

from hyperseq.jobs import run_search
from hyperseq.jobs.ray_env import local_ray_options
from hyperseq.jobs import prepare_job
from hyperseq.tracking import tags as T
from hyperseq.tracking.mlflow_store import trial_config
from hyperseq.tracking.store import default_tracking_uri, open_store
from tasks.noop import PID_DIR_ENV

TRIALS, EPOCHS = 3, 2
SPACE = """\
name: killable
task: noop
decisions:
  - name: a
    choices: [1, 2, 3]
  - name: sleep
    choices: [1.0]
"""


def _kill_first_worker(pid_dir: Path, killed: list[int], stop: threading.Event) -> None:
    """Wait for the first child's pid file; SIGKILL that worker process once, mid-epoch."""
    while not stop.is_set():
        pids = sorted(pid_dir.iterdir(), key=lambda p: p.stat().st_mtime)
        if pids:
            time.sleep(0.5)      # the kill lands inside its first 1 s epoch: the scenario, not a wait
            pid = int(pids[0].name)
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            return
        time.sleep(0.1)


def test_default_max_failures_is_two(tmp_path: Path) -> None:
    (tmp_path / "space.yaml").write_text(SPACE)
    spec = prepare_job(tmp_path / "space.yaml", tracking_uri=f"sqlite:///{tmp_path / 'm.db'}",
                       storage=tmp_path / "ray")
    assert spec.max_failures == 2


@pytest.mark.slow
def test_killed_worker_is_retried_and_the_job_completes(tmp_path: Path) -> None:
    (tmp_path / "space.yaml").write_text(SPACE)
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    options = local_ray_options(2)
    options["runtime_env"]["env_vars"][PID_DIR_ENV] = str(pid_dir)
    ray.init(**options)
    killed: list[int] = []
    stop = threading.Event()
    watcher = threading.Thread(target=_kill_first_worker, args=(pid_dir, killed, stop), daemon=True)
    watcher.start()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    try:
        t0 = time.monotonic()
        result = run_search(tmp_path / "space.yaml", final_top=0, searcher="rnn", trials=TRIALS, concurrency=2,
                            epochs=EPOCHS, tracking_uri=uri, storage=tmp_path / "ray", name="retry")
        print(f"job with one killed worker took {time.monotonic() - t0:.1f} s")
    finally:
        stop.set()
        ray.shutdown()
    assert len(killed) == 1
    assert result.status == "FINISHED" and len(result.trials) >= TRIALS
    [parent] = open_store(uri).job_runs("retry")
    runs = open_store(uri).trial_runs(parent.info.run_id)
    finished = [r for r in runs if r.info.status == "FINISHED"]
    failed = [r for r in runs if r.info.status != "FINISHED"]
    assert len(finished) == TRIALS
    assert len({r.data.tags[T.TAG_TRIAL] for r in finished}) == TRIALS
    assert len(failed) == 1 and failed[0].info.status == "FAILED"
    assert failed[0].data.tags.get("hyperseq.retried") == "true"
    assert failed[0].data.tags[T.TAG_TRIAL] in {r.data.tags[T.TAG_TRIAL] for r in finished}
    assert parent.info.status == "FINISHED" and parent.data.metrics["trials_completed"] == TRIALS
