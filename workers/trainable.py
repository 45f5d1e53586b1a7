"""The Ray Tune function trainable: one trial = one child model trained epoch by epoch.

It decodes the config (`space.project`: random search samples every slot), places the child
on the trial's GPU share if it has one, trains the task and calls `tune.report` after every
epoch so a scheduler (ASHA) can stop it there. Each report carries:

- ``reward``: the best-so-far reward (`workers.rewards`) — what searchers and ASHA optimise;
- ``epoch`` and ``trial_done`` (True on the last report: budget reached or diverged);
- ``child``: what the trial's MLflow child run records for this epoch (the task's finite
  metrics, reward, ``best_<metric>``, ``best_epoch``, ``fidelity`` = epochs done / budget);
- ``objectives`` and ``constraints`` (multi-objective or constrained jobs, `_objectives`): what
  the searcher is told beside the reward, and ``feasible`` in ``child``;
- ``child_tags`` (first report only): the device the child trained on and the Ray node
  (``hyperseq.node`` = node id, ``hyperseq.node_ip``).

Each actor's first trial of an experiment waits (bounded) until the experiment's other trial
actors are up (`workers.gather`), so trials shorter than an actor's start-up still run
`concurrency` at a time. The trainable imports no MLflow: `hyperseq.tracking.recorder.TrialRecorder`, a callback in the
driver, writes the child runs from these reports (see there for why). Exceptions propagate: Tune
marks the trial errored, the recorder ends its run FAILED and the searcher is told `None`.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Any, Mapping

import ray
from ray import tune

from search_spaces import SearchSpace
from tasks import get_task

from .device import granted_gpus, trial_device, trial_resources
from .gather import gather
from .objectives import Constraint, Objective, constraint_values, feasible, rewards
from .rewards import BestEpoch, reward_rule


@dataclass(frozen=True)
class TrialSetup:
    """What every trial of a job needs; shipped once to the workers by `tune.with_parameters`."""

    space: SearchSpace
    task: str                  # task registry name (`tasks.TASKS`: "noop", "char_lm", ...)
    metric: str                # task metric the reward is computed from
    mode: str                  # its direction, "min" or "max"
    epochs: int                # epoch budget per trial (ASHA's max_t)
    seed: int = 0
    phase: str = "search"      # "search", or "final": configs retrained at the final budget,
    #                            given whole (not projected on the space: the task's default
    #                            configuration may lie outside it) and scored on the whole
    #                            validation split (the task's `full_validation` overrides)
    gather_key: str = ""       # the experiment's trial actors start together (`workers.gather`):
    gather_size: int = 1       # each one's first trial waits for this many (1: no wait)
    objectives: tuple[Objective, ...] = ()     # a multi-objective job's (the first is `metric`)
    constraints: tuple[Constraint, ...] = ()   # a constrained job's


PHASE_TAG = "hyperseq.phase"
FINAL_KEY = "final"            # a final-phase trial's config is {FINAL_KEY: the configuration}
MARK = "hyperseq."             # config keys with this prefix are tags of the trial's run, not
#                                hyperparameters (e.g. "hyperseq.default": True in the final phase)


def trial_seed(seed: int, trial_id: str) -> int:
    """Deterministic child seed from the job seed and the trial id."""
    tail = trial_id.rsplit("_", 1)[-1]
    index = int(tail) if tail.isdigit() else zlib.crc32(trial_id.encode())
    return (seed * 1_000_003 + index) % (2 ** 31)


def _finite(values: Mapping[str, Any]) -> dict[str, float]:
    """Finite numbers of a metrics dict (bools as 0/1): what MLflow can plot."""
    out = {}
    for k, v in values.items():
        if isinstance(v, (bool, int, float)) and math.isfinite(float(v)):
            out[k] = float(v)
    return out


def _child(metrics: Mapping[str, Any], best: BestEpoch, setup: TrialSetup, reward: float) -> dict[str, float]:
    """What the trial's run records for this epoch (cost included: seconds, work units, and the
    task's own ``params`` and ``step_ms``, among its finite metrics)."""
    child = {**_finite(metrics), "reward": reward, "fidelity": best.epochs / setup.epochs,
             "train_seconds": float(metrics.get("seconds", 0.0))}
    if "trained" in metrics:
        child["trained_units"] = float(metrics["trained"])
    if best.best is not None:
        child[f"best_{setup.metric}"] = best.best_value
        child["best_epoch"] = float(best.best.get("epoch", best.epochs))
    return child


def _unit(task: Any) -> str:
    """What the task's work units are ("tokens", "seqs"): from its throughput key."""
    return getattr(task, "throughput_key", "units_per_s").removesuffix("_per_s")


def _config(config: Mapping[str, Any], setup: TrialSetup, task: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """(hyperparameters, run tags) of a trial's config."""
    if setup.phase == "final":
        config = config[FINAL_KEY]
    tags = {k: str(v).lower() for k, v in config.items() if k.startswith(MARK)}
    config = {k: v for k, v in config.items() if not k.startswith(MARK)}
    if setup.phase == "search":
        return setup.space.project(config), tags
    return {**config, **getattr(task, "full_validation", {})}, tags


def _objectives(report: dict[str, Any], metrics: Mapping[str, Any], best: BestEpoch,
                setup: TrialSetup) -> None:
    """A multi-objective job's ``objectives`` (the best epoch's vector, higher is better; None
    once diverged or before a finite epoch: the trial tells nothing) and a constrained job's
    ``constraints`` (the best epoch's, else this epoch's: a diverged trial still has its size),
    with ``feasible`` (0/1) on the trial's run."""
    source = None if best.diverged else best.best
    if len(setup.objectives) > 1:
        report["objectives"] = None if source is None else rewards(source, setup.objectives)
    if setup.constraints:
        values = constraint_values(source or metrics, setup.constraints)
        report["constraints"] = values
        report["child"]["feasible"] = float(feasible(values))


def run_trial(config: Mapping[str, Any], setup: TrialSetup) -> None:
    """Train one configuration and report every epoch (see the module docstring)."""
    trial_id = tune.get_context().get_trial_id() or "local"
    gather(setup.gather_key, setup.gather_size)
    task = get_task(setup.task)
    cfg, marks = _config(config, setup, task)
    device = trial_device()
    best = BestEpoch(reward_rule(setup.metric, setup.mode))
    node = ray.get_runtime_context()
    tags: dict[str, str] | None = {"hyperseq.device": device,
                                   "hyperseq.gpu_ids": ",".join(map(str, granted_gpus())),
                                   # which Ray node ran it (ids differ where IPs do not)
                                   "hyperseq.node": node.get_node_id(),
                                   "hyperseq.node_ip": ray.util.get_node_ip_address(),
                                   PHASE_TAG: setup.phase, "hyperseq.trained_unit": _unit(task),
                                   **marks}
    for metrics in task.train(cfg, epochs=setup.epochs, device=device,
                              seed=trial_seed(setup.seed, trial_id)):
        best.update(metrics)
        done = bool(metrics.get("diverged")) or best.epochs >= setup.epochs
        reward = best.reward if best.reward is not None else best.rule.floor
        report: dict[str, Any] = {"reward": reward, "epoch": int(metrics.get("epoch", best.epochs)),
                                  "trial_done": done, "diverged": best.diverged,
                                  "child": _child(metrics, best, setup, reward)}
        _objectives(report, metrics, best, setup)
        if tags:
            report["child_tags"], tags = tags, None
        tune.report(report)
        if done:
            return


def make_trainable(setup: TrialSetup, cpus: float = 1, gpus: float = 0) -> Any:
    """`run_trial` bound to `setup`, with the per-trial resource request (fractional GPUs ok)."""
    return tune.with_resources(tune.with_parameters(run_trial, setup=setup), trial_resources(cpus, gpus))
