"""Uniform random search: every active decision drawn uniformly (the untrained policy's law)."""
from __future__ import annotations

import random
from typing import Any, Mapping, Sequence

from search_spaces import SearchSpace

from .base import Searcher


class RandomSearcher(Searcher):
    """Independent uniform draws; learns nothing."""

    def __init__(self, space: SearchSpace, seed: int = 0, objectives: int = 1, constrained: bool = False,
                 **options: Any) -> None:
        super().__init__(space, seed)
        self.objectives, self.constrained = objectives, constrained
        self.rng = random.Random(seed)

    def ask(self) -> dict[str, Any]:
        return self.space.sample(self.rng)

    def tell(self, config: Mapping[str, Any], reward: Any, constraints: Sequence[float] | None = None) -> None:
        pass

    def warm_start(self, configs: list[Mapping[str, Any]], rewards: list[float]) -> None:
        """Random search ignores history."""

    def state_dict(self) -> dict[str, Any]:
        version, internal, gauss = self.rng.getstate()
        return {"rng": [version, list(internal), gauss]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        version, internal, gauss = state["rng"]
        self.rng.setstate((version, tuple(internal), gauss))
