"""`StoreWatch`: a job stops cleanly when its tracking store stops accepting writes.

Every trial is recorded through the `BackgroundWriter`; when the store refuses a write (read
only, locked, full, a server gone), a local store's file is deleted, or the writer process
itself dies (OOM-killed), going on would only lose trials. So the watch (a Tune callback in the driver) ends the experiment the way a
Ctrl-C does (Tune's SIGUSR1: running trials stop, Tune keeps its state) and the job raises one
`StoreError` line instead of writing more; `hyperseq resume` finishes it once the store is back,
recording from Tune's state the trials the store missed (`resume.close_interrupted`).
"""
from __future__ import annotations

import logging
import os
import signal
import time
from typing import Any

from ray import tune

from ..tracking.probe import redact
from ..tracking.store import StoreError, local_path
from ..tracking.writer import BackgroundWriter

PERIOD_S = 1.0                              # how often a local store's file is looked at
TUNE_LOGGER = "ray.tune.tune"


class StoreWatch(tune.Callback):
    """Ends the Tune experiment at the first failed write or when the store's file is gone."""

    def __init__(self, uri: str, writer: BackgroundWriter) -> None:
        self.uri, self.writer = uri, writer
        self.failure: str | None = None
        path = local_path(uri) if uri.startswith("sqlite:") else None
        self._path = path
        self._inode = path.stat().st_ino if path is not None and path.exists() else None
        self._next = 0.0
        self._level: int | None = None

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        if self.failure is None and (reason := self.broken()):
            self.failure = reason
            tune_log = logging.getLogger(TUNE_LOGGER)     # its "Stop signal received" lines:
            self._level = tune_log.level                  # the job says why in one line instead
            tune_log.setLevel(logging.ERROR)
            os.kill(os.getpid(), signal.SIGUSR1)       # Tune's graceful stop, as on Ctrl-C

    def broken(self) -> str | None:
        """Why the store no longer takes writes, or None."""
        if self.writer.died:
            return self.writer.died
        if self.writer.failure:
            return f"a write failed ({self.writer.failure})"
        if self._inode is not None and time.monotonic() >= self._next:
            self._next = time.monotonic() + PERIOD_S
            try:
                same = self._path.stat().st_ino == self._inode
            except OSError:
                same = False
            if not same:
                return f"{self._path} was deleted or replaced"
        return None

    def check(self, job: str, experiment_path: str) -> None:
        """Raise the job's one-line StoreError if the store broke during the experiment."""
        if self._level is not None:
            logging.getLogger(TUNE_LOGGER).setLevel(self._level)
            self._level = None
        reason = self.failure or self.broken()
        if reason and self.writer.died:
            raise StoreError(f"{reason}, so job {job} stopped (its Ray Tune state is kept in {experiment_path}; "
                             f"the writes it had not made are recorded by a resume): run `hyperseq resume {job}`")
        if reason:
            raise StoreError(f"tracking store {redact(self.uri)} stopped accepting writes, so job {job} "
                             f"stopped (its Ray Tune state is kept in {experiment_path}): run `hyperseq "
                             f"resume {job}` once the store takes writes again; {reason[:160]}")
