"""Several objectives and constraints behind `Controller.tell` (controller/objectives.py)."""
from __future__ import annotations

import itertools
import math
import random

import pytest
import torch

from controller import Controller
from controller.objectives import Objectives
from controller.pareto import hypervolume
from search_spaces import SearchSpace

pytestmark = pytest.mark.usefixtures("one_thread")


def _space(n: int = 2, k: int = 4) -> SearchSpace:
    return SearchSpace.from_dict({"name": "s", "decisions": [
        {"name": f"x{i}", "choices": list(range(k))} for i in range(n)]})


def _key(space, config):
    return tuple(space.encode_slots(config))


def test_scores_put_the_feasible_front_first_and_keep_its_ends():
    space = _space()
    ctrl = Controller(space, seed=0)
    configs = [{"x0": a, "x1": b} for a, b in [(0, 0), (1, 1), (2, 2), (3, 3), (0, 1)]]
    vectors = [(1.0, 5.0), (3.0, 3.0), (5.0, 1.0), (2.0, 2.0), (9.0, 9.0)]   # higher is better
    constraints = [[0.0], [-1.0], [-2.0], [-1.0], [0.5]]                      # the last infeasible
    ctrl.tell(configs, vectors, constraints)
    score = {k: ctrl.memory.reward_of(_key(space, c)) for k, c in zip("abcdi", configs)}
    assert min(score["a"], score["b"], score["c"]) > score["d"] > score["i"]
    assert min(score["a"], score["c"]) > score["b"]       # the front's ends are least crowded
    elites = [k for k, _ in ctrl.memory.elites(3)]
    assert set(elites[:2]) == {_key(space, configs[0]), _key(space, configs[2])}
    assert elites[2] == _key(space, configs[1])
    assert ctrl.stats["told"] == 5 and ctrl.stats["failed"] == 0


def test_parego_never_ranks_a_dominated_config_above_its_dominator():
    space = _space()
    objectives = Objectives()
    vectors = {(0, 0): (1.0, 1.0), (0, 1): (2.0, 1.0), (1, 0): (0.5, 3.0), (1, 1): (9.0, 9.0)}
    for (a, b), v in vectors.items():
        objectives.add(_key(space, {"x0": a, "x1": b}), v, [1.0] if (a, b) == (1, 1) else None)
    rng = torch.Generator().manual_seed(0)
    for _ in range(50):
        keys, rewards = objectives.parego(rng)
        r = dict(zip(keys, rewards))
        k = lambda a, b: _key(space, {"x0": a, "x1": b})            # noqa: E731
        assert r[k(0, 1)] > r[k(0, 0)]                              # (2,1) dominates (1,1)
        assert r[k(1, 1)] < min(r[k(0, 0)], r[k(0, 1)], r[k(1, 0)])  # infeasible below all


def test_failed_vectors_teach_nothing_and_kinds_do_not_mix():
    space = _space()
    ctrl = Controller(space, seed=0)
    ctrl.tell([{"x0": 0, "x1": 0}, {"x0": 1, "x1": 0}], [(1.0, math.nan), None])
    assert ctrl.stats["failed"] == 2 and not ctrl.memory.sums
    ctrl.tell([{"x0": 2, "x1": 0}], [(1.0, 2.0)])
    with pytest.raises(ValueError, match="earlier ones had 2"):
        ctrl.tell([{"x0": 3, "x1": 0}, {"x0": 3, "x1": 1}], [(1.0, 2.0), (1.0, 2.0, 3.0)])
    assert ctrl.stats["told"] == 3                        # nothing of the bad batch recorded
    with pytest.raises(ValueError, match="a reward has 1 objectives, earlier ones had 2"):
        ctrl.tell([{"x0": 3, "x1": 2}], [0.5])            # a scalar after vectors
    single = Controller(space, seed=0)
    single.tell([{"x0": 0, "x1": 0}], [0.5])
    with pytest.raises(ValueError, match="single-objective"):
        single.tell([{"x0": 1, "x1": 0}], [(1.0, 2.0)])
    with pytest.raises(ValueError, match="one entry per reward"):
        single.tell([{"x0": 1, "x1": 0}], [0.5], constraints=[[0.0], [1.0]])


def test_state_round_trip_continues_identically():
    space = _space(3)
    rng = random.Random(0)
    a = Controller(space, seed=3)
    for _ in range(12):
        config = a.ask(1)[0]
        a.tell([config], [(rng.random(), rng.random())], [[rng.random() - 0.7]])
    b = Controller(space, seed=99)
    b.load_state_dict(a.state_dict())
    assert b.memory.sums == a.memory.sums and b.objectives.sums == a.objectives.sums
    assert a.ask(3) == b.ask(3)


def _tradeoff(config):
    """Two objectives to maximise over x0..x5 in 0..5: the first four decisions trade one
    against the other; x4 and x5 must hit one value each or both objectives lose."""
    xs = [config[f"x{i}"] for i in range(6)]
    miss = 3 * abs(xs[4] - 2) + 3 * abs(xs[5] - 3)
    return sum(xs[:4]) - miss, -sum(x * x for x in xs[:4]) / 5 - miss


def _hv(points):
    """Hypervolume of points to maximise, against a reference below anything reachable."""
    return hypervolume([(-a, -b) for a, b in points], (31.0, 51.0))


def test_the_controller_finds_a_better_front_than_random_sampling():
    space = _space(6, 6)
    grid = [dict(zip([f"x{i}" for i in range(6)], xs)) for xs in itertools.product(range(6), repeat=6)]
    best = _hv([_tradeoff(c) for c in grid if c["x4"] == 2 and c["x5"] == 3])    # where the front lies
    rnn, rand = [], []
    for seed in range(3):
        ctrl = Controller(space, seed=seed)
        seen = []
        for _ in range(60):
            config = ctrl.ask(1)[0]
            seen.append(_tradeoff(config))
            ctrl.tell([config], [seen[-1]])
        rnn.append(_hv(seen) / best)
        draws = random.Random(seed).sample(grid, 60)
        rand.append(_hv([_tradeoff(c) for c in draws]) / best)
    assert sum(rnn) / 3 > sum(rand) / 3 + 0.08, (rnn, rand)


def test_a_controller_that_has_screened_pickles_and_continues_alike():
    """Ray Tune pickles its searcher (tuner.pkl): every part the controller grows while asking
    and telling, single- or multi-objective, must pickle."""
    import pickle
    space = _space(3)
    for rewards in ([0.1, 0.5, 0.9, 0.3, 0.7, 0.2, 0.8, 0.4], [(r, 1 - r) for r in (0.1, 0.5, 0.9, 0.3, 0.7, 0.2, 0.8, 0.4)]):
        ctrl = Controller(space, seed=1)
        for r in rewards:
            ctrl.tell(ctrl.ask(1), [r])
        copy = pickle.loads(pickle.dumps(ctrl))
        assert copy.ask(2) == ctrl.ask(2)
