"""Validation of a job's options and space, before Ray starts and before any MLflow write.

`prepare_job` turns user input (CLI or Python) into a checked `JobSpec` or raises a one-line
error naming the option (`JobError`) or the spec field (`SpecError`). It reads the tracking
store only to reject a job name already in use, and never creates it.
"""
from __future__ import annotations

import math
import os
import random
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from search_spaces import SearchSpace, SpecError, load_space
from workers import tracking
from workers.noop import resolve_task
from workers.rewards import RewardRule, reward_rule

from .controller import ControllerOptions
from .pairs import parse_pairs
from .searcher import SEARCHERS

SCHEDULERS = ("none", "asha")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
PREFLIGHT_SAMPLES = 32


class JobError(ValueError):
    """An invalid job option; `param` is its Python name (the CLI shows ``--param-name``)."""

    def __init__(self, param: str, value: Any, reason: str) -> None:
        self.param, self.value, self.reason = param, value, reason
        super().__init__(f"{param}={value!r}: {reason}")


@dataclass(frozen=True)
class JobSpec:
    """A validated job: everything `jobs.execute` needs."""

    space: SearchSpace
    task: str
    metric: str
    mode: str
    rule: RewardRule
    searcher: str
    trials: int
    concurrency: int
    epochs: int
    scheduler: str | None
    gpus_per_trial: float
    cpus_per_trial: float
    name: str
    tracking_uri: str
    storage: Path
    seed: int
    max_failures: int
    controller_options: Mapping[str, Any] = field(default_factory=dict)


def _int(param: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise JobError(param, value, "must be an integer")
    if value < low:
        raise JobError(param, value, f"must be >= {low}")
    return value


def _number(param: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise JobError(param, value, "must be a finite number")
    return value


def check_name(name: str) -> str:
    """A job name: letters, digits, '_', '-', '.'; no '/', no '..' (it names a directory)."""
    if not isinstance(name, str) or not NAME_RE.match(name) or ".." in name:
        raise JobError("name", name, "must be 1-128 letters, digits, '_', '-' or '.', starting with a "
                       "letter or digit, without '/' or '..'")
    return name


def _space(space: SearchSpace | str | Path) -> tuple[SearchSpace, Any, str, str]:
    """(space, task object, metric, mode); SpecError names the field."""
    sp = space if isinstance(space, SearchSpace) else load_space(space)
    if not sp.task:
        raise SpecError("task", f"space {sp.name!r} names no child task (e.g. task: char_lm, or noop)")
    try:
        task = resolve_task(sp.task)
    except ValueError as err:
        raise SpecError("task", str(err)) from None
    metric, mode = sp.metric or task.metric, sp.mode or task.mode
    if sp.metric is None and sp.mode is not None and sp.mode != task.mode:
        raise SpecError("mode", f"{sp.mode!r} but task {sp.task!r} metric {metric!r} is {task.mode!r}")
    rng = random.Random(0)
    for _ in range(min(PREFLIGHT_SAMPLES, sp.size())):
        config = sp.sample(rng)
        try:
            task.parse(config)
        except ValueError as err:
            raise SpecError("decisions", f"a configuration of space {sp.name!r} is invalid for "
                            f"task {sp.task!r}: {err}") from None
    return sp, task, metric, mode


def _check_local_resources(cpus: float, gpus: float) -> None:
    """For a local Ray (started by the job): a trial must fit on this machine.

    On a cluster (`$RAY_ADDRESS` or Ray already running) `jobs.check_cluster` checks later.
    """
    if os.environ.get("RAY_ADDRESS") or _ray_running():
        return
    if cpus > (os.cpu_count() or 1):
        raise JobError("cpus_per_trial", cpus, f"is more than the {os.cpu_count()} CPU(s) of this machine")
    if gpus > 0:
        import torch
        have = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if gpus > have:
            raise JobError("gpus_per_trial", gpus, f"is more than the {have} CUDA GPU(s) of this machine")


def _ray_running() -> bool:
    import sys
    ray = sys.modules.get("ray")
    return bool(ray is not None and ray.is_initialized())


def _unique_name(base: str, uri: str) -> str:
    name, k = base, 1
    while tracking.job_runs(uri, name):
        k += 1
        name = f"{base}-{k}"
    return name


def prepare_job(space: SearchSpace | str | Path, searcher: str = "rnn", trials: int = 20,
                concurrency: int = 2, epochs: int = 3, scheduler: str | None = None,
                gpus_per_trial: float = 0, cpus_per_trial: float = 1, name: str | None = None,
                tracking_uri: str | None = None, seed: int = 0, max_failures: int = 2,
                storage: str | Path | None = None,
                controller_options: Mapping[str, Any] | str | None = None) -> JobSpec:
    """Check every option and the space; raise JobError / SpecError (both ValueErrors)."""
    if searcher not in SEARCHERS:
        raise JobError("searcher", searcher, f"choose one of {', '.join(SEARCHERS)}")
    scheduler = "none" if scheduler is None else scheduler
    if scheduler not in SCHEDULERS:
        raise JobError("scheduler", scheduler, f"choose one of {', '.join(SCHEDULERS)}")
    trials = _int("trials", trials, 1)
    concurrency = _int("concurrency", concurrency, 1)
    epochs = _int("epochs", epochs, 1)
    seed = _int("seed", seed, 0)
    max_failures = _int("max_failures", max_failures, 0)
    gpus = _number("gpus_per_trial", gpus_per_trial)
    if gpus < 0:
        raise JobError("gpus_per_trial", gpus_per_trial, "must be >= 0")
    if gpus > 1 and gpus != int(gpus):
        raise JobError("gpus_per_trial", gpus_per_trial, "above 1 must be a whole number of GPUs")
    cpus = _number("cpus_per_trial", cpus_per_trial)
    if cpus <= 0:
        raise JobError("cpus_per_trial", cpus_per_trial, "must be > 0")
    _check_local_resources(cpus, gpus)
    try:
        options = parse_pairs(controller_options) if isinstance(controller_options, str) \
            else dict(controller_options or {})
    except ValueError as err:
        raise JobError("controller_options", controller_options, str(err)) from None
    try:
        ControllerOptions.create(**{"seed": seed, **options})
    except (TypeError, ValueError) as err:
        raise JobError("controller_options", options, str(err)) from None
    uri = tracking_uri or tracking.default_tracking_uri()
    if not isinstance(uri, str) or not uri.strip():
        raise JobError("tracking_uri", tracking_uri, "must be a non-empty URI")
    store = Path(storage).expanduser().resolve() if storage else Path("~/ray_results").expanduser()
    if store.exists() and not store.is_dir():
        raise JobError("storage", str(storage), "exists and is not a directory")
    sp, _, metric, mode = _space(space)
    if name is None:
        name = _unique_name(f"{sp.name}-{searcher}-{time.strftime('%Y%m%d-%H%M%S')}", uri)
    check_name(name)
    if tracking.job_runs(uri, name):
        raise JobError("name", name, f"a job of that name already exists in {uri}")
    if (store / name).exists():
        raise JobError("name", name, f"the Ray Tune directory {store / name} already exists")
    return JobSpec(sp, sp.task, metric, mode, reward_rule(metric, mode), searcher, trials,
                   concurrency, epochs, None if scheduler == "none" else scheduler, gpus, cpus,
                   name, uri, store, seed, max_failures, options)
