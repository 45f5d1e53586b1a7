"""Waiting in tests: poll for the awaited condition instead of sleeping a fixed time.

A fixed sleep is too short on a loaded machine and wasted time on an idle one; `wait_for`
returns as soon as the condition holds and, when it never does, fails naming what it waited for.
"""
from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Callable, TypeVar

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float, interval: float = 0.2, what: str = "") -> T:
    """Call `predicate` every `interval` s until it returns something true, and return that;
    raise AssertionError naming `what` if `timeout` s pass first (checked once more at the end)."""
    if timeout <= 0 or interval <= 0:
        raise ValueError(f"timeout and interval must be > 0, got timeout={timeout!r}, interval={interval!r}")
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"waited {timeout:g} s for {what or getattr(predicate, '__name__', 'a condition')}")
        time.sleep(interval)


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (an exited child nobody has reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def children(pid: int, mentioning: bytes) -> list[int]:
    """The live child processes of `pid` whose command line contains `mentioning`."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid and \
                    mentioning in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
    return found


def writer_helpers(driver_pid: int) -> list[int]:
    """The MLflow writer helper(s) a driver process started (`hyperseq.tracking.writer`). Read
    them before killing the driver: once it is gone they belong to another parent."""
    return children(driver_pid, b"hyperseq.tracking.writer")


def all_gone(pids: list[int]) -> bool:
    return not any(alive(pid) for pid in pids)


def state_kept_since(experiment: Path, since: float = 0.0) -> bool:
    """Tune saved the experiment's state after `since` (a `time.time()`; by default: ever) and
    hyperseq's state keeper has a whole copy of that save (``<experiment>/.hyperseq-state``,
    `hyperseq.jobs.state`): a kill from now on leaves a resume at least that much. Tune saves
    about once a second while results come in, not while none do."""
    # read here, not through `hyperseq.jobs.state.kept`: importing that imports Ray Tune, seconds
    # that a test waiting for a moment to kill a driver does not have
    for copy in (experiment / ".hyperseq-state", experiment / ".hyperseq-state.old"):
        with contextlib.suppress(OSError):
            if (copy / "COMPLETE").is_file():
                return any(os.stat(f).st_mtime > since for f in copy.glob("experiment_state-*.json"))
    return False
