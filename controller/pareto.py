"""Pareto ranking and hypervolume over objective vectors.

Every function takes points to MINIMISE (Optuna's convention: negate a maximised objective
before calling) and, where constraints matter, one total violation per point (the sum of the
positive parts of its constraint values, 0 = feasible; Optuna's ``c <= 0`` feasibility). The
constrained order is Deb's (NSGA-II's constrained domination): a feasible point beats an
infeasible one, two infeasible points compare by violation, two feasible ones by domination.
The controller ranks its multi-objective history with these (`objectives.py`); the job's
``best --pareto``, its Pareto plot and the hypervolume benchmark use the same functions.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

Point = Sequence[float]


def dominates(a: Point, b: Point) -> bool:
    """a is no worse than b in every objective and better in at least one (minimising)."""
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def violation(constraints: Sequence[float] | None) -> float:
    """Total violation of Optuna-style constraint values (each <= 0 is satisfied)."""
    return sum(max(0.0, float(c)) for c in constraints or ())


def front_ranks(points: Sequence[Point], violations: Sequence[float] | None = None) -> list[int]:
    """Non-dominated sorting (Deb et al. 2002): 0 for the first front, 1 for the next, ...
    Infeasible points rank after every feasible one, in order of violation (equal violations
    share a rank). The dominance matrix is one tensor op, so a rescore per result stays cheap."""
    n = len(points)
    viol = [float(v) for v in violations] if violations is not None else [0.0] * n
    ranks = [0] * n
    feasible = [i for i in range(n) if viol[i] <= 0]
    rank = 0
    if feasible:
        p = torch.tensor([list(map(float, points[i])) for i in feasible], dtype=torch.float64)
        beats = (p[:, None] <= p[None]).all(-1) & (p[:, None] < p[None]).any(-1)   # [i, j]: i dominates j
        count = beats.sum(0)
        left = torch.ones(len(feasible), dtype=torch.bool)
        while bool(left.any()):
            front = left & (count == 0)
            for k in front.nonzero().flatten().tolist():
                ranks[feasible[k]] = rank
            count = count - beats[front].sum(0)
            left &= ~front
            rank += 1
    for v in sorted({viol[i] for i in range(n) if viol[i] > 0}):
        for i in range(n):
            if viol[i] == v:
                ranks[i] = rank
        rank += 1
    return ranks


def pareto_front(points: Sequence[Point], violations: Sequence[float] | None = None) -> list[int]:
    """Indices of the feasible non-dominated points, in input order (empty if none is feasible).
    A sweep in lexicographic order, where no point can be dominated by a later one, so the cost
    grows with the front, not with the square of the points (a whole table's front is cheap)."""
    viol = list(violations) if violations is not None else [0.0] * len(points)
    order = sorted((i for i in range(len(points)) if viol[i] <= 0), key=lambda i: tuple(points[i]))
    front: list[int] = []
    for i in order:
        if not any(dominates(points[j], points[i]) for j in front):
            front.append(i)
    return sorted(front)


def crowding(points: Sequence[Point], members: Sequence[int]) -> dict[int, float]:
    """NSGA-II crowding distance of each member within its front: the sum over objectives of
    the gap between its neighbours, each objective scaled by the front's range; the extremes
    of every objective get +inf, so a front keeps its ends."""
    out = {i: 0.0 for i in members}
    if len(members) < 3:
        return {i: math.inf for i in members}
    for m in range(len(points[members[0]])):
        order = sorted(members, key=lambda i: points[i][m])
        low, high = points[order[0]][m], points[order[-1]][m]
        out[order[0]] = out[order[-1]] = math.inf
        if high <= low:
            continue
        for k in range(1, len(order) - 1):
            out[order[k]] += (points[order[k + 1]][m] - points[order[k - 1]][m]) / (high - low)
    return out


def hypervolume(points: Sequence[Point], reference: Point) -> float:
    """Volume dominated by `points` and bounded by `reference` (minimising; points not
    strictly better than the reference in every objective add nothing). Exact: a sweep in 2-D,
    slicing by the last objective above (fine for the hundreds of points a study has)."""
    pts = [tuple(map(float, p)) for p in points if all(x < r for x, r in zip(p, reference))]
    if not pts:
        return 0.0
    ref = tuple(map(float, reference))
    if len(ref) == 1:
        return ref[0] - min(p[0] for p in pts)
    front = [pts[i] for i in pareto_front(pts)]
    if len(ref) == 2:
        volume, last_y = 0.0, ref[1]
        for x, y in sorted(set(front)):
            if y < last_y:
                volume += (ref[0] - x) * (last_y - y)
                last_y = y
        return volume
    volume, levels = 0.0, sorted({p[-1] for p in front}) + [ref[-1]]
    for low, high in zip(levels, levels[1:]):       # slab [low, high): points at or below low
        below = [p[:-1] for p in front if p[-1] <= low]
        volume += hypervolume(below, ref[:-1]) * (high - low)
    return volume


__all__ = ["crowding", "dominates", "front_ranks", "hypervolume", "pareto_front", "violation"]
