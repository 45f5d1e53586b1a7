"""Hyperband (Li et al. 2018, "Hyperband: A Novel Bandit-Based Approach to Hyperparameter
Optimization"), run asynchronously: successive halving within several brackets, as ASHA and
BOHB do. Each bracket starts its trials at a different minimum budget, so a configuration
that learns slowly is not always judged after one epoch."""
from __future__ import annotations

import math
from typing import Any

GRACE_PERIOD = 1          # the smallest bracket's first rung, in epochs
REDUCTION_FACTOR = 3      # keep the top 1/3 at each rung
MAX_BRACKETS = 3


def brackets(epochs: int) -> int:
    """As many brackets as rungs fit below the budget (at most MAX_BRACKETS)."""
    rungs = int(math.log(max(epochs, 1) / GRACE_PERIOD, REDUCTION_FACTOR) + 1e-9) + 1
    return max(1, min(MAX_BRACKETS, rungs))


def make(epochs: int) -> Any:
    """Asynchronous Hyperband on the reward, rungs at 1, 3, 9, ... epochs up to the budget."""
    from ray.tune.schedulers import AsyncHyperBandScheduler
    return AsyncHyperBandScheduler(time_attr="training_iteration", metric="reward", mode="max",
                                   max_t=epochs, grace_period=GRACE_PERIOD,
                                   reduction_factor=REDUCTION_FACTOR, brackets=brackets(epochs))
