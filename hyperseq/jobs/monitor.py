"""`JobMonitor`: the driver-side Tune callback of a job.

On each finished trial it (1) logs the job's curves to the parent run by step = trials
completed — best-so-far reward and, for the RNN controller, its mean reward, baseline and
entropy, (2) samples the controller's choice probabilities for the plots (queued for the
writer at the last completion, `plot`), and (3) advances the live progress bar. Curves are
batched (one store write per `FLUSH_S` at most) and written by a `BackgroundWriter`, so Tune's
event loop never waits on the store. Child runs are
`hyperseq.tracking.recorder.TrialRecorder`'s business.
"""
from __future__ import annotations

import contextlib
import math
import time
from typing import Any, Callable, Iterator

from ray import tune

from ..tracking.store import log_metric_steps
from ..tracking.writer import BackgroundWriter, UsesWriter
from .plots import log_job_plots

FLUSH_S = 1.0
PROB_SAMPLES = 40      # about this many choice-probability snapshots per job (the plot's columns)
CONTROLLER_CURVES = ("mean_reward", "baseline", "entropy", "reward_std", "loss", "updates")


class JobMonitor(UsesWriter, tune.Callback):
    """Progress bar, parent-run curves and controller snapshots for one job."""

    _transient = ("_writer", "controller", "on_progress")

    def __init__(self, uri: str, parent_run_id: str, total: int,
                 writer: BackgroundWriter, controller: Any = None,
                 on_progress: Callable[[int, float | None], None] | None = None,
                 history: list[float | None] | None = None, name: str = "") -> None:
        """`history`: rewards of trials finished before (a resumed job); counting goes on.
        `name`: the job's, for the plots' titles."""
        self.uri, self.parent_run_id, self.total, self.name = uri, parent_run_id, total, name
        self._writer, self.controller, self.on_progress = writer, controller, on_progress
        self.rewards: list[float | None] = list(history or [])   # by completion order
        self.completed = len(self.rewards)
        self.failed = sum(r is None for r in self.rewards)
        finite = [r for r in self.rewards if r is not None and math.isfinite(r)]
        self.best_reward: float | None = max(finite) if finite else None
        self.prob_history: list[tuple[int, dict[str, dict[str, float]]]] = []
        self._updates_seen = -1                  # policy version last sampled for the plots
        self._next_sample = 0                    # ... and the trial count due for the next one
        self._points: list[tuple[dict[str, Any], int]] = []
        self._flushed = time.monotonic()
        self._logged = False                     # this driver has queued curve points
        self._plotted = False


    # ---- Tune hooks -----------------------------------------------------------------------------
    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        result = trial.last_result or {}
        if "reward" in result:                  # else it never ran (removed when the job stopped)
            self._record(float(result["reward"]))

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.failed += 1
        self._record(None)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self.flush()

    def close(self) -> None:
        """The search is over: queue what is buffered. A resumed job with nothing left to run
        logs its counts once more, since the killed driver's last points may never have been
        written (its writer drops what it had queued)."""
        if not self._logged and self.completed:
            self._points.append((self._counts(), self.completed))
        self.flush()

    def plot(self) -> None:
        """Queue the job's plots, once: at the last trial's completion the writer renders them
        while Tune winds down (its last save, the actors' shutdown)."""
        if not self._plotted:
            self._plotted = True
            self.writer.submit(log_job_plots, self.uri, self.parent_run_id, self.name, list(self.rewards),
                               list(self.prob_history))

    def flush(self) -> None:
        """Queue the buffered curve points as one write."""
        if self._points:
            self.writer.submit(log_metric_steps, self.uri, self.parent_run_id, self._points)
            self._logged = True
        self._points, self._flushed = [], time.monotonic()

    # ---- bookkeeping ----------------------------------------------------------------------------
    def _counts(self) -> dict[str, Any]:
        """The job's counts so far (and best reward, once there is one)."""
        counts: dict[str, Any] = {"trials_completed": self.completed, "trials_failed": self.failed}
        if self.best_reward is not None:
            counts["best_reward"] = self.best_reward
        return counts

    def _record(self, reward: float | None) -> None:
        self.completed += 1
        self.rewards.append(reward)
        if reward is not None and math.isfinite(reward) and (
                self.best_reward is None or reward > self.best_reward):
            self.best_reward = reward
        curves = self._counts()
        if reward is not None:
            curves["trial_reward"] = reward
        if self.controller is not None:
            stats = self.controller.stats
            curves.update({f"controller.{k}": stats[k] for k in CONTROLLER_CURVES if k in stats})
            if stats.get("updates") != self._updates_seen and (
                    self.completed >= self._next_sample or self.completed >= self.total):
                self._updates_seen = stats.get("updates")       # the policy changed: sample it
                self._next_sample = self.completed + max(1, self.total // PROB_SAMPLES)
                self.prob_history.append((self.completed, self.controller.choice_probabilities()))
        self._points.append((curves, self.completed))
        if time.monotonic() - self._flushed >= FLUSH_S or self.completed >= self.total:
            self.flush()
        if self.completed >= self.total:
            self.plot()
        if self.on_progress is not None:
            self.on_progress(self.completed, self.best_reward)


@contextlib.contextmanager
def progress_bar(total: int, enabled: bool, label: str) -> Iterator[Callable[[int, float | None], None] | None]:
    """A rich progress bar on stderr (trials done / total, best so far)."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("best reward {task.fields[best]}"), TimeElapsedColumn(),
                   console=Console(stderr=True))
    task = bar.add_task(label, total=total, best="-")
    with bar:
        yield lambda done, best: bar.update(task, completed=done,
                                            best="-" if best is None else f"{best:.4g}")
