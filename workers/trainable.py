"""The Ray Tune function trainable: one trial = one child model trained epoch by epoch.

Per epoch it logs the metrics to the trial's MLflow child run *before* calling `tune.report`,
so whatever happens at the report (a scheduler stopping the trial raises `SystemExit` inside
it) the store already holds that epoch. The reported dict carries:

- the task's epoch metrics (finite numbers only);
- ``reward``: the best-so-far reward (`workers.rewards`), what searchers and ASHA optimise;
- ``best_<metric>`` / ``best_epoch``: the best epoch so far; ``fidelity``: epochs done / budget;
- ``trial_done``: True on the last report, after the child run was ended FINISHED;
- ``mlflow_run_id``: so the driver can end the child run of a trial a scheduler stopped.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any, Mapping

from ray import tune

from search_spaces import SearchSpace

from .device import granted_gpus, trial_device
from .noop import resolve_task
from .rewards import BestEpoch, reward_rule
from .tracking import TAG_ERROR, ChildRun, numeric_metrics


@dataclass(frozen=True)
class TrialSetup:
    """What every trial of a job needs; shipped once to the workers by `tune.with_parameters`."""

    space: SearchSpace
    task: str                  # task name for `resolve_task` ("noop", "char_lm", ...)
    metric: str                # task metric the reward is computed from
    mode: str                  # its direction, "min" or "max"
    epochs: int                # epoch budget per trial (ASHA's max_t)
    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    job: str
    seed: int = 0


def trial_seed(seed: int, trial_id: str) -> int:
    """Deterministic child seed from the job seed and the trial's index in the job."""
    tail = trial_id.rsplit("_", 1)[-1]
    index = int(tail) if tail.isdigit() else zlib.crc32(trial_id.encode())
    return (seed * 1_000_003 + index) % (2 ** 31)


def run_trial(config: Mapping[str, Any], setup: TrialSetup) -> None:
    """Train one configuration; report every epoch; record the child run in MLflow."""
    trial_id = tune.get_context().get_trial_id() or "local"
    cfg = setup.space.project(config)            # random search samples every slot
    device = trial_device()
    run = ChildRun(setup.tracking_uri, setup.experiment_id, setup.parent_run_id, setup.job,
                   trial_id, cfg, tags={"hyperseq.device": device,
                                        "hyperseq.gpu_ids": ",".join(map(str, granted_gpus()))})
    best = BestEpoch(reward_rule(setup.metric, setup.mode))
    finished = False
    try:
        task = resolve_task(setup.task)
        for metrics in task.train(cfg, epochs=setup.epochs, device=device,
                                  seed=trial_seed(setup.seed, trial_id)):
            best.update(metrics)
            epoch = int(metrics.get("epoch", best.epochs))
            done = bool(metrics.get("diverged")) or best.epochs >= setup.epochs
            reward = best.reward if best.reward is not None else best.rule.floor
            values = {**numeric_metrics(metrics), "reward": reward, "fidelity": best.epochs / setup.epochs}
            if best.best is not None:
                values[f"best_{setup.metric}"] = best.best_value
                values["best_epoch"] = float(best.best.get("epoch", best.epochs))
            run.log_epoch(values, step=epoch)
            if done:
                run.finish("FINISHED", tags={"hyperseq.diverged": str(best.diverged).lower()})
                finished = True
            tune.report({**values, "trial_done": done, "mlflow_run_id": run.run_id})
            if done:
                return
        if not finished:                         # the task yielded fewer epochs than asked
            run.finish("FINISHED", tags={"hyperseq.diverged": str(best.diverged).lower()})
            finished = True
    except SystemExit:                           # stopped by the scheduler inside tune.report:
        raise                                    # the driver ends the run (see JobMonitor)
    except BaseException as err:
        if not finished:
            run.finish("FAILED", tags={TAG_ERROR: f"{type(err).__name__}: {err}"})
        raise


def make_trainable(setup: TrialSetup, cpus: float = 1, gpus: float = 0) -> Any:
    """`run_trial` bound to `setup`, with the per-trial resource request."""
    from .device import trial_resources
    return tune.with_resources(tune.with_parameters(run_trial, setup=setup), trial_resources(cpus, gpus))
