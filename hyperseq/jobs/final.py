"""The final phase of a job: the best configurations found, and the task's default, retrained
at the final budget and scored on the whole validation split.

Short search budgets favour what learns fast (a high learning rate), not what ends best, so
a job's answer is decided here: the top `final_top` distinct configurations of the search (by
reward) and the task's default configuration (`default_config`, tagged ``hyperseq.default``)
train for `final_epochs` epochs in a second Tune experiment, ``<storage>/<job>.final``. The
default takes the space's fixed (single-choice) decisions, so it trains on the data and at the
size the space sets, as the finalists do (a space fixing ``data_path`` to the user's text must
not be answered by a model of another corpus); it is planned with every value written out, so
its run's params are what it trained with. The plan (the configurations) is written to the parent run before
the phase starts (tag ``hyperseq.final_configs``), so a resume runs the same plan.

A job with several objectives or a constraint (`ranked`) retrains its best feasible configs
(only those: by Pareto rank, then the first objective); its answer (`answer`) is the best
feasible final by the first objective. A constrained job whose search found no feasible trial
fails (`check_feasible`) rather than answer with a config that breaks its constraint.
"""
from __future__ import annotations

import json
import math
import re
from typing import Any

from controller.pareto import front_ranks, violation
from tasks import TASKS, get_task
from workers.trainable import FINAL_KEY

from ..tracking import tags as T
from ..tracking.front import epoch_values
from ..tracking.mlflow_store import trial_config
from ..tracking.query import task_defaults
from ..tracking.store import open_store

from .objectives import constraint_values, point
from .ray_env import reuse_actors
from .options import FINAL_SUFFIX, JobFailed
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
    best: dict[str, tuple[float, dict[str, Any], Any]] = {}
    for run in store.trial_runs(parent):
        reward = run.data.metrics.get("reward")
        if run.info.status != "FINISHED" or run.data.tags.get(T.TAG_PHASE) == "final" or \
                reward is None or not math.isfinite(reward):
            continue
        config = trial_config(run)
        key = json.dumps(config, sort_keys=True)
        if key not in best or reward > best[key][0]:
            best[key] = (reward, config, run)
    top = ranked(spec, list(best.values()))[: spec.final_top]
    configs = [config for _, config, _ in top] + [{**default_config(spec.space), DEFAULT_MARK: True}]
    store.set_tags(parent, {TAG_PLAN: json.dumps(configs, sort_keys=True)})
    return configs


def ranked(spec: JobSpec, trials: list[tuple[float, dict[str, Any], Any]]) -> list[tuple[float, dict[str, Any], Any]]:
    """(reward, config, run) best first: by reward; in a multi-objective or constrained job, the
    feasible only (an infeasible config cannot be the answer: no final budget is spent on it),
    by Pareto rank (`controller.pareto.front_ranks`), then by reward (the first objective). A
    trial's values are read at its best epoch by the first objective, as `best --pareto` reads them
    (`tracking.front.epoch_values`); one missing an objective comes after those with all."""
    by_reward = sorted(trials, key=lambda t: -t[0])
    if not spec.several:
        return by_reward
    store = open_store(spec.tracking_uri)
    values = [epoch_values(store, run, spec.objectives, spec.constraints, spec.metric) for _, _, run in by_reward]
    viol = [violation(constraint_values(v, spec.constraints)) for v in values]
    points = [point(v, spec.objectives) for v in values]
    whole = [i for i, p in enumerate(points) if p is not None]
    ranks = dict(zip(whole, front_ranks([points[i] for i in whole], [viol[i] for i in whole])))
    order = sorted((i for i in range(len(by_reward)) if viol[i] <= 0),
                   key=lambda i: (i not in ranks, ranks.get(i, 0), i))
    return [by_reward[i] for i in order]


def check_feasible(spec: JobSpec, parent: str) -> None:
    """JobFailed when a constrained job's search found no feasible trial: it has no answer (an
    infeasible one would break the promise the constraint makes). The message names the
    constraints; the parent run then ends FAILED."""
    if not spec.constraints:
        return
    runs = [run for run in open_store(spec.tracking_uri).trial_runs(parent)
            if run.data.tags.get(T.TAG_PHASE) != "final"]
    if any(run.data.metrics.get("feasible") == 1 for run in runs):
        return
    bounds = " and ".join(str(c) for c in spec.constraints)
    raise JobFailed(f"job {spec.name} failed: none of its {len(runs)} search trials satisfies {bounds}, "
                    "so it has no answer (parent run FAILED); loosen the constraint or search more")


def answer(spec: JobSpec, parent: str, table: Any) -> Any:
    """The job's answer: the first row of its table (`best_configs`: feasible first) with a reward, and
    marked feasible in a constrained job; None if there is none."""
    if not len(table) or table.iloc[0]["reward"] != table.iloc[0]["reward"]:     # none, or NaN
        return None
    best = table.iloc[0]
    run = open_store(spec.tracking_uri).get_run(best["run_id"]) if spec.constraints else None
    return None if run is not None and run.data.metrics.get("feasible") != 1 else best


def fixed_decisions(space: Any) -> dict[str, Any]:
    """The decisions the space fixes: single-choice ones, active whatever else is chosen. Activity
    is judged against the default configuration (the fixed values, else the task's default where
    it is one of the slot's choices): a conditional decision counts when the default meets its
    condition, a repeated one for the default's number of repeats."""
    chosen: dict[str, int] = {}                      # slot index chosen, by key, as the space counts
    fixed: dict[str, Any] = {}
    for slot in space.slots:
        if not space.is_active(slot, chosen):
            continue
        if len(slot.choices) == 1:
            chosen[slot.key], fixed[slot.key] = 0, slot.choices[0]
            continue
        default = task_defaults(space.task, [slot.key]).get(slot.key)
        index = [i for i, choice in enumerate(slot.choices) if choice == default and type(choice) is type(default)]
        if index:
            chosen[slot.key] = index[0]
    return fixed


def default_config(space: Any) -> dict[str, Any]:
    """The final phase's default: the task's default of each of the space's keys, with the
    space's fixed decisions (`fixed_decisions`) in their place; a layer-wise key ``name_k`` only
    up to the configuration's ``layers``. Keys the space does not name take the task's default
    when it trains, as they do for every trial."""
    config = {**task_defaults(space.task, list(space.keys)), **fixed_decisions(space)}
    depth = config.get("layers")
    if not isinstance(depth, int) or isinstance(depth, bool):
        return config
    per_layer = getattr(get_task(space.task), "per_layer", ()) if space.task in TASKS else ()
    deeper = [key for key in config if (m := re.fullmatch(r"(\w+)_([1-9][0-9]*)", key))
              and m.group(1) in per_layer and int(m.group(2)) > depth]
    return {key: value for key, value in config.items() if key not in deeper}


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
