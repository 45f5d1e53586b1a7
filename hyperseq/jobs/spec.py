"""A validated job (`JobSpec`), checked before Ray starts and before any tracking write.

`prepare_job` turns user input (CLI or Python) into a `JobSpec` or raises a one-line error
naming the option (`JobError`) or the spec field (`SpecError`). It reads the tracking store
only to reject a job name already in use, and never creates it.
"""
from __future__ import annotations

import dataclasses
import os
import random
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller import ControllerOptions
from search_spaces import SearchSpace, SpecError, load_space
from tasks import get_task
from workers.rewards import RewardRule, reward_rule

from .. import schedulers
from . import warm
from .disk import write_probe
from ..tracking.probe import writable_dir
from ..tracking.store import StoreError, check_uri, default_tracking_uri, open_store
from .objectives import (Constraint, Objective, job_objectives, parse_constraint, parse_objective, several,
                         task_metrics)
from .options import FINAL_SUFFIX, JobError, JobOptions, check_name, new_name

PREFLIGHT_SAMPLES = 32
FINAL_FACTOR = 3               # the final phase's default budget: 3 x --epochs
DEFAULT_STORAGE = "~/ray_results"

__all__ = ["JobError", "JobOptions", "JobSpec", "check_name", "prepare_job"]


@dataclass(frozen=True)
class JobSpec:
    """A validated job: its options (name, tracking URI and storage resolved) and its space.

    Options read as attributes too: ``spec.trials`` is ``spec.options.trials``.
    """

    options: JobOptions
    space: SearchSpace
    task: str
    metric: str
    mode: str
    rule: RewardRule
    storage: Path                     # Ray Tune's root directory; the job's is storage / name

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__"):
            raise AttributeError(key)
        return getattr(self.options, key)

    @property
    def objectives(self) -> list[Objective]:
        """What the job optimises: the `objective` options, else its metric in its mode."""
        return job_objectives(self.options.objective, None, self.metric, self.mode)[0]

    @property
    def constraints(self) -> list[Constraint]:
        return job_objectives(None, self.options.constraint, self.metric, self.mode)[1]

    @property
    def several(self) -> bool:
        """Several objectives or a constraint: trials report vectors and constraint values."""
        return several(self.options.objective, self.options.constraint)

    def trial_targets(self) -> dict[str, Any]:
        """`TrialSetup`'s objectives (several only) and constraints."""
        many = len(self.objectives) > 1
        return {"objectives": tuple(self.objectives) if many else (), "constraints": tuple(self.constraints)}

    def searcher_targets(self) -> dict[str, Any]:
        """The searcher's ``objectives`` (how many) and ``constrained``; none for a plain job."""
        return {"objectives": len(self.objectives), "constrained": bool(self.constraints)} if self.several else {}

    @property
    def experiment_path(self) -> str:
        return str(self.storage / self.options.name)

    def params(self) -> dict[str, Any]:
        """The job's MLflow params: options, and what the space decided."""
        return {**self.options.params(), "metric": self.metric, "mode": self.mode, "task": self.task,
                "space": self.space.name, "reward_rule": self.rule.describe()}


def check_space(space: SearchSpace | str | Path) -> tuple[SearchSpace, str, str]:
    """(space, metric, mode); SpecError names the field."""
    sp = space if isinstance(space, SearchSpace) else load_space(space)
    if not sp.task:
        raise SpecError("task", f"space {sp.name!r} names no child task (e.g. task: char_lm, or noop)")
    try:
        task = get_task(sp.task)
    except ValueError as err:
        raise SpecError("task", str(err)) from None
    metric, mode = sp.metric or task.metric, sp.mode or task.mode
    if sp.metric is None and sp.mode is not None and sp.mode != task.mode:
        raise SpecError("mode", f"{sp.mode!r} but task {sp.task!r} metric {metric!r} is {task.mode!r}")
    check_keys(sp, task)
    rng = random.Random(0)
    for _ in range(min(PREFLIGHT_SAMPLES, sp.size())):
        try:
            task.parse(sp.sample(rng))
        except ValueError as err:
            raise SpecError("decisions", f"a configuration of space {sp.name!r} is invalid for "
                            f"task {sp.task!r}: {err}") from None
    return sp, metric, mode


def check_keys(sp: SearchSpace, task: Any) -> None:
    """Every decision name is a parameter of the task (or ``name_k`` of a layer-wise one).

    All of them, not only those a few samples reach: a typo in a rarely active decision would
    otherwise fail only the trials that use it. A task without a config class (noop) takes any.
    """
    cls = getattr(task, "config_cls", None)
    if cls is None:
        return
    keys = [f.name for f in dataclasses.fields(cls) if not f.metadata.get("derived")]
    layered = getattr(task, "per_layer", ())
    for slot in sp.slots:
        match = re.fullmatch(r"(\w+)_([1-9][0-9]*)", slot.key)
        if slot.key not in keys and not (match and match.group(1) in layered):
            raise SpecError(f"{slot.path}.name", f"{slot.key!r} is not a parameter of task {sp.task!r} "
                            f"(parameters: {', '.join(keys)})")


def check_objectives(options: JobOptions, task: str, metric: str, mode: str) -> tuple[str, str, JobOptions]:
    """(metric, mode, options) of a job with objectives: the first objective is the job's metric
    (its reward, what ranks trials and answers); every name is one the task reports. A job with
    several objectives takes no scheduler (a scheduler stops trials on one metric: it would cut
    those good at the others; `auto` resolves to none) and no warm start (earlier trials' rewards
    are single-objective and unconstrained)."""
    names = task_metrics(get_task(task))
    for param, texts in (("objective", options.objective), ("constraint", options.constraint)):
        for text in texts or ():
            name = (parse_objective(text) if param == "objective" else parse_constraint(text)).name
            if name not in names:
                raise JobError(param, text, f"{name!r} is not a metric task {task!r} reports "
                               f"(choose from {', '.join(names)})")
    if len(options.objective or ()) > 1:
        if options.scheduler not in ("auto", "none"):
            raise JobError("scheduler", options.scheduler, "stops trials on one metric; a job with "
                           "several objectives runs none (auto or none)")
        options = options.replace(scheduler="none")
    if options.warm_start and several(options.objective, options.constraint):
        raise JobError("warm_start", options.warm_start, "is for single-objective jobs without "
                       "constraints (earlier trials' rewards are one unconstrained number)")
    first = job_objectives(options.objective, None, metric, mode)[0][0]
    return first.name, first.mode, options


def check_local_resources(cpus: float, gpus: float) -> None:
    """For a local Ray (started by the job): a trial must fit on this machine.

    On a cluster (`$RAY_ADDRESS` or Ray already running) `ray_env.check_cluster` checks later.
    """
    ray = sys.modules.get("ray")
    if os.environ.get("RAY_ADDRESS") or (ray is not None and ray.is_initialized()):
        return
    if cpus > (os.cpu_count() or 1):
        raise JobError("cpus_per_trial", cpus, f"is more than the {os.cpu_count()} CPU(s) of this machine")
    if gpus > 0:
        import torch
        have = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if gpus > have:
            raise JobError("gpus_per_trial", gpus, f"is more than the {have} CUDA GPU(s) of this machine")


def _unique_name(base: str, uri: str) -> str:
    name, k = base, 1
    while open_store(uri).job_runs(name):
        k += 1
        name = f"{base}-{k}"
    return name


def _check_controller(options: JobOptions) -> None:
    try:
        ControllerOptions.create(**{"seed": options.seed, **options.controller_options})
    except (TypeError, ValueError) as err:
        raise JobError("controller_options", options.controller_options, str(err)) from None


def check_storage(given: str | None) -> Path:
    """Ray Tune's root directory, resolved: a directory, or one that can be created."""
    store = Path(given or DEFAULT_STORAGE).expanduser().resolve()
    if store.exists() and not store.is_dir():
        raise JobError("storage", given, "exists and is not a directory")
    ancestor = store
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not writable_dir(ancestor):
        why = "not a directory" if not ancestor.is_dir() else "not writable"
        raise JobError("storage", given or DEFAULT_STORAGE, f"cannot be written: {ancestor} is {why}")
    why = write_probe(ancestor)
    if why:
        raise JobError("storage", given or DEFAULT_STORAGE, f"cannot be written: {why}")
    return store


def _tracking_uri(given: str | None) -> str:
    """The store's URI (option, else environment, else default), usable for writing: StoreError
    (exit 1) within seconds when it does not answer or cannot be written."""
    uri = given or default_tracking_uri()
    try:
        check_uri(uri)
    except StoreError as err:
        raise JobError("tracking_uri", uri, err.reason) from None
    open_store(uri).probe(write=True)
    return uri


def prepare_job(space: SearchSpace | str | Path, **given: Any) -> JobSpec:
    """Check every option (`JobOptions` fields, as keywords) and the space.

    Raises JobError / SpecError (both ValueErrors) naming the option or spec field, or
    StoreError (exit_code 1) when the tracking store does not answer or cannot be written.
    """
    options = JobOptions.checked(**given)
    check_local_resources(options.cpus_per_trial, options.gpus_per_trial)
    _check_controller(options)
    store = check_storage(options.storage)
    sp, metric, mode = check_space(space)
    metric, mode, options = check_objectives(options, sp.task, metric, mode)
    uri = _tracking_uri(options.tracking_uri)
    name = options.name or _unique_name(f"{sp.name}-{options.searcher}-{time.strftime('%Y%m%d-%H%M%S')}", uri)
    new_name("name", name)
    if open_store(uri).job_runs(name):
        raise JobError("name", name, f"a job of that name already exists in {uri}")
    for folder in (store / name, store / f"{name}{FINAL_SUFFIX}"):
        if folder.exists():
            raise JobError("name", name, f"the Ray Tune directory {folder} already exists")
    options = options.replace(name=name, tracking_uri=uri, storage=str(store),
                              scheduler=schedulers.resolve(options.scheduler, options.searcher, options.epochs),
                              final_epochs=options.final_epochs or FINAL_FACTOR * options.epochs,
                              warm_start=warm.resolve(options.warm_start, sp.name, uri))
    return JobSpec(options, sp, sp.task, metric, mode, reward_rule(metric, mode), store)
