"""Opening a sqlite MLflow store safely while other processes may be creating the same file.

MLflow creates a sqlite store's tables on first use, with migrations that are not one
transaction: two processes migrating the same new file at once break it ("duplicate column
name", "table _alembic_tmp_... already exists"). hyperseq's own drivers serialise on a lock file
beside the db (`creation_lock`), but a plain MLflow client (``mlflow ui``, a notebook) does not
take it. So a store hyperseq creates is built in a side file and linked into place only if no
file is there yet (never over a file another program is building), and a store that exists but
is not at MLflow's schema head is left to its creator until it is, or until it has not changed
for `QUIET_S` (a creator that died, or an old store MLflow itself reports), before MLflow opens it.
"""
from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterator

QUIET_S = 5.0            # a store unchanged this long has no creator at work
WAIT_S = 120.0           # the longest another program's table creation is waited for
POLL_S = 0.05


@contextlib.contextmanager
def creation_lock(path: Path) -> Iterator[None]:
    """``<db>.lock`` beside a sqlite store, held (`fcntl.flock`, blocking) while hyperseq opens
    it; the kernel releases it if the holder dies."""
    with open(path.with_name(path.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def open_client(uri: str, path: Path) -> Any:
    """An `MlflowClient` on the sqlite store at `path` (created if missing), under the lock;
    building the client opens the store, so MLflow's schema checks run here too."""
    from mlflow.tracking import MlflowClient
    path.parent.mkdir(parents=True, exist_ok=True)
    with creation_lock(path):
        if not path.exists():
            create(path)
        if not await_creator(path):                    # an empty file nobody writes to
            create(path, replace=True)
        return MlflowClient(tracking_uri=uri)


def create(path: Path, replace: bool = False) -> None:
    """Create the tables in a side file and put it at `path`: linked (a file another program
    made meanwhile is kept, not swapped from under it), or over an idle empty file (`replace`).
    A process killed during the migrations leaves no half-made store behind."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
    for stale in path.parent.glob(f".{path.name}.creating-*"):       # a killed creator's
        stale.unlink(missing_ok=True)
    tmp = path.with_name(f".{path.name}.creating-{os.getpid()}")
    base = path.parent if path.suffix else path
    SqlAlchemyStore(f"sqlite:///{tmp}", (base / "mlartifacts").resolve().as_uri()).engine.dispose()
    use_wal(tmp)
    try:
        if replace:                    # a dead creator's journal would be rolled back onto ours
            path.with_name(path.name + "-journal").unlink(missing_ok=True)
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
    except FileExistsError:
        pass                                           # another program's store: `await_creator`
    finally:
        tmp.unlink(missing_ok=True)


def use_wal(path: Path) -> None:
    """Write-ahead logging for a sqlite store we create: a commit costs one fsync, not
    several, and readers (queries, the UI) no longer block the writer. The mode is stored in
    the database file; stores created elsewhere are left as they are."""
    with contextlib.closing(sqlite3.connect(path)) as con:
        con.execute("PRAGMA journal_mode=WAL")


def await_creator(path: Path) -> bool:
    """Wait while another program may be creating the store's tables: until the schema is at
    MLflow's head, or the files have been still for `QUIET_S` (then MLflow's own checks
    decide), at most `WAIT_S`. False for a store that stayed empty and idle (ours to create)."""
    head, seen, still_since = None, None, time.monotonic()
    deadline = still_since + WAIT_S
    while True:
        version = schema_version(path)
        if version is not None:
            head = head or latest_version()
            if version == head:
                return True
        now_seen = _activity(path)
        if now_seen != seen:
            seen, still_since = now_seen, time.monotonic()
        elif time.monotonic() - still_since >= QUIET_S or time.monotonic() >= deadline:
            return now_seen[0][0] > 0
        time.sleep(POLL_S)


def schema_version(path: Path) -> str | None:
    """The store's MLflow schema version (alembic's), or None (no table yet, or busy)."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=0.2)) as con:
            row = con.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error:
        return None
    return row[0] if row else None


@functools.lru_cache(maxsize=1)
def latest_version() -> str:
    """The schema version this MLflow creates."""
    from mlflow.store.db.utils import _get_latest_schema_revision
    return _get_latest_schema_revision()


def _activity(path: Path) -> tuple[tuple[int, int], ...]:
    """(size, mtime) of the db and its journal files: what a creator at work changes."""
    out = []
    for name in (path.name, path.name + "-journal", path.name + "-wal"):
        try:
            st = os.stat(path.with_name(name))
            out.append((st.st_size, st.st_mtime_ns))
        except OSError:
            out.append((0, 0))
    return tuple(out)
