"""The glue a Ray worker runs: trainable, device placement, rewards, MLflow tracking.

Submodules: `trainable` (Ray Tune function trainable), `rewards` (metric -> reward rules),
`tracking` (all MLflow access), `device` (GPU placement), `noop` (built-in no-op child and
`resolve_task`). Import them directly; this package imports nothing heavy.
"""
from __future__ import annotations

from .noop import NoopTask, resolve_task
from .rewards import BestEpoch, RewardRule, reward_rule

__all__ = ["BestEpoch", "NoopTask", "RewardRule", "resolve_task", "reward_rule"]
