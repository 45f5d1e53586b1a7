"""The ask/tell protocol every searcher implements (no engine: Ray Tune, a table replay, ...).

Rewards are the service's (`workers.rewards`): higher is better, in [0, 1]; ``None`` means
the trial crashed and says nothing about the configuration. Results may come back in any
order and for configurations the searcher did not propose (a warm start, a resumed job).

A multi-objective job (``--objective`` twice or more) creates its searcher with
``objectives=N`` and tells it a sequence of N floats per config (each higher is better, on
the metric's raw scale; `workers.objectives.rewards`); a constrained one (``--constraint``)
with ``constrained=True``, and tells Optuna-style constraint values (``<= 0`` satisfied) beside
the reward. A single-objective job passes neither and tells a float, as before.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Mapping, Sequence

from search_spaces import SearchSpace


class Searcher(ABC):
    """Proposes configurations of `space` and learns from their rewards."""

    exhausted: bool = False        # set once `ask` had nothing left to propose
    objectives: int = 1            # rewards per told config (a sequence when > 1)
    constrained: bool = False      # whether `tell` gets constraint values

    def __init__(self, space: SearchSpace, seed: int = 0, **options: Any) -> None:
        self.space, self.seed = space, seed

    @abstractmethod
    def ask(self) -> dict[str, Any] | None:
        """The next configuration to try; None when there is nothing left to propose (a
        searcher that never repeats a configuration, over a finite space it has exhausted)."""

    @abstractmethod
    def tell(self, config: Mapping[str, Any], reward: float | Sequence[float] | None,
             constraints: Sequence[float] | None = None) -> None:
        """The reward a configuration reached (None: it crashed); a sequence of `objectives`
        rewards in a multi-objective job; `constraints`: its constraint values, if constrained."""

    def warm_start(self, configs: list[Mapping[str, Any]], rewards: list[float]) -> None:
        """Learn from earlier trials before the first `ask` (default: tell each)."""
        for config, reward in zip(configs, rewards):
            self.tell(config, reward)

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue: tensors and plain data only (loaded with
        ``torch.load(weights_only=True)``, so restoring cannot run code)."""

    @abstractmethod
    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from `state_dict()`."""

    @property
    def controller(self) -> Any:
        """The RNN controller behind this searcher, if any (for its curves and plots)."""
        return None
