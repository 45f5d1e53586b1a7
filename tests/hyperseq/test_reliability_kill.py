"""Kill at random: SIGKILL a no-op job's driver at 20 random moments and resume it each time.

Each driver (`hyperseq run`, then `hyperseq resume`: real subprocesses, each with its own local
Ray, one real sqlite store) is killed, with its process group, at a moment drawn uniformly over
a driver's life: imports, Ray's start, the store's creation, the job's, mid-search, the end.
Every resume must either be killed in turn or finish (exit 0), and every job must end
FINISHED with exactly one FINISHED run per trial and nothing left RUNNING. A job killed before
its parent run existed has nothing to resume: it is started again with `run`.
"""
from __future__ import annotations

import random
import signal
import subprocess
from pathlib import Path

import pytest
from drivers import driver, noop_space
from waiting import all_gone, wait_for, writer_helpers

from hyperseq.tracking import tags as T
from hyperseq.tracking.store import open_store

KILLS, TRIALS, EPOCHS = 20, 6, 2
LIFE_S = (0.3, 13.0)           # a kill moment, seconds after the driver starts


NOTICES = {"restored from the last good copy": 0, "starts afresh": 0}     # what resumes said


def _drive(tmp: Path, args: list[str], kill_after: float | None) -> int | None:
    """Run a driver; SIGKILL it (and its group) after `kill_after` s. Its exit code, or None if killed."""
    writers: list[int] = []
    with driver(tmp, *args[1:], command=args[0]) as proc:
        try:
            proc.wait(kill_after if kill_after is not None else 300)
        except subprocess.TimeoutExpired:
            if kill_after is None:
                raise
            writers = writer_helpers(proc.pid)              # its own session: outlives the group
    proc.wait(30)                                           # the context killed the group
    said = proc.stderr.read().decode(errors="replace")
    for notice in NOTICES:
        NOTICES[notice] += notice in said
    wait_for(lambda: all_gone(writers), 30, what="the killed driver's MLflow writer helper to exit")
    if proc.returncode not in (0, -signal.SIGKILL):
        pytest.fail(f"{args[0]} exited {proc.returncode}: {said[-2000:]}")
    return None if proc.returncode == -signal.SIGKILL else proc.returncode


def _check_job(uri: str, job: str) -> None:
    [parent] = open_store(uri).job_runs(job)
    assert parent.info.status == "FINISHED", (job, parent.info.status)
    runs = open_store(uri).trial_runs(parent.info.run_id)
    finished = [r.data.tags[T.TAG_TRIAL] for r in runs if r.info.status == "FINISHED"]
    assert len(finished) == TRIALS and len(set(finished)) == TRIALS, (job, finished)
    assert {r.info.status for r in runs} <= {"FINISHED", "KILLED"}, (job, [r.info.status for r in runs])
    assert parent.data.metrics["trials_completed"] == TRIALS


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume(tmp_path: Path) -> None:
    (tmp_path / "space.yaml").write_text(noop_space("killable", 0.3))
    uri, storage = f"sqlite:///{tmp_path / 'mlflow.db'}", str(tmp_path / "ray")
    rng = random.Random(16)
    kills, jobs, moments = 0, 0, []
    while kills < KILLS:
        job = f"k{jobs}"
        run = ["run", str(tmp_path / "space.yaml"), "--name", job, "--searcher", "rnn", "--trials", str(TRIALS),
               "--epochs", str(EPOCHS), "--concurrency", "2", "--final-top", "0", "--seed", str(jobs),
               "--tracking-uri", uri, "--storage", storage]
        resume = ["resume", job, "--tracking-uri", uri, "--storage", storage]
        while True:
            parents = open_store(uri).job_runs(job) if open_store(uri).exists() else []
            if parents and parents[0].info.status == "FINISHED":
                break                                          # killed after it finished
            started = bool(parents)
            moment = rng.uniform(*LIFE_S) if kills < KILLS else None
            if _drive(tmp_path, resume if started else run, moment) is not None:
                break                                          # finished before its kill moment
            kills += 1
            moments.append(round(moment, 1))
        _check_job(uri, job)
        jobs += 1
    print(f"{kills} kills over {jobs} jobs at {moments} s; resumes said {NOTICES}")
