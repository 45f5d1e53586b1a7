"""Tune's experiment state survives a SIGKILL: a last good copy, and the repair a resume runs.

Tune rewrites ``experiment_state-*.json`` and ``searcher-state-*.pkl`` in the experiment
directory about once a second by copying them from its staging directory, in place: a driver
killed inside that window leaves a file empty or cut short, and `Tuner.restore` then fails.
So `StateKeeper` (a Tune callback, in the driver) keeps a copy of the whole set in
``<experiment>/.hyperseq-state`` each time it changed and every file is whole (the set is
swapped in by renaming a directory, never written in place), and `recover` (run by a resume,
under the job's lock) puts the kept copy back in place of a damaged file, or reports that
Tune saved nothing whole yet, so the resume starts the experiment afresh.
"""
from __future__ import annotations

import errno
import fnmatch
import json
import logging
import os
import pickletools
import shutil
import time
import zipfile
from pathlib import Path
from typing import Any

from ray import tune

log = logging.getLogger(__name__)
KEEP = ".hyperseq-state"
PERIOD_S = 0.25                       # how often the keeper looks for a new save
PATTERNS = ("tuner.pkl", "experiment_state-*.json", "search_gen_state-*.json", "searcher-state-*.pkl",
            "basic-variant-state-*.json", "callback-states-*.pkl")      # what Tune saves, one set


def intact(path: Path) -> bool:
    """The file is whole, judged by its content (Tune writes pickles into some ``.json``
    files): a zip (torch's format) whose members check out; a pickle whose opcodes run to
    STOP (read, never executed); else JSON that parses."""
    try:
        data = path.read_bytes()
        if data[:2] == b"PK":
            with zipfile.ZipFile(path) as z:
                return z.testzip() is None
        if data[:1] == b"\x80":
            return any(op.name == "STOP" for op, _, _ in pickletools.genops(data))
        json.loads(data)
        return True
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        return False


def state_files(exp: Path) -> list[Path]:
    """Tune's state files in `exp` (one listing: the directory also holds a folder per trial)."""
    try:
        names = [e.name for e in os.scandir(exp) if e.is_file()]
    except OSError:
        return []
    return sorted(exp / n for n in names if any(fnmatch.fnmatchcase(n, pattern) for pattern in PATTERNS))


def kept(exp: Path) -> Path | None:
    """The kept copy's directory (the previous one if a swap was cut short), or None."""
    for name in (KEEP, KEEP + ".old"):
        if (exp / name / "COMPLETE").is_file():
            return exp / name
    return None


def snapshot(exp: Path) -> bool:
    """Copy the state files into ``KEEP`` if all are whole; False (the old copy stays) if not."""
    files = state_files(exp)
    if not files:
        return False
    new, cur, old = exp / (KEEP + ".new"), exp / KEEP, exp / (KEEP + ".old")
    shutil.rmtree(new, ignore_errors=True)
    new.mkdir()
    for f in files:
        shutil.copy2(f, new / f.name)
    if not all(intact(new / f.name) for f in files):       # cut short, or rewritten while copied
        shutil.rmtree(new, ignore_errors=True)
        return False
    (new / "COMPLETE").touch()
    shutil.rmtree(old, ignore_errors=True)
    if cur.exists():
        cur.rename(old)
    new.rename(cur)
    shutil.rmtree(old, ignore_errors=True)
    return True


def repair(exp: Path) -> list[str]:
    """If a state file is damaged, put the kept copy back as a whole set (files newer than it
    are removed: Tune's files must come from one save, or the restored searcher and trial list
    disagree). Without a kept copy the damaged files are removed, and Tune restores from the
    state an earlier session left. Return the names of the damaged files."""
    damaged = [f.name for f in state_files(exp) if not intact(f)]
    keep = kept(exp)
    if not damaged or keep is None:
        for name in damaged:
            (exp / name).unlink()
        return damaged
    copies = {f.name: f for f in state_files(keep)}
    for f in state_files(exp):
        if f.name not in copies:
            f.unlink()
    for name, copy in copies.items():
        tmp = exp / (name + ".tmp")
        shutil.copy2(copy, tmp)
        os.replace(tmp, exp / name)
    return damaged


def recover(exp: Path) -> bool:
    """Make the experiment restorable (`repair`); True if it is. False when Tune saved no whole
    state yet (a driver killed in its first second): the partial directory is removed, and the
    caller starts the experiment afresh."""
    if not exp.is_dir():
        return False
    repaired = repair(exp)
    if repaired:
        log.warning("Ray Tune state cut short by the driver's end, restored from the last good copy: %s",
                    ", ".join(repaired))
    if (exp / "tuner.pkl").is_file() and any(exp.glob("experiment_state-*.json")):
        return True
    log.warning("Ray Tune saved no state of %s before the driver ended: the experiment starts afresh", exp.name)
    shutil.rmtree(exp)
    return False


def newest_state(exp: Path) -> Path | None:
    """The newest whole ``experiment_state-*.json``, in the directory or its kept copy."""
    keep = kept(exp)
    candidates = [*exp.glob("experiment_state-*.json"), *(keep.glob("experiment_state-*.json") if keep else [])]
    whole = [p for p in candidates if intact(p)]
    return max(whole, key=lambda p: p.name) if whole else None


class StateKeeper(tune.Callback):
    """Keeps the last good copy of an experiment's state while it runs (see the module)."""

    def __init__(self, experiment_path: str) -> None:
        self.exp = Path(experiment_path)
        self._seen: tuple = ()
        self._next = 0.0

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        if time.monotonic() >= self._next:            # Tune's loop steps ~60/s; it saves ~1/s
            self._next = time.monotonic() + PERIOD_S
            self._keep()

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self._keep()                                  # Tune's last save ran just before

    def _keep(self) -> None:
        try:
            seen = tuple((f.name, st.st_mtime_ns, st.st_size) for f in state_files(self.exp)
                         for st in [f.stat()])
        except OSError:
            return
        if seen and seen != self._seen:
            if snapshot(self.exp):
                self._seen = seen
            elif shutil.disk_usage(self.exp).free < sum(size for _, _, size in seen):
                # no room for a good copy: Ray Tune's own saves (which it only logs) fail too
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.exp / (KEEP + ".new")))
