"""The final phase of a job: the best configurations found, and the task's default, retrained
at the final budget and scored on the whole validation split.

Short search budgets favour what learns fast (a high learning rate), not what ends best, so
a job's answer is decided here: the top `final_top` distinct configurations of the search (by
reward) and the task's default configuration (``{}``: every key at its default, tagged
``hyperseq.default``) train for `final_epochs` epochs in a second Tune experiment,
``<storage>/<job>.final``. The plan (the configurations) is written to the parent run before
the phase starts (tag ``hyperseq.final_configs``), so a resume runs the same plan.
"""
from __future__ import annotations

import json
import math
from typing import Any

from workers.trainable import FINAL_KEY

from ..tracking import tags as T
from ..tracking.mlflow_store import trial_config
from ..tracking.store import open_store
from .ray_env import reuse_actors
from .options import FINAL_SUFFIX
from .spec import JobSpec

TAG_PLAN = "hyperseq.final_configs"
DEFAULT_MARK = "hyperseq.default"


def final_path(spec: JobSpec) -> str:
    return f"{spec.experiment_path}{FINAL_SUFFIX}"


def plan(spec: JobSpec, parent: str) -> list[dict[str, Any]]:
    """The final phase's configurations: the recorded plan, else a new one (then recorded)."""
    store = open_store(spec.tracking_uri)
    recorded = store.get_run(parent).data.tags.get(TAG_PLAN)
    if recorded:
        return json.loads(recorded)
    best: dict[str, tuple[float, dict[str, Any]]] = {}
    for run in store.trial_runs(parent):
        reward = run.data.metrics.get("reward")
        if run.info.status != "FINISHED" or run.data.tags.get(T.TAG_PHASE) == "final" or \
                reward is None or not math.isfinite(reward):
            continue
        config = trial_config(run)
        key = json.dumps(config, sort_keys=True)
        if key not in best or reward > best[key][0]:
            best[key] = (reward, config)
    top = sorted(best.values(), key=lambda rc: -rc[0])[: spec.final_top]
    configs = [config for _, config in top] + [{DEFAULT_MARK: True}]
    store.set_tags(parent, {TAG_PLAN: json.dumps(configs, sort_keys=True)})
    return configs


def tuner(spec: JobSpec, configs: list[dict[str, Any]], trainable: Any, callbacks: list) -> Any:
    """A fresh Tune experiment with one trial per planned configuration, or its restore."""
    from ray import tune
    if tune.Tuner.can_restore(final_path(spec)):
        return tune.Tuner.restore(final_path(spec), trainable=trainable, resume_unfinished=True,
                                  resume_errored=False, restart_errored=False)
    return tune.Tuner(
        trainable, param_space={FINAL_KEY: tune.grid_search(configs)},
        tune_config=tune.TuneConfig(num_samples=1, max_concurrent_trials=spec.concurrency,
                                    reuse_actors=reuse_actors()),
        run_config=tune.RunConfig(name=f"{spec.name}{FINAL_SUFFIX}", storage_path=str(spec.storage), verbose=0,
                                  callbacks=callbacks,
                                  failure_config=tune.FailureConfig(max_failures=spec.max_failures)))


class Counter:
    """Tune callback: final-phase trials done, for the progress bar (best reward so far)."""

    def __init__(self, on_progress: Any) -> None:
        self.on_progress, self.done, self.best = on_progress, 0, None

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        reward = (trial.last_result or {}).get("reward")
        if reward is not None and (self.best is None or reward > self.best):
            self.best = reward
        self._tick()

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._tick()

    def _tick(self) -> None:
        self.done += 1
        if self.on_progress is not None:
            self.on_progress(self.done, self.best)

    def __getattr__(self, hook: str) -> Any:         # every other Tune hook: nothing to do
        if hook.startswith("on_"):
            return lambda *args, **kwargs: None
        raise AttributeError(hook)
