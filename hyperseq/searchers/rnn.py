"""The RNN controller (`controller.Controller`) as a searcher."""
from __future__ import annotations

from typing import Any, Mapping

from controller import Controller, SpaceExhausted
from search_spaces import SearchSpace

from .base import Searcher


class RNNSearcher(Searcher):
    """`Controller.ask(1)` / `Controller.tell`; options are `ControllerOptions` fields."""

    def __init__(self, space: SearchSpace, seed: int = 0, controller: Controller | None = None,
                 **options: Any) -> None:
        super().__init__(space, seed)
        self._controller = controller or Controller(space, **{"seed": seed, **options})

    @property
    def controller(self) -> Controller:
        return self._controller

    def ask(self) -> dict[str, Any] | None:
        try:
            return self._controller.ask(1)[0]
        except SpaceExhausted:                   # every config was tried: nothing left to propose
            self.exhausted = True
            return None

    def tell(self, config: Mapping[str, Any], reward: float | None) -> None:
        self._controller.tell([config], [reward])

    def warm_start(self, configs: list[Mapping[str, Any]], rewards: list[float]) -> None:
        """Pre-train the policy off-policy on earlier trials (`Controller.warm_start`)."""
        if hasattr(self._controller, "warm_start"):
            self._controller.warm_start(list(configs), list(rewards))
        else:
            self._controller.tell(list(configs), list(rewards))

    def state_dict(self) -> dict[str, Any]:
        return self._controller.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._controller.load_state_dict(state)
