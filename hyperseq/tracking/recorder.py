"""`TrialRecorder`: writes every trial's MLflow child run, from the driver's side.

The trainable reports each epoch to Tune anyway; this Tune callback turns those reports into
the child run (params = the config, per-epoch metrics with step = epoch, reward, final
status). Recording there rather than inside each worker means:

- one writer per store: no sqlite lock contention, and no run is left RUNNING — the driver
  sees every end: finished, stopped by a scheduler (which interrupts the worker inside
  `tune.report`), crashed, or lost with its actor;
- workers need neither MLflow (~3-5 s of imports per worker process, paid again by every
  job's fresh actors) nor a route to the store: a ``sqlite:///`` store on the head node works
  with remote GPU workers.

The writes themselves run, in order, in the `BackgroundWriter` helper process (no GIL shared
with Tune's event loop); the functions below are what it executes.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ray import tune

from search_spaces import SearchSpace
from workers.trainable import FINAL_KEY

from .store import ChildRunHandle, open_store
from .tags import TAG_ERROR, TAG_INTERRUPTED, TAG_STOPPED
from .writer import BackgroundWriter, UsesWriter


@dataclass(frozen=True)
class Target:
    """Where a job's child runs go."""

    uri: str
    experiment_id: str
    parent_run_id: str
    job: str


# ---- executed by the writer process, in submission order -----------------------------------
_OPEN: dict[tuple[str, str], ChildRunHandle] = {}     # (parent run, trial id) -> open run


def open_child(target: Target, trial_id: str, config: Mapping[str, Any]) -> ChildRunHandle:
    key = (target.parent_run_id, trial_id)
    if key not in _OPEN:
        _OPEN[key] = open_store(target.uri).open_child(target.experiment_id, target.parent_run_id,
                                                       target.job, trial_id, config)
    return _OPEN[key]


def log_child(target: Target, trial_id: str, config: Mapping[str, Any], values: Mapping[str, Any],
              step: int, tags: Mapping[str, str]) -> None:
    open_child(target, trial_id, config).log_epoch(values, step, tags)


def close_child(target: Target, trial_id: str, config: Mapping[str, Any], status: str,
                tags: Mapping[str, str]) -> None:
    open_child(target, trial_id, config).finish(status, tags)
    del _OPEN[(target.parent_run_id, trial_id)]


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
    """One MLflow child run per trial, under the job's parent run."""

    def __init__(self, target: Target, space: SearchSpace, writer: BackgroundWriter | None = None) -> None:
        self.target, self.space, self._writer = target, space, writer
        self._started: set[str] = set()                 # trials whose run is queued


    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._started.add(trial.trial_id)
        self.writer.submit(open_child, self.target, trial.trial_id, self._config(trial))

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: Mapping[str, Any],
                        **info: Any) -> None:
        if "child" in result:
            self._started.add(trial.trial_id)
            self.writer.submit(log_child, self.target, trial.trial_id, self._config(trial),
                               dict(result["child"]), int(result.get("epoch", 0)),
                               dict(result.get("child_tags") or {}))

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
            if trial.trial_id in self._started:
                self._end(trial, "KILLED", {TAG_INTERRUPTED: "true"})

    def _end(self, trial: Any, status: str, tags: Mapping[str, str], always: bool = False) -> None:
        """Queue the end of the trial's run; `always` opens one first (a crash before any report)."""
        if always or trial.trial_id in self._started:
            self._started.discard(trial.trial_id)
            self.writer.submit(close_child, self.target, trial.trial_id, self._config(trial), status, tags)

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
    (under FINAL_KEY) as given, without its ``hyperseq.*`` marks."""
    if FINAL_KEY in config:
        return {k: v for k, v in config[FINAL_KEY].items() if not k.startswith("hyperseq.")}
    try:
        return space.project(config) if space is not None else dict(config)
    except ValueError:
        return dict(config)
