"""Several objectives and constraints behind `Controller.tell`, turned into what it learns from.

A multi-objective result is a vector (each objective higher-is-better, on any scale) plus
Optuna-style constraint values (``<= 0`` satisfied), reduced to their total violation. Two
scalars come out of the history of such results:

- `scores`, for the policy's replay and the elites: Deb's constrained order (feasible first,
  infeasible by violation), then the Pareto front a config lies on, then within a front its
  crowding distance (NSGA-II, Deb et al. 2002), so the policy is pulled towards the whole
  front and its spread ends rather than one corner.
- `parego`, the reward model's targets for one proposal: a random augmented Chebyshev
  scalarisation of the objectives (ParEGO, Knowles 2006), each objective normalised to its
  rank in the history, a new weight vector per proposal, so successive trials aim at
  different parts of the front.

Only ranks of either scalar matter downstream (rank shaping, normal-score targets).
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import torch

from .memory import Pairs, as_pairs
from .pareto import crowding, front_ranks, violation

RHO = 0.05            # ParEGO's augmentation: the weighted sum's share beside the max


def vector(reward: Any) -> tuple[float, ...] | None:
    """A told reward as a vector: a number is one objective; None or anything non-finite is
    a failed result (None)."""
    values = (reward,) if isinstance(reward, (int, float)) and not isinstance(reward, bool) else reward
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        return None
    return out if out and all(math.isfinite(v) for v in out) else None


def is_vector(reward: Any) -> bool:
    return isinstance(reward, (list, tuple)) or (hasattr(reward, "__len__") and not isinstance(reward, str))


class Objectives:
    """The mean objective vector and mean violation of every distinct config told."""

    def __init__(self) -> None:
        self.sums: dict[Pairs, list[Any]] = {}    # config -> [vector sums, count, violation sum]
        self.dims = 0

    def check(self, rewards: Sequence[Any]) -> None:
        """ValueError, before anything is recorded, if the told vectors disagree in length
        with each other or with the history."""
        dims = self.dims
        for values in filter(None, (vector(r) for r in rewards if dims or is_vector(r))):
            if dims and len(values) != dims:
                raise ValueError(f"tell: a reward has {len(values)} objectives, earlier ones had {dims}")
            dims = len(values)

    def add(self, key: Pairs, values: tuple[float, ...], constraints: Sequence[float] | None) -> None:
        self.dims = len(values)
        total = self.sums.setdefault(key, [[0.0] * self.dims, 0, 0.0])
        total[0] = [a + b for a, b in zip(total[0], values)]
        total[1] += 1
        total[2] += violation(constraints)

    def means(self) -> tuple[list[Pairs], list[list[float]], list[float]]:
        """Configs in first-told order, their mean points TO MINIMISE and mean violations."""
        keys = list(self.sums)
        points = [[-v / self.sums[k][1] for v in self.sums[k][0]] for k in keys]
        return keys, points, [self.sums[k][2] / self.sums[k][1] for k in keys]

    def scores(self) -> dict[Pairs, float]:
        """Constrained Pareto rank, ties broken by crowding: higher is better."""
        keys, points, viol = self.means()
        ranks = front_ranks(points, viol)
        out: dict[Pairs, float] = {}
        for rank in set(ranks):
            members = [i for i, r in enumerate(ranks) if r == rank]
            spread = crowding(points, members)
            order = sorted(members, key=lambda i: spread[i])      # least crowded last
            for place, i in enumerate(order):
                out[keys[i]] = -rank + 0.5 * place / len(order)
        return {k: out[k] for k in keys}

    def parego(self, rng: torch.Generator) -> tuple[list[Pairs], list[float]]:
        """(configs, rewards) under one random augmented Chebyshev scalarisation; infeasible
        configs rank below every feasible one, by violation."""
        keys, points, viol = self.means()
        p = torch.tensor(points, dtype=torch.float64)
        # each objective as its rank in the history, in [0, 1]: blind to scale and skew (a
        # training time spans decades), as the rest of the controller is
        # (ties share the lower rank, so a dominated config never ranks above its dominator)
        scaled = (p[None, :, :] < p[:, None, :]).sum(1).to(torch.float64) / max(1, len(keys) - 1)
        weights = -torch.log(torch.rand(self.dims, generator=rng, dtype=torch.float64))
        weights = weights / weights.sum()                         # uniform on the simplex
        weighted = scaled * weights
        cheb = weighted.max(1).values + RHO * weighted.sum(1)
        rewards = [-c if v <= 0 else -2.0 - v for c, v in zip(cheb.tolist(), viol)]
        return keys, rewards

    # ---- state ----------------------------------------------------------------------------
    def state(self) -> list[list[Any]]:
        return [[list(map(list, k)), list(s), n, v] for k, (s, n, v) in self.sums.items()]

    def load(self, rows: Sequence[Sequence[Any]]) -> None:
        self.sums = {as_pairs(k): [list(map(float, s)), int(n), float(v)] for k, s, n, v in rows}
        self.dims = len(next(iter(self.sums.values()))[0]) if self.sums else 0


def check_told(rewards: Sequence[Any], constraints: Sequence[Any] | None) -> list[Any]:
    """One constraint entry per reward (None where not given); ValueError on a length mismatch."""
    if constraints is None:
        return [None] * len(rewards)
    if isinstance(constraints, Mapping) or len(constraints) != len(rewards):
        raise ValueError(f"tell: constraints must be a list with one entry per reward ({len(rewards)})")
    return list(constraints)


__all__ = ["Objectives", "check_told", "is_vector", "vector"]
