"""A job's objectives and constraints: ``--objective NAME:min|max`` and ``--constraint "NAME<=V"``.

One place parses them (the `JobOptions` checks), says which metrics a task's job may name,
and re-exports what turns a trial's metrics into what the rest of the service needs (defined
in `workers.objectives`, where the trials compute them): the point to minimise
(`controller.pareto`'s convention: a maximised metric is negated), the searchers' objective
vector (higher is better, as rewards are) and Optuna-style constraint values (``<= 0`` is
satisfied: ``metric - bound`` for ``<=``, ``bound - metric`` for ``>=``). A missing or
non-finite metric makes the trial's point None (it tells nothing), and a constraint on a
missing metric counts as violated, so an answer never rests on a guess.
"""
from __future__ import annotations

import math
import re
from typing import Any, Sequence

from workers.objectives import Constraint, Objective, constraint_values, point, rewards

COST_METRICS = ("params", "step_ms")   # every task reports them each epoch (`tasks.base.Task.train`)
MODES = ("min", "max")
_OBJECTIVE = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_.]*)\s*:\s*([A-Za-z]+)\s*")
_CONSTRAINT = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(<=|>=)\s*(\S+)\s*")


def parse_objective(text: Any) -> Objective:
    """``NAME:min`` or ``NAME:max``; ValueError saying what is wrong otherwise."""
    match = _OBJECTIVE.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError("must be NAME:min or NAME:max, e.g. val_loss:min")
    name, mode = match.group(1), match.group(2).lower()
    if mode not in MODES:
        raise ValueError(f"direction {match.group(2)!r} must be min or max")
    return Objective(name, mode)


def parse_constraint(text: Any) -> Constraint:
    """``NAME<=VALUE`` or ``NAME>=VALUE`` with a finite number; ValueError otherwise."""
    match = _CONSTRAINT.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError('must be "NAME<=VALUE" or "NAME>=VALUE", e.g. "params<=50000"')
    try:
        bound = float(match.group(3))
    except ValueError:
        raise ValueError(f"bound {match.group(3)!r} is not a number") from None
    if not math.isfinite(bound):
        raise ValueError(f"bound {match.group(3)!r} must be finite")
    return Constraint(match.group(1), match.group(2), bound)


def check_directions(objectives: Sequence[Objective]) -> None:
    """ValueError if a metric is named twice (contradictory or repeated directions)."""
    seen: dict[str, str] = {}
    for obj in objectives:
        if obj.name in seen:
            what = "contradictory directions" if seen[obj.name] != obj.mode else "named twice"
            raise ValueError(f"{obj.name} has {what} ({obj.name}:{seen[obj.name]}, {obj})")
        seen[obj.name] = obj.mode


def task_metrics(task: Any) -> tuple[str, ...]:
    """What a job of `task` may name: its metric, the other validation metrics it reports
    (`val_metrics`), and the cost every task reports (``params``, ``step_ms``)."""
    names = (task.metric, *getattr(task, "val_metrics", ()), *COST_METRICS)
    return tuple(dict.fromkeys(names))


def job_objectives(objective: Sequence[str] | None, constraint: Sequence[str] | None, metric: str,
                   mode: str) -> tuple[list[Objective], list[Constraint]]:
    """A job's objectives (default: its metric in its mode) and constraints, from the option
    values (already checked by `JobOptions`)."""
    objectives = [parse_objective(text) for text in objective or ()] or [Objective(metric, mode)]
    return objectives, [parse_constraint(text) for text in constraint or ()]


def several(objective: Sequence[str] | None, constraint: Sequence[str] | None) -> bool:
    """Whether the job is multi-objective or constrained: its trials report vectors and
    constraint values, and its finalists and answer are chosen by feasibility and rank."""
    return len(objective or ()) > 1 or bool(constraint)


__all__ = ["COST_METRICS", "Constraint", "Objective", "check_directions", "constraint_values",
           "job_objectives", "parse_constraint", "parse_objective", "point", "rewards",
           "several", "task_metrics"]
