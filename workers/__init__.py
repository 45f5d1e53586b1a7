"""What runs inside a Ray worker: the trainable, device placement and rewards.

Submodules: `trainable` (the Ray Tune function trainable; imports no MLflow), `rewards`
(metric -> reward rules), `device` (GPU placement), `gather` (a job's trial actors start
together). Import them directly; this package imports nothing heavy. Driver-side code (recording, jobs) is the service's: `hyperseq`.
"""
from __future__ import annotations

from .rewards import BestEpoch, RewardRule, reward_rule

__all__ = ["BestEpoch", "RewardRule", "reward_rule"]
