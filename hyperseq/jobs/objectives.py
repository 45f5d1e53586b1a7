"""A job's objectives and constraints: ``--objective NAME:min|max`` and ``--constraint "NAME<=V"``.

One place parses them and turns a trial's metrics into what the rest of the service needs:
the point to minimise (`controller.pareto`'s convention: a maximised metric is negated), the
searchers' objective vector (higher is better, as rewards are) and Optuna-style constraint
values (``<= 0`` is satisfied: ``metric - bound`` for ``<=``, ``bound - metric`` for ``>=``).
A missing or non-finite metric makes the trial's point None (it tells nothing), and a
constraint on a missing metric counts as violated, so an answer never rests on a guess.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from controller.pareto import violation

MODES = ("min", "max")
_OBJECTIVE = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_.]*)\s*:\s*([A-Za-z]+)\s*")
_CONSTRAINT = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(<=|>=)\s*(\S+)\s*")


@dataclass(frozen=True)
class Objective:
    """One metric to optimise in its own direction."""

    name: str
    mode: str            # "min" or "max"

    def __str__(self) -> str:
        return f"{self.name}:{self.mode}"


@dataclass(frozen=True)
class Constraint:
    """One bound a trial's metric must respect to be feasible."""

    name: str
    op: str              # "<=" or ">="
    bound: float

    def value(self, metrics: Mapping[str, Any]) -> float:
        """Optuna's constraint value: <= 0 when satisfied; +inf when the metric is missing."""
        got = _number(metrics.get(self.name))
        if got is None:
            return math.inf
        return got - self.bound if self.op == "<=" else self.bound - got

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.bound:g}"


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


def point(metrics: Mapping[str, Any], objectives: Sequence[Objective]) -> list[float] | None:
    """The trial's objectives as a point to minimise; None if any is missing or not finite."""
    out = []
    for obj in objectives:
        got = _number(metrics.get(obj.name))
        if got is None:
            return None
        out.append(got if obj.mode == "min" else -got)
    return out


def rewards(metrics: Mapping[str, Any], objectives: Sequence[Objective]) -> list[float] | None:
    """The objective vector a searcher is told: each higher-is-better (the point negated)."""
    p = point(metrics, objectives)
    return None if p is None else [-x for x in p]


def constraint_values(metrics: Mapping[str, Any], constraints: Sequence[Constraint]) -> list[float]:
    return [c.value(metrics) for c in constraints]


def is_feasible(metrics: Mapping[str, Any], constraints: Sequence[Constraint]) -> bool:
    return violation(constraint_values(metrics, constraints)) <= 0


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


__all__ = ["Constraint", "Objective", "check_directions", "constraint_values", "is_feasible",
           "parse_constraint", "parse_objective", "point", "rewards"]
