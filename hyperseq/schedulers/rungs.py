"""What a searcher is told when a scheduler stops trials at rungs: ranks, not raw rewards.

A trial stopped after 1 epoch and one trained for 9 are not comparable by their rewards (fewer
epochs almost always mean a worse metric). Successive halving's own ordering is: a trial
promoted past a rung beats every trial stopped there, and within a rung trials compare by
their reward at that rung. `RungRanks` turns that ordering into a reward in [0, 1]:

    reward = (level + q) / levels

where the rungs are `grace * rf**i` epochs below the budget plus the budget itself, `level`
(0-based) is the highest rung the trial reached, and `q` is the mid-rank of its reward among
every result reported at that same number of epochs (any trial, stopped or promoted).
"""
from __future__ import annotations

import bisect
from typing import Any, Mapping


def milestones(epochs: int, grace: int = 1, factor: int = 3) -> list[int]:
    """The rung epochs of a successive-halving schedule up to (and including) `epochs`."""
    out, step = [], grace
    while step < epochs:
        out.append(step)
        step *= factor
    return out + [epochs]


class RungRanks:
    """Results by epoch, and the rank-based reward of a trial ending at some epoch."""

    def __init__(self, epochs: int, grace: int = 1, factor: int = 3) -> None:
        self.rungs = milestones(epochs, grace, factor)
        self.values: dict[int, list[float]] = {}          # epoch -> sorted rewards at that epoch
        self._seen: set[tuple[str, int]] = set()

    def observe(self, trial_id: str, epoch: int, reward: float) -> None:
        """One report: a trial's (best-so-far) reward after `epoch` epochs (counted once)."""
        if (trial_id, epoch) not in self._seen:
            self._seen.add((trial_id, epoch))
            bisect.insort(self.values.setdefault(epoch, []), reward)

    def reward(self, epoch: int, reward: float) -> float:
        """The rank-based reward of a trial whose last result was `reward` after `epoch` epochs."""
        level = max(0, bisect.bisect_right(self.rungs, epoch) - 1)
        peers = self.values.get(epoch) or [reward]
        below = bisect.bisect_left(peers, reward)
        equal = bisect.bisect_right(peers, reward) - below
        q = (below + 0.5 * equal) / len(peers)
        return (level + q) / len(self.rungs)

    def state_dict(self) -> dict[str, Any]:
        return {"values": {str(e): list(v) for e, v in self.values.items()},
                "seen": [[t, e] for t, e in sorted(self._seen)]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.values = {int(e): list(v) for e, v in state["values"].items()}
        self._seen = {(t, int(e)) for t, e in state["seen"]}
