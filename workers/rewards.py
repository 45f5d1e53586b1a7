"""Task metric -> reward ("higher is better"): the one place the transform is defined.

Every searcher (rnn, random, tpe) and every scheduler (ASHA) sees the same `reward`, so the
rules below decide what "better" means for the whole service. All rewards lie in [0, 1]:

=================  ===============================  ==========================================
rule               when                             reward
=================  ===============================  ==========================================
``inv_perplexity`` mode min, metric named ``*loss``  ``exp(-loss)`` = 1 / perplexity (loss in
                   or ``nll`` (nats)                nats). NAS-RL used c / perplexity.
``identity``       mode max                         the metric itself (accuracy, F1: in [0, 1])
``inverse``        any other min metric             ``1 / (1 + max(metric, 0))``: order-
                                                    preserving for non-negative metrics (error
                                                    rate, tour length) and bounded, unlike
                                                    ``-metric``, so a floor can be finite.
=================  ===============================  ==========================================

Which epoch counts: the **best** epoch's metric, not the last one (char_lm overfits, so the
best val_loss may come early). The reward reported after each epoch is therefore the
best-so-far reward, a non-decreasing curve.

Trials stopped early by a scheduler (ASHA) keep the transform of the best metric they reached
*at the fidelity they reached* — no extrapolation. This is the adjustment for how far they got:
a model trained for fewer epochs almost always has a worse metric, so its reward is a
pessimistic estimate of what full training would give. Because the best-so-far reward only
grows with epochs, a trial ASHA stopped at rung r scored below the rung's cut-off, hence below
(approximately; cut-offs move as trials arrive) every trial promoted past r, whose final
rewards are at least their rung-r rewards. The controller thus learns the same ordering ASHA
used, without a tuning knob. The fraction of the epoch budget reached is logged as `fidelity`.

Failures:
- a **diverged** child (non-finite loss; the task ends it with ``diverged=True``) gets the rule's
  finite ``floor`` (0.0 for all three rules), whatever earlier epochs reached: the config is
  unstable, and a finite low reward teaches the controller to avoid it;
- a child that **crashes** (an exception in the trainable, e.g. out of memory or a bad config)
  gives ``None``: the controller ignores it (no update, no baseline move), since a crash says
  more about the infrastructure than about the configuration.
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
