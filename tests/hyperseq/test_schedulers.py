"""The schedulers registry, `auto`, and the rank-within-rung rewards searchers are told."""
from __future__ import annotations

import random

import pytest

from hyperseq import schedulers
from hyperseq.schedulers.hyperband import brackets
from hyperseq.schedulers.rungs import RungRanks, milestones


def test_registry_and_auto() -> None:
    assert schedulers.names() == ("none", "asha", "hyperband")
    assert schedulers.resolve("auto", "rnn", 3) == "none"                 # too short for rungs
    assert schedulers.resolve("auto", "rnn", 9) == "hyperband"
    assert schedulers.resolve("auto", "tpe", 9) == "none"                 # only rnn's default
    assert schedulers.resolve("asha", "rnn", 9) == "asha"
    assert schedulers.create("none", 9) is None
    hb = schedulers.create("hyperband", 9)
    assert type(hb).__name__ == "AsyncHyperBandScheduler" and len(hb._brackets) == 3
    with pytest.raises(ValueError, match="unknown scheduler 'pbt'"):
        schedulers.create("pbt", 9)


def test_brackets_fit_the_budget() -> None:
    assert [brackets(e) for e in (1, 2, 3, 8, 9, 27, 100)] == [1, 1, 2, 2, 3, 3, 3]
    assert milestones(9) == [1, 3, 9] and milestones(10) == [1, 3, 9, 10] and milestones(1) == [1]


def test_promoted_trials_outrank_stopped_ones_whatever_their_raw_reward() -> None:
    """A trial stopped at rung 1 with a high 1-epoch reward still ranks below every trial that
    went on to 3 epochs; within a rung, order follows the reward."""
    ranks = RungRanks(9)
    rng = random.Random(0)
    for i in range(12):                                     # everyone reports epoch 1
        ranks.observe(f"t{i}", 1, rng.random())
    for i in range(4):                                      # a third go on to epoch 3
        ranks.observe(f"t{i}", 3, 0.1 + 0.01 * i)
    stopped_best = ranks.reward(1, 0.99)
    promoted_worst = ranks.reward(3, 0.1)
    assert stopped_best < promoted_worst
    assert ranks.reward(3, 0.1) < ranks.reward(3, 0.13)
    assert 0.0 <= ranks.reward(1, 0.0) and ranks.reward(9, 1.0) <= 1.0


def test_rank_rewards_ignore_the_metric_scale_and_survive_a_round_trip() -> None:
    a, b = RungRanks(3), RungRanks(3)
    for i, value in enumerate([0.2, 0.5, 0.9]):
        a.observe(f"t{i}", 3, value)
        b.observe(f"t{i}", 3, value ** 8)                   # same order, another scale
    assert [a.reward(3, v) for v in (0.2, 0.5, 0.9)] == [b.reward(3, v ** 8) for v in (0.2, 0.5, 0.9)]
    a.observe("t0", 3, 0.2)                                 # a repeated report counts once
    c = RungRanks(3)
    c.load_state_dict(a.state_dict())
    assert c.values == a.values and c.reward(3, 0.5) == a.reward(3, 0.5)
