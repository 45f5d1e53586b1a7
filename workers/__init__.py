"""The glue a Ray worker runs: trainable, device placement, rewards, MLflow tracking.

Submodules: `trainable` (the Ray Tune function trainable; imports no MLflow), `rewards`
(metric -> reward rules), `device` (GPU placement), `noop` (built-in no-op child and
`resolve_task`), `tracking` (all MLflow access), `recorder` (Tune callback in the driver that
writes each trial's child run) and `writer` (the helper process that performs MLflow writes).
Import them directly; this package imports nothing heavy.
"""
from __future__ import annotations

from .noop import NoopTask, resolve_task
from .rewards import BestEpoch, RewardRule, reward_rule

__all__ = ["BestEpoch", "NoopTask", "RewardRule", "resolve_task", "reward_rule"]
