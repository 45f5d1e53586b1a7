"""A store that stops taking writes mid-run (locked by another program; deleted, then put
back from a backup): the driver stops within seconds with one line, leaves the Tune state, and
`hyperseq resume` finishes the job with every trial recorded once (real Ray, real sqlite
MLflow, noop children that sleep)."""
from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from pathlib import Path

import pytest
from drivers import driver, mid_search, resume_finishes, trial_runs, wait_until

from hyperseq.tracking import tags as T

SPACE = "name: sleepy\ntask: noop\ndecisions:\n  - {name: a, choices: [1, 2, 3, 4, 5, 6, 7, 8]}\n" \
        "  - {name: sleep, choices: [0.7]}\n"
TRIALS = 8


@contextlib.contextmanager
def _locked(db: Path):
    """Another program holds the store's write lock (as root, a chmod would not stop writes)."""
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        con.execute("ROLLBACK")
        con.close()


def _backup(db: Path) -> Path:
    """A copy of the store now (sqlite's online backup)."""
    backup = db.with_name("backup.db")
    with contextlib.closing(sqlite3.connect(db)) as src, contextlib.closing(sqlite3.connect(backup)) as dst:
        src.backup(dst)
    return backup


def _delete(db: Path) -> None:
    for f in db.parent.glob(db.name + "*"):
        if not f.name.endswith(".lock"):
            f.unlink()


def _forget_connections() -> None:
    """This test process polled the store before it was deleted: MLflow's pooled connections
    (one engine per URI, kept for the process) still point at the deleted file. A user's resume
    is a new process; this one drops them instead."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
    for engine in SqlAlchemyStore._engine_map.values():
        engine.dispose()
    SqlAlchemyStore._engine_map.clear()


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["locked", "deleted"])
def test_store_lost_mid_run_stops_cleanly_and_resumes(tmp_path: Path, fault: str) -> None:
    (tmp_path / "s.yaml").write_text(SPACE)
    db, storage = tmp_path / "m.db", tmp_path / "ray"
    uri = f"sqlite:///{db}"
    args = [str(tmp_path / "s.yaml"), "--trials", str(TRIALS), "--concurrency", "2", "--epochs", "2",
            "--final-top", "0", "--name", "lost", "--tracking-uri", uri, "--storage", str(storage)]
    with driver(tmp_path, *args) as proc:
        wait_until(proc, mid_search(uri, "lost", storage / "lost"))
        with contextlib.ExitStack() as held:
            if fault == "locked":
                held.enter_context(_locked(db))
            else:                       # back up, let more trials finish, then delete the store
                backup = _backup(db)
                done = len([r for r in trial_runs(uri, "lost") if r.info.status == "FINISHED"])
                wait_until(proc, lambda: len([r for r in trial_runs(uri, "lost")
                                              if r.info.status == "FINISHED"]) > done)
                _delete(db)
            t0 = time.monotonic()
            code = proc.wait(120)
            stopped_in = time.monotonic() - t0
        err = proc.stderr.read().decode()
    lines = err.strip().splitlines()
    assert code == 1, err[-3000:]
    assert "Traceback" not in err and lines[-1].startswith("Error: tracking store"), err[-3000:]
    assert "stopped accepting writes" in lines[-1] and "hyperseq resume lost" in lines[-1]
    assert ("deleted" in lines[-1]) == (fault == "deleted"), lines[-1]
    assert stopped_in < 60, stopped_in          # sqlite waits 20 s for a lock
    assert (storage / "lost").is_dir()
    if fault == "deleted":
        _forget_connections()
        os.replace(backup, db)

    runs = resume_finishes(uri, storage, "lost", TRIALS)
    for run in runs:
        if run.info.status == "FINISHED":
            assert "reward" in run.data.metrics and run.data.params, run.data.tags
    if fault == "deleted":                        # what the backup missed came from Tune's state
        assert any(r.data.tags.get(T.TAG_CLOSED_BY) == "hyperseq resume" for r in runs)
