"""A job's trials as points of its objectives: feasibility and the Pareto front, from the store.

What `best --pareto`, ``best_configs(..., pareto=True)`` and the job's Pareto plot share:

- **objectives and constraints** are the job's recorded options (the parent run's
  ``hyperseq.options`` tag: ``objective``, ``constraint``); a job recorded without objectives
  has one, its task metric in its mode (the parent's ``hyperseq.metric`` / ``hyperseq.mode``);
- **which trials**: the search phase's finished runs (one per trial id: a retried trial keeps
  its run with values). They trained at one budget and were scored on the same validation
  subset, so their points compare; the final phase retrains a few of them longer and scores
  on the whole validation split (and adds the task's default, which was never searched), so
  its runs would outrank their own search results by measurement, not by configuration;
- **which epoch**: every objective and constraint metric of a trial is read at one epoch, its
  best by the first objective (the lowest value of a ``min`` objective, the highest of a
  ``max`` one; the earliest on a tie). When the first objective is the task metric that is the
  epoch the trial's reward comes from (its ``best_epoch`` and ``best_<metric>``); else it is
  found in the first objective's history. The other metrics come from the run's latest values
  when that epoch is the run's last (always so for a constant such as ``params``), else from
  their history at that step (the latest value when the metric has none there);
- **the front**: `controller.pareto.pareto_front` over the points to minimise, with Deb's
  constrained order: only feasible trials (every constraint satisfied) can be on it, and a
  trial whose constraint metric is missing is infeasible.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

from controller.pareto import pareto_front, violation

from ..jobs.objectives import Constraint, Objective, constraint_values, parse_constraint, parse_objective, point
from .store import Store, open_store
from .tags import TAG_METRIC, TAG_MODE, TAG_OPTIONS, TAG_PHASE, TAG_TRIAL


@dataclass
class TrialPoint:
    """One search trial: its metric values at its chosen epoch and where it stands."""

    run: Any                              # the trial's run (MLflow `Run`)
    values: dict[str, float]              # objective and constraint metrics (absent: not logged)
    point: list[float] | None             # the objectives to minimise; None if one is missing
    violation: float                      # total constraint violation, 0 = feasible
    on_front: bool = field(default=False)

    @property
    def feasible(self) -> bool:
        return self.violation <= 0


def recorded_objectives(parent: Any) -> tuple[list[Objective], list[Constraint]]:
    """The job's objectives and constraints from its options tag; without recorded objectives,
    the task metric in its mode (none at all for a run without a metric)."""
    try:
        options = json.loads(parent.data.tags.get(TAG_OPTIONS) or "{}")
    except json.JSONDecodeError:
        options = {}
    objectives = [parse_objective(text) for text in _texts(options.get("objective"))]
    constraints = [parse_constraint(text) for text in _texts(options.get("constraint"))]
    metric, mode = parent.data.tags.get(TAG_METRIC), parent.data.tags.get(TAG_MODE)
    if not objectives and metric and mode in ("min", "max"):
        objectives = [Objective(metric, mode)]
    return objectives, constraints


def _texts(value: Any) -> tuple[str, ...]:
    """A recorded repeatable option: a list of strings (one string: itself; null: none)."""
    return (value,) if isinstance(value, str) else tuple(value or ())


def search_points(uri: str, parent: Any) -> tuple[list[Objective], list[Constraint], list[TrialPoint]]:
    """The job's objectives, constraints and search-phase trials as points, the front marked
    (see the module docstring for which trials, which epoch and which front)."""
    objectives, constraints = recorded_objectives(parent)
    store = open_store(uri)
    metric = parent.data.tags.get(TAG_METRIC)
    kept: dict[str, TrialPoint] = {}
    for run in store.trial_runs(parent.info.run_id):
        if run.data.tags.get(TAG_PHASE, "search") == "final" or run.info.status != "FINISHED" or not objectives:
            continue
        values = epoch_values(store, run, objectives, constraints, metric)
        trial = TrialPoint(run, values, point(values, objectives),
                           violation(constraint_values(values, constraints)))
        tid = run.data.tags.get(TAG_TRIAL, run.info.run_name)
        if tid not in kept or (kept[tid].point is None and trial.point is not None):
            kept[tid] = trial                               # a retried trial: its run with values
    points = [p for p in kept.values() if p.point is not None]
    for i in pareto_front([p.point for p in points], [p.violation for p in points]):
        points[i].on_front = True
    return objectives, constraints, list(kept.values())


def epoch_values(store: Store, run: Any, objectives: Sequence[Objective], constraints: Sequence[Constraint],
                 metric: str | None) -> dict[str, float]:
    """The objective and constraint metrics of `run` at its best epoch by the first objective."""
    latest = run.data.metrics
    first = objectives[0]
    names = list(dict.fromkeys([o.name for o in objectives] + [c.name for c in constraints]))
    step, value = _best_step(store, run, first, metric)
    values = {} if value is None else {first.name: value}
    last = latest.get("epoch")
    use_latest = step is None or (last is not None and step == int(last))
    for name in names:
        if name in values:
            continue
        at_step = {} if use_latest else dict(store.metric_history(run.info.run_id, name))
        got = at_step.get(step, latest.get(name))
        if got is not None:
            values[name] = float(got)
    return values


def _best_step(store: Store, run: Any, first: Objective, metric: str | None) -> tuple[int | None, float | None]:
    """(step, value) of the run's best epoch by `first`; (None, latest value) without a history."""
    latest = run.data.metrics
    if first.name == metric and f"best_{metric}" in latest and "best_epoch" in latest:
        return int(latest["best_epoch"]), float(latest[f"best_{metric}"])
    history = [(s, v) for s, v in store.metric_history(run.info.run_id, first.name) if math.isfinite(v)]
    if not history:
        got = latest.get(first.name)
        return None, None if got is None else float(got)
    sign = 1.0 if first.mode == "min" else -1.0
    step, value = min(history, key=lambda sv: (sign * sv[1], sv[0]))
    return int(step), float(value)


__all__ = ["TrialPoint", "epoch_values", "recorded_objectives", "search_points"]
