"""Reward rules and best-epoch tracking (`workers.rewards`): pure functions, no Ray."""
from __future__ import annotations

import math

import pytest

from workers.rewards import BestEpoch, reward_rule


def test_loss_rule_is_inverse_perplexity() -> None:
    rule = reward_rule("val_loss", "min")
    assert rule.kind == "inv_perplexity"
    assert rule(0.0) == 1.0
    assert rule(math.log(4.0)) == pytest.approx(0.25)       # perplexity 4 -> 1/4
    assert rule(math.inf) == rule.floor == 0.0


def test_max_metric_is_identity_and_other_min_metric_is_bounded() -> None:
    acc = reward_rule("val_exact_match", "max")
    assert acc.kind == "identity" and acc(0.7) == 0.7 and acc(math.nan) == 0.0
    tour = reward_rule("tour_length", "min")
    assert tour.kind == "inverse"
    assert tour(1.0) == 0.5 and tour(3.0) < tour(2.0) and 0.0 <= tour(1e9) <= 1.0
    with pytest.raises(ValueError, match="mode"):
        reward_rule("x", "up")


def test_best_epoch_keeps_best_not_last() -> None:
    best = BestEpoch(reward_rule("val_loss", "min"))
    for epoch, loss in enumerate([2.0, 1.5, 1.8], start=1):      # overfits after epoch 2
        best.update({"epoch": epoch, "val_loss": loss, "diverged": False})
    assert best.best["epoch"] == 2 and best.best_value == 1.5
    assert best.reward == pytest.approx(math.exp(-1.5))


def test_diverged_child_gets_the_floor_whatever_came_before() -> None:
    best = BestEpoch(reward_rule("val_loss", "min"))
    best.update({"epoch": 1, "val_loss": 1.0, "diverged": False})
    best.update({"epoch": 2, "val_loss": math.inf, "diverged": True})
    assert best.diverged and best.reward == 0.0


def test_missing_metric_is_an_error_naming_it() -> None:
    best = BestEpoch(reward_rule("val_loss", "min"))
    with pytest.raises(KeyError, match="val_loss"):
        best.update({"epoch": 1, "loss": 1.0})
    assert BestEpoch(reward_rule("val_loss", "min")).reward is None
