"""A trial's objectives and constraints, computed where the trial runs.

A multi-objective or constrained job (``--objective``, ``--constraint``; parsed and checked in
`hyperseq.jobs.objectives`) ships these plain records to its trials, which report, from the
best epoch, the objective vector the searchers are told (higher is better, raw scale) and
Optuna-style constraint values (``<= 0`` is satisfied: ``metric - bound`` for ``<=``,
``bound - metric`` for ``>=``). A missing or non-finite metric makes the vector None (the
trial tells nothing) and its constraint +inf (violated), so an answer never rests on a guess.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence


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
        got = number(metrics.get(self.name))
        if got is None:
            return math.inf
        return got - self.bound if self.op == "<=" else self.bound - got

    def __str__(self) -> str:           # the bound exactly (it round-trips through the options tag)
        whole = self.bound.is_integer() and abs(self.bound) < 1e15
        return f"{self.name}{self.op}{int(self.bound) if whole else repr(self.bound)}"


def point(metrics: Mapping[str, Any], objectives: Sequence[Objective]) -> list[float] | None:
    """The trial's objectives as a point to minimise; None if any is missing or not finite."""
    out = []
    for obj in objectives:
        got = number(metrics.get(obj.name))
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


def feasible(values: Sequence[float] | None) -> bool:
    """Whether every constraint value is satisfied (<= 0); no constraints: feasible."""
    return all(v <= 0 for v in values or ())


def number(value: Any) -> float | None:
    """A finite float, else None (bools are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None
