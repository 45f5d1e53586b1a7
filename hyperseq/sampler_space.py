"""Optuna distributions <-> controller token slots, for `ControllerSampler`.

Each parameter of the relative search space becomes one slot of a `SearchSpace`, named
`p0`, `p1`, ... in the (sorted) order of the space, whose choices are bin indices:

- categorical: one bin per choice (the choice is the token);
- int, or float with `step`: the grid values, one bin each when there are at most `n_bins`,
  else `n_bins` runs of consecutive grid values (log-spaced runs for `log=True` ints);
- float without `step`: `n_bins` equal-width intervals (in log space for `log=True`).

A token becomes a value by a uniform draw inside its bin (log-uniform for log floats), and a
value maps back to the bin it lies in, so the controller can be rebuilt from any study's
trials. Conversions to another library's space belong to that library's adapter
(ARCHITECTURE.md), which is why this lives beside the sampler and not in `search_spaces/`.
"""
from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass
from typing import Any, Mapping

from optuna.distributions import (BaseDistribution, CategoricalDistribution, FloatDistribution,
                                  IntDistribution)

from search_spaces import SearchSpace
from search_spaces.spec import monotonic_numbers as _monotonic_numbers


@dataclass(frozen=True)
class Bins:
    """One parameter's slot: `count` ordered bins over `dist`.

    Discrete distributions (categorical, int, stepped float) are grids of `size` values
    `low + k * step`, and `bounds` are the first grid index of each bin plus `size` at the
    end. Continuous floats have `bounds` = the bin edges in the (log) transformed space.
    """

    dist: BaseDistribution
    bounds: tuple[float, ...]
    discrete: bool

    @property
    def count(self) -> int:
        return len(self.bounds) - 1

    @property
    def ordered(self) -> bool:
        """Bins on a scale: numeric distributions, and categoricals of monotonic numbers."""
        if isinstance(self.dist, CategoricalDistribution):
            return _monotonic_numbers(self.dist.choices)
        return True

    # ---- value <-> bin ------------------------------------------------------------------------
    def bin_of(self, value: Any) -> int:
        """The bin a value of `dist` falls in (values outside the range are clamped)."""
        t = self._grid_index(value) if self.discrete else self._transform(float(value))
        return min(self.count - 1, max(0, bisect.bisect_right(self.bounds, t) - 1))

    def draw(self, token: int, rng: random.Random) -> Any:
        """A value drawn uniformly inside bin `token`."""
        lo, hi = self.bounds[token], self.bounds[token + 1]
        if self.discrete:
            return self._grid_value(rng.randrange(int(lo), int(hi)))
        return self._untransform(rng.uniform(lo, hi))

    def uniform(self, rng: random.Random) -> Any:
        """A value drawn uniformly over the whole distribution (log-uniform for log floats)."""
        if self.discrete:
            return self._grid_value(rng.randrange(int(self.bounds[-1])))
        return self._untransform(rng.uniform(self.bounds[0], self.bounds[-1]))

    # ---- grids and transforms ------------------------------------------------------------------
    def _grid_index(self, value: Any) -> float:
        d = self.dist
        if isinstance(d, CategoricalDistribution):
            return d.to_internal_repr(value)
        return round((float(value) - d.low) / d.step)

    def _grid_value(self, k: int) -> Any:
        d = self.dist
        if isinstance(d, CategoricalDistribution):
            return d.choices[k]
        if isinstance(d, IntDistribution):
            return int(d.low + k * d.step)
        return float(min(d.high, d.low + k * d.step))      # float error must not pass `high`

    def _transform(self, value: float) -> float:
        return math.log(value) if self.dist.log else value

    def _untransform(self, t: float) -> float:
        d = self.dist
        return float(min(d.high, max(d.low, math.exp(t) if d.log else t)))


def bins_for(dist: BaseDistribution, n_bins: int) -> Bins:
    """The slot of one distribution (see the module docstring for the rules)."""
    if isinstance(dist, CategoricalDistribution):
        return Bins(dist, tuple(range(len(dist.choices) + 1)), True)
    if isinstance(dist, IntDistribution) or (isinstance(dist, FloatDistribution) and dist.step):
        size = int(round((dist.high - dist.low) / dist.step)) + 1
        if size <= n_bins:
            return Bins(dist, tuple(range(size + 1)), True)
        if dist.log:        # ints only (a stepped float cannot be log): runs equal in log space
            ratio = (dist.high + 1) / dist.low
            inner = {math.ceil(dist.low * ratio ** (j / n_bins)) - dist.low for j in range(1, n_bins)}
            return Bins(dist, tuple(sorted({0, size} | {k for k in inner if 0 < k < size})), True)
        return Bins(dist, tuple(j * size // n_bins for j in range(n_bins + 1)), True)
    if isinstance(dist, FloatDistribution):
        lo, hi = (math.log(dist.low), math.log(dist.high)) if dist.log else (dist.low, dist.high)
        count = 1 if hi == lo else n_bins
        return Bins(dist, tuple(lo + (hi - lo) * j / count for j in range(count)) + (hi,), False)
    raise ValueError(f"ControllerSampler cannot sample {type(dist).__name__} {dist!r}")


@dataclass(frozen=True)
class SlotMap:
    """A relative search space as controller slots: `names[i]` is slot `p{i}`."""

    names: tuple[str, ...]
    bins: tuple[Bins, ...]
    space: SearchSpace

    @classmethod
    def create(cls, search_space: Mapping[str, BaseDistribution], n_bins: int) -> "SlotMap":
        names = tuple(sorted(search_space))                 # fixed order: deterministic slots
        bins = tuple(bins_for(search_space[n], n_bins) for n in names)
        decisions = [{"name": f"p{i}", "choices": list(range(b.count)), "ordered": b.ordered}
                     for i, b in enumerate(bins)]
        return cls(names, bins, SearchSpace.from_dict({"name": "optuna", "decisions": decisions}))

    def config_of(self, params: Mapping[str, Any]) -> dict[str, int]:
        """The controller config (slot -> bin) of a trial's params."""
        return {f"p{i}": b.bin_of(params[n]) for i, (n, b) in enumerate(zip(self.names, self.bins))}

    def params_of(self, config: Mapping[str, int], rng: random.Random) -> dict[str, Any]:
        """Parameter values for a controller config, drawn inside each chosen bin."""
        return {n: b.draw(config[f"p{i}"], rng) for i, (n, b) in enumerate(zip(self.names, self.bins))}
