"""`TrialRecorder`: writes every trial's MLflow child run, from the driver's side.

The trainable reports each epoch to Tune anyway; this Tune callback turns those reports into
the child run (params = the config, per-epoch metrics with step = epoch, reward, final
status). Recording there rather than inside each worker means:

- one writer per store: no sqlite lock contention, and no run is left RUNNING — the driver
  sees every end: finished, stopped by a scheduler (which interrupts the worker inside
  `tune.report`), crashed, or lost with its actor;
- workers need neither MLflow (seconds of imports per worker process, paid again by every
  job's fresh actors) nor a route to the store: a ``sqlite:///`` store on the head node works
  with remote GPU workers.

The writes themselves run, in order, in the `BackgroundWriter` helper process (no GIL shared
with Tune's event loop); the functions below are what it executes. A trial's run is opened
once the trial has run `OPEN_AFTER_S`; shorter trials are held here and written whole, several
per store transaction (`Store.write_finished`, `bulk.py`): recorded call by call, a trial of a
few milliseconds cost the writer more CPU than it cost Tune to run it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ray import tune

from search_spaces import SearchSpace
from workers.trainable import FINAL_KEY

from .store import ChildRunHandle, FinishedTrial, now_ms, open_store
from .tags import TAG_DEFAULT, TAG_ERROR, TAG_INTERRUPTED, TAG_STOPPED
from .writer import BackgroundWriter, UsesWriter

OPEN_AFTER_S = 1.0     # a trial running this long gets its run opened (RUNNING in MLflow)
FLUSH_S = 0.5          # trials that ended before that are written at most this late, together
MAX_BATCH = 200        # ... or as soon as this many wait


@dataclass(frozen=True)
class Target:
    """Where a job's child runs go."""

    uri: str
    experiment_id: str
    parent_run_id: str
    job: str


# ---- executed by the writer process, in submission order -----------------------------------
_OPEN: dict[tuple[str, str], ChildRunHandle] = {}     # (parent run, trial id) -> open run


def open_child(target: Target, trial_id: str, config: Mapping[str, Any],
               start_ms: int | None = None) -> ChildRunHandle:
    key = (target.parent_run_id, trial_id)
    if key not in _OPEN:
        _OPEN[key] = open_store(target.uri).open_child(target.experiment_id, target.parent_run_id,
                                                       target.job, trial_id, config, start_ms=start_ms)
    return _OPEN[key]


def log_child(target: Target, trial_id: str, config: Mapping[str, Any], values: Mapping[str, Any],
              step: int, tags: Mapping[str, str], ts_ms: int | None = None) -> None:
    open_child(target, trial_id, config).log_epoch(values, step, tags, ts_ms)


def close_child(target: Target, trial_id: str, config: Mapping[str, Any], status: str,
                tags: Mapping[str, str], end_ms: int | None = None) -> None:
    open_child(target, trial_id, config).finish(status, tags, end_ms)
    del _OPEN[(target.parent_run_id, trial_id)]


def write_finished(target: Target, trials: list[FinishedTrial]) -> None:
    open_store(target.uri).write_finished(target.experiment_id, target.parent_run_id, target.job, trials)


def error_line(trial: Any) -> str:
    """Last line of a trial's latest error ("RuntimeError: ..."), for the run's error tag.

    Tune writes the error to the trial's local error file before calling the callbacks.
    """
    text = ""
    try:
        path = trial.error_file
        if path and Path(path).is_file():
            text = Path(path).read_text(errors="replace")
        else:
            text = str(trial.get_error() or "")
    except Exception:                                   # noqa: BLE001 - best effort
        pass
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "trial failed"


# ---- the callback (Tune's event loop): queue the writes ---------------------------------------
class TrialRecorder(UsesWriter, tune.Callback):
    """One MLflow child run per trial, under the job's parent run.

    A trial's run is opened once the trial has run `OPEN_AFTER_S` (then it shows as RUNNING,
    its epochs are logged as they come); a trial that ends sooner is held here and written whole
    with the others that ended within `FLUSH_S`, in one store transaction (`write_finished`)."""

    def __init__(self, target: Target, space: SearchSpace, writer: BackgroundWriter | None = None) -> None:
        self.target, self.space, self._writer = target, space, writer
        self._started: set[str] = set()                 # trials whose run is queued
        self._held: dict[str, tuple[float, FinishedTrial]] = {}   # running, run not opened yet
        self._done: list[FinishedTrial] = []            # ended while held: to write in one go
        self._done_since = 0.0
        self._marker: int | None = None                 # the writer's marker after our last write

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if trial.trial_id not in self._started and trial.trial_id not in self._held:   # else its run goes on
            self._held[trial.trial_id] = (time.monotonic(), self._record(trial))

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: Mapping[str, Any],
                        **info: Any) -> None:
        if "child" not in result:
            return
        epoch = (dict(result["child"]), int(result.get("epoch", 0)), dict(result.get("child_tags") or {}), now_ms())
        if trial.trial_id in self._held:
            self._held[trial.trial_id][1].epochs.append(epoch)
        else:
            self._started.add(trial.trial_id)
            self._submit(log_child, self.target, trial.trial_id, self._config(trial), *epoch)

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        """Open the runs of trials running for `OPEN_AFTER_S`; write the ended ones due."""
        now = time.monotonic()
        for trial_id in [t for t, (since, _) in self._held.items() if now - since >= OPEN_AFTER_S]:
            record = self._held.pop(trial_id)[1]
            self._started.add(trial_id)
            self._submit(open_child, self.target, trial_id, record.config, record.start_ms)
            for epoch in record.epochs:
                self._submit(log_child, self.target, trial_id, record.config, *epoch)
        if self._done and (now - self._done_since >= FLUSH_S or len(self._done) >= MAX_BATCH):
            self.close()

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        last = trial.last_result or {}
        if "child" not in last:                         # removed before it reported anything
            self._end(trial, "KILLED", {})
            return
        self._end(trial, *completed_outcome(last))

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        """A retried trial (max_failures): this attempt's run FAILED; the retry gets a new one."""
        self._end(trial, "FAILED", {TAG_ERROR: error_line(trial), "hyperseq.retried": "true"},
                  always=True)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._end(trial, "FAILED", {TAG_ERROR: error_line(trial)}, always=True)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        """Runs of trials still going when the job stops (Ctrl-C) end KILLED."""
        for trial in trials:
            if trial.trial_id in self._started or trial.trial_id in self._held:
                self._end(trial, "KILLED", {TAG_INTERRUPTED: "true"})
        self.close()

    def close(self) -> None:
        """Queue the write of the trials that ended while held (idempotent)."""
        if self._done:
            self._submit(write_finished, self.target, self._done)
            self._done = []

    def written(self) -> int:
        """A writer marker (`BackgroundWriter.barrier`) after every write queued so far: what a
        ranking must wait for, and not for the plots queued after them."""
        self.close()
        if self._marker is None:
            self._marker = self.writer.barrier()
        return self._marker

    def _submit(self, fn: Any, *args: Any) -> None:
        self.writer.submit(fn, *args)
        self._marker = None

    def _end(self, trial: Any, status: str, tags: Mapping[str, str], always: bool = False) -> None:
        """The end of the trial's run: queued, or with the held ones; `always`: also a trial
        that never started (a crash before any report)."""
        held = self._held.pop(trial.trial_id, None)
        if held is None and always and trial.trial_id not in self._started:
            held = (0.0, self._record(trial))
        if held is not None:
            record = held[1]
            record.end_ms, record.status, record.end_tags = max(now_ms(), record.start_ms), status, dict(tags)
            if not self._done:
                self._done_since = time.monotonic()
            self._done.append(record)
            if not self._held and not self._started:   # nothing runs (the job's end?): no wait,
                self.written()                          # and a marker before the job's plots
        elif trial.trial_id in self._started:
            self._started.discard(trial.trial_id)
            self._submit(close_child, self.target, trial.trial_id, self._config(trial), status, tags, now_ms())

    def _record(self, trial: Any) -> FinishedTrial:
        """A trial's run, to hold until it ends: started now."""
        return FinishedTrial(trial.trial_id, self._config(trial), now_ms())

    def _config(self, trial: Any) -> dict[str, Any]:
        return trial_params(self.space, trial.config)


def completed_outcome(last: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    """Status and tags of the run of a trial that completed after reporting `last`: a diverged
    child is a failed trial (FAILED, tag hyperseq.diverged) that still gave the floor reward;
    an early stop by the scheduler is FINISHED with a tag."""
    if last.get("diverged"):
        return "FAILED", {"hyperseq.diverged": "true"}
    return "FINISHED", {} if last.get("trial_done") else {TAG_STOPPED: "true"}


def trial_params(space: SearchSpace | None, config: Mapping[str, Any]) -> dict[str, Any]:
    """A trial's hyperparameters: a search config projected on the space; a final-phase config
    (under FINAL_KEY) as given, without its ``hyperseq.*`` marks. The task's default config
    (``{}`` marked `TAG_DEFAULT`) is recorded with the values it trains with, on the space's keys."""
    if FINAL_KEY in config:
        params = {k: v for k, v in config[FINAL_KEY].items() if not k.startswith("hyperseq.")}
        if not params and config[FINAL_KEY].get(TAG_DEFAULT) and space is not None:
            from .query import task_defaults
            return task_defaults(space.task, list(space.keys))
        return params
    try:
        return space.project(config) if space is not None else dict(config)
    except ValueError:
        return dict(config)
