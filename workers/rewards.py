"""Task metric -> reward ("higher is better"): the one place the transform is defined.

Every searcher and scheduler sees the same `reward` in [0, 1], so these rules decide what
"better" means for the whole service (README, "What the searchers see", gives the table and
the reasons): ``inv_perplexity`` = exp(-loss) for min metrics named ``*loss``/``nll``;
``identity`` for max metrics; ``inverse`` = 1/(1+metric) for other min metrics (bounded, so a
diverged child's floor is finite). The best epoch counts, not the last; a diverged child gets
the floor; a crashed one gives None.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

RULES = ("inv_perplexity", "identity", "inverse")


@dataclass(frozen=True)
class RewardRule:
    """How one task metric becomes a reward in [0, 1]."""

    metric: str                 # task metric name, e.g. "val_loss"
    mode: str                   # "min" or "max" (the metric's own direction)
    kind: str                   # one of RULES
    floor: float = 0.0          # reward of a diverged child

    def __call__(self, value: float) -> float:
        """Reward of a metric value; non-finite or missing values give the floor."""
        if value is None or not math.isfinite(value):
            return self.floor
        if self.kind == "inv_perplexity":
            return math.exp(-max(value, 0.0))
        if self.kind == "identity":
            return float(value)
        return 1.0 / (1.0 + max(value, 0.0))

    def metric_of(self, reward: float | None) -> float | None:
        """The metric value a reward came from (the rule inverted), for reading results in the
        metric; None for a missing reward or one no value gives (a min rule's floor)."""
        if reward is None or not math.isfinite(reward):
            return None
        if self.kind == "identity":
            return float(reward)
        if reward <= 0:
            return None
        return -math.log(reward) if self.kind == "inv_perplexity" else 1.0 / reward - 1.0

    def better(self, a: float, b: float) -> bool:
        """Whether metric value `a` beats `b` in the metric's own direction."""
        return a < b if self.mode == "min" else a > b

    def describe(self) -> str:
        return {"inv_perplexity": f"exp(-{self.metric}) (1/perplexity)",
                "identity": self.metric,
                "inverse": f"1/(1+{self.metric})"}[self.kind] + f", diverged -> {self.floor}"


def reward_rule(metric: str, mode: str) -> RewardRule:
    """The rule for a task metric (see the module docstring)."""
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
    if mode == "max":
        return RewardRule(metric, mode, "identity")
    if metric.endswith("loss") or metric == "nll":
        return RewardRule(metric, mode, "inv_perplexity")
    return RewardRule(metric, mode, "inverse")


@dataclass
class BestEpoch:
    """Follows a child's epochs; keeps the best epoch's metrics and the current reward."""

    rule: RewardRule
    epochs: int = 0                          # epochs seen
    diverged: bool = False
    best: dict[str, Any] | None = field(default=None)   # metrics dict of the best epoch

    def update(self, metrics: Mapping[str, Any]) -> None:
        self.epochs += 1
        if metrics.get("diverged"):
            self.diverged = True
            return
        value = metrics.get(self.rule.metric)
        if value is None:
            raise KeyError(f"child reported no {self.rule.metric!r} (got {sorted(metrics)})")
        if value is not None and math.isfinite(value) and (
                self.best is None or self.rule.better(value, self.best[self.rule.metric])):
            self.best = dict(metrics)

    @property
    def reward(self) -> float | None:
        """Floor if diverged, else the best epoch's reward (None before a finite epoch)."""
        if self.diverged:
            return self.rule.floor
        return None if self.best is None else self.rule(self.best[self.rule.metric])

    @property
    def best_value(self) -> float | None:
        return None if self.best is None else float(self.best[self.rule.metric])
