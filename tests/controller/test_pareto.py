"""Pareto ranking, crowding and hypervolume on hand-made fronts with known answers."""
from __future__ import annotations

import math
import random

import pytest

from controller.pareto import crowding, dominates, front_ranks, hypervolume, pareto_front, violation


def test_dominates_is_strict_and_needs_one_better():
    assert dominates([1, 2], [2, 2]) and not dominates([2, 2], [1, 2])
    assert not dominates([1, 2], [1, 2])                 # equal: neither dominates
    assert not dominates([1, 3], [2, 2]) and not dominates([2, 2], [1, 3])


def test_front_ranks_on_three_fronts_and_infeasible_last():
    points = [[1, 4], [2, 2], [4, 1], [2, 4], [3, 3], [5, 5], [0, 0], [0, 0]]
    viol = [0, 0, 0, 0, 0, 0, 2.0, 0.5]
    assert front_ranks(points, viol) == [0, 0, 0, 1, 1, 2, 4, 3]
    assert pareto_front(points, viol) == [0, 1, 2]
    assert pareto_front([[1, 1]], [1.0]) == []           # nothing feasible: no front


def test_violation_sums_positive_parts():
    assert violation([-1.0, 0.0, 0.5, 2.0]) == 2.5 and violation(None) == 0.0


def test_crowding_keeps_extremes_and_scales_by_range():
    points = [[0, 4], [1, 2], [3, 1], [4, 0]]
    dist = crowding(points, [0, 1, 2, 3])
    assert math.isinf(dist[0]) and math.isinf(dist[3])
    assert dist[1] == pytest.approx(3 / 4 + 3 / 4)       # neighbours (0,4) and (3,1)
    assert dist[2] == pytest.approx(3 / 4 + 2 / 4)       # neighbours (1,2) and (4,0)


def test_hypervolume_known_answers():
    assert hypervolume([[1, 1]], [2, 2]) == 1.0
    assert hypervolume([[0, 2], [1, 1], [2, 0]], [3, 3]) == 6.0
    assert hypervolume([[0, 2], [1, 1], [2, 0], [2, 2]], [3, 3]) == 6.0   # dominated adds nothing
    assert hypervolume([[3, 0]], [3, 3]) == 0.0                           # not inside the box
    assert hypervolume([[0, 0, 0]], [1, 2, 3]) == 6.0
    assert hypervolume([[0, 1, 1], [1, 0, 1], [1, 1, 0]], [2, 2, 2]) == 4.0  # 6 - 3 + 1 by inclusion-exclusion


def test_hypervolume_matches_a_monte_carlo_estimate():
    rng = random.Random(0)
    points = [[rng.random() for _ in range(3)] for _ in range(15)]
    samples = [[rng.random() for _ in range(3)] for _ in range(40_000)]
    hit = sum(any(all(p[m] <= s[m] for m in range(3)) for p in points) for s in samples)
    assert hypervolume(points, [1, 1, 1]) == pytest.approx(hit / len(samples), abs=0.01)
