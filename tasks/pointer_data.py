"""Data for pointer_net, generated with ``random.Random`` and exact pure-Python geometry.

Pointer ids: 0 is the END slot, k >= 1 points at input k - 1. A target is the pointer
sequence followed by END, right-padded with IGNORE when lengths differ within a batch.
- sort: n numbers uniform in [0, 1); target = the indices that sort them ascending.
- convex_hull: n points uniform in [0, 1]^2; target = the hull's vertices counter-clockwise,
  starting at the lowest-index hull vertex (collinear boundary points are not vertices).
"""

from __future__ import annotations

import functools
import random

import torch

PROBLEMS = ("sort", "convex_hull")
END = 0  # pointer to the END slot
IGNORE = -1  # target padding, ignored by the loss and the metrics
DATA_SEED = 4321  # fixes the validation set
VAL_PER_N = 200  # validation examples per input length

Point = tuple[float, float]


def _cross(o: Point, a: Point, b: Point) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def convex_hull(points: list[Point]) -> list[int]:
    """Indices of the hull vertices (Andrew's monotone chain), counter-clockwise, starting at
    the lowest index among them."""
    order = sorted(range(len(points)), key=lambda i: points[i])
    if len(order) < 3:
        return order

    def chain(indices: list[int]) -> list[int]:
        out: list[int] = []
        for i in indices:
            while len(out) >= 2 and _cross(points[out[-2]], points[out[-1]], points[i]) <= 0:
                out.pop()
            out.append(i)
        return out[:-1]

    hull = chain(order) + chain(order[::-1])  # lower then upper chain: counter-clockwise
    first = hull.index(min(hull))
    return hull[first:] + hull[:first]


def polygon_area(points: list[Point], indices: list[int]) -> float:
    """Signed area of the polygon through points[indices] (shoelace; CCW > 0)."""
    total = 0.0
    for k, i in enumerate(indices):
        j = indices[(k + 1) % len(indices)]
        total += points[i][0] * points[j][1] - points[j][0] * points[i][1]
    return total / 2.0


def make_batch(problem: str, n: int, batch: int,
               rng: random.Random) -> tuple[torch.Tensor, torch.Tensor, list[list[Point]]]:
    """inputs (B, n, d) float, targets (B, L) pointer ids (END then IGNORE padding), and the
    raw inputs as Python tuples (points for the hull metrics)."""
    if problem == "sort":
        raw = [[(rng.random(),) for _ in range(n)] for _ in range(batch)]
        seqs = [sorted(range(n), key=lambda i, xs=xs: xs[i]) for xs in raw]
    else:
        raw = [[(rng.random(), rng.random()) for _ in range(n)] for _ in range(batch)]
        seqs = [convex_hull(pts) for pts in raw]
    length = max(len(s) for s in seqs) + 1
    targets = torch.full((batch, length), IGNORE, dtype=torch.long)
    for b, s in enumerate(seqs):
        targets[b, : len(s) + 1] = torch.tensor([i + 1 for i in s] + [END])
    return torch.tensor(raw, dtype=torch.float32), targets, raw


@functools.lru_cache(maxsize=8)
def val_set(problem: str, n_min: int, n_max: int) -> tuple:
    """Fixed validation batches, one per n in [n_min, n_max], VAL_PER_N examples each."""
    rng = random.Random(f"{DATA_SEED}-{problem}")
    return tuple(make_batch(problem, n, VAL_PER_N, rng) for n in range(n_min, n_max + 1))
