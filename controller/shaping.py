"""Reward shaping: rewards -> advantages.

"rank" and "quantile" use only the order of the rewards, so they are invariant to any
increasing transform of the metric and robust to outliers (the fitness shaping of natural
evolution strategies, Wierstra et al. 2014; the quantile rule is the cross-entropy method's,
Rubinstein 1999, and the risk-seeking policy gradient's, Petersen et al. 2021). "ema" is the
classic NAS-RL advantage: reward minus an exponential moving average, over its moving std.
"""
from __future__ import annotations

import math
from statistics import NormalDist
from typing import Sequence


def ranks(rewards: Sequence[float]) -> list[float]:
    """Fractional ranks in [0, 1] (0 = worst, 1 = best); ties share their mean rank."""
    n = len(rewards)
    if n == 1:
        return [0.5]
    order = sorted(range(n), key=lambda i: rewards[i])
    out = [0.0] * n
    i = 0
    while i < n:
        j = i
        while j + 1 < n and rewards[order[j + 1]] == rewards[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 / (n - 1)
        i = j + 1
    return out


def rank_advantages(rewards: Sequence[float]) -> list[float]:
    """Centred ranks scaled to [-1, 1]: the best gets +1, the worst -1, the median 0."""
    return [2.0 * r - 1.0 for r in ranks(rewards)]


def quantile_advantages(rewards: Sequence[float], q: float) -> list[float]:
    """+1 for the top `q` fraction of the rewards (at least one), minus the mean, so the
    advantages sum to zero: push up the best quantile, push everything else down a little."""
    n = len(rewards)
    top = max(1, math.ceil(q * n))
    threshold = sorted(rewards, reverse=True)[top - 1]
    good = [1.0 if r >= threshold else 0.0 for r in rewards]
    mean = sum(good) / n
    return [g - mean for g in good]


def normal_scores(rewards: Sequence[float]) -> list[float]:
    """Ranks mapped through the inverse normal CDF: a scale-free regression target."""
    n = len(rewards)
    dist = NormalDist()
    return [dist.inv_cdf((r * (n - 1) + 0.5) / n) for r in ranks(rewards)]


class EmaBaseline:
    """EMA mean and variance of the rewards, updated reward by reward in arrival order."""

    def __init__(self, decay: float) -> None:
        self.decay = decay
        self.mean: float | None = None
        self.var = 0.0

    def update(self, reward: float) -> float:
        """Fold one reward in; return its advantage against the baseline before the update."""
        if self.mean is None:
            self.mean = reward
        diff = reward - self.mean
        self.var = self.decay * self.var + (1 - self.decay) * diff * diff
        self.mean = self.decay * self.mean + (1 - self.decay) * reward
        return diff

    def advantage(self, diff: float, normalize: bool, clip: float) -> float:
        a = diff / (math.sqrt(self.var) + 1e-8) if normalize else diff
        return max(-clip, min(clip, a))
