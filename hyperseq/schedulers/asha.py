"""ASHA (Li et al. 2020, "A System for Massively Parallel Hyperparameter Tuning")."""
from __future__ import annotations

from typing import Any

GRACE_PERIOD = 1          # epochs before a trial can be stopped
REDUCTION_FACTOR = 3      # keep the top 1/3 at each rung


def make(epochs: int) -> Any:
    """ASHA on the reward, rungs at 1, 3, 9, ... epochs up to the budget."""
    from ray.tune.schedulers import ASHAScheduler
    return ASHAScheduler(time_attr="training_iteration", metric="reward", mode="max",
                         max_t=epochs, grace_period=GRACE_PERIOD, reduction_factor=REDUCTION_FACTOR)
