"""`JobMonitor`: the driver-side Tune callback of a job.

On each finished trial it (1) ends the child run of a trial a scheduler stopped (the worker
cannot: it is interrupted inside `tune.report`), (2) logs the job's curves to the parent run
by step = trials completed — best-so-far reward and, for the RNN controller, its mean reward,
baseline and entropy, (3) samples the controller's choice probabilities for the plots, and
(4) advances the live progress bar. MLflow writes go through a `BackgroundWriter` so Tune's
event loop never waits on the store.
"""
from __future__ import annotations

import math
from typing import Any, Callable

from ray import tune

from workers import tracking

CONTROLLER_CURVES = ("mean_reward", "baseline", "entropy", "reward_std", "loss", "updates")


class JobMonitor(tune.Callback):
    """Progress, parent-run curves and child-run cleanup for one job."""

    def __init__(self, uri: str, parent_run_id: str, total: int,
                 writer: tracking.BackgroundWriter, controller: Any = None,
                 on_progress: Callable[[int, float | None], None] | None = None) -> None:
        self.uri, self.parent_run_id, self.total = uri, parent_run_id, total
        self.writer, self.controller, self.on_progress = writer, controller, on_progress
        self.completed = 0
        self.failed = 0
        self.best_reward: float | None = None
        self.rewards: list[float | None] = []                 # by completion order
        self.prob_history: list[tuple[int, dict[str, dict[str, float]]]] = []
        self._prob_every = max(1, total // 100)

    def __getstate__(self) -> dict[str, Any]:
        """Tune pickles its callbacks with the experiment: drop the live handles."""
        state = dict(self.__dict__)
        state.update(writer=None, controller=None, on_progress=None)
        return state

    # ---- Tune hooks -----------------------------------------------------------------------------
    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        result = trial.last_result or {}
        if not result or "reward" not in result:
            return                              # never ran (e.g. removed when the job stopped)
        run_id = result.get("mlflow_run_id")
        if run_id and not result.get("trial_done"):
            self.writer.submit(tracking.set_status, self.uri, run_id, "FINISHED",
                               {tracking.TAG_STOPPED: "true"})
        self._record(float(result["reward"]))

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        run_id = (trial.last_result or {}).get("mlflow_run_id")
        if run_id:
            self.writer.submit(_fail_if_running, self.uri, run_id)
        self.failed += 1
        self._record(None)

    # ---- bookkeeping ----------------------------------------------------------------------------
    def _record(self, reward: float | None) -> None:
        self.completed += 1
        self.rewards.append(reward)
        if reward is not None and math.isfinite(reward) and (
                self.best_reward is None or reward > self.best_reward):
            self.best_reward = reward
        curves: dict[str, Any] = {"trials_completed": self.completed, "trials_failed": self.failed}
        if reward is not None:
            curves["trial_reward"] = reward
        if self.best_reward is not None:
            curves["best_reward"] = self.best_reward
        if self.controller is not None:
            stats = self.controller.stats
            curves.update({f"controller.{k}": stats[k] for k in CONTROLLER_CURVES if k in stats})
            if self.completed % self._prob_every == 0 or self.completed == self.total:
                self.prob_history.append((self.completed, self.controller.choice_probabilities()))
        self.writer.submit(tracking.log_metrics, self.uri, self.parent_run_id, curves, self.completed)
        if self.on_progress is not None:
            self.on_progress(self.completed, self.best_reward)


def _fail_if_running(uri: str, run_id: str) -> None:
    """End a child run FAILED unless the worker already ended it (e.g. the actor died)."""
    if tracking.client(uri).get_run(run_id).info.status == "RUNNING":
        tracking.set_status(uri, run_id, "FAILED")
