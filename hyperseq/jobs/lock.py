"""One driver per job: a lock file the driver holds while it runs (`run`, `resume`).

``<storage>/.<job>.lock`` is locked with `fcntl.flock`, which the kernel releases when the
driver exits or dies (SIGKILL included), so a crashed job can be resumed at once while a
`resume` of a job whose driver is still alive is refused instead of running every trial twice.
It guards drivers on one machine (a cluster job's driver runs on the head node).
"""
from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Iterator

from .options import JobError


@contextlib.contextmanager
def job_lock(storage: Path, job: str) -> Iterator[None]:
    """Hold the job's lock for the block; JobError (param ``job``) if another driver holds it."""
    storage.mkdir(parents=True, exist_ok=True)
    path = storage / f".{job}.lock"
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            pid = handle.read().strip() or "?"
            raise JobError("job", job, f"is still running: its driver (pid {pid}) holds {path}") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
