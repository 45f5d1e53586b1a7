"""The RNN controller (`controller.Controller`) as a searcher."""
from __future__ import annotations

import time
from typing import Any, Mapping, Sequence

from controller import Controller, SpaceExhausted
from search_spaces import SearchSpace

from .base import Searcher


class RNNSearcher(Searcher):
    """`Controller.ask(1)` / `Controller.tell`; options are `ControllerOptions` fields.

    `max_overhead` (0 = off) bounds the controller's share of wall time since the first ask,
    as SMAC bounds its own optimisation time: while the controller has spent more than that
    share, an ask takes `Controller.ask_quick` (a pooled policy sample, no screening) and a
    tell is held back, then told with the others in one batch once the controller is under
    its share again (or before `state_dict`/`warm_start`). With trials of seconds the bound is
    never reached and nothing changes; with trials faster than the controller learns (a
    no-op child) it learns from more results per update instead of slowing the job down.
    Proposals then depend on timing, so a job is not bit-reproducible from its seed."""

    def __init__(self, space: SearchSpace, seed: int = 0, controller: Controller | None = None,
                 max_overhead: float = 0.0, objectives: int = 1, constrained: bool = False,
                 **options: Any) -> None:
        super().__init__(space, seed)
        self.objectives, self.constrained = objectives, constrained
        if isinstance(max_overhead, bool) or not isinstance(max_overhead, (int, float)) \
                or not 0 <= max_overhead < 1:
            raise ValueError(f"max_overhead={max_overhead!r} must be a fraction in [0, 1)")
        self._controller = controller or Controller(space, **{"seed": seed, **options})
        self.max_overhead = float(max_overhead)
        self._start: float | None = None        # first ask
        self._spent = 0.0                       # seconds inside the controller since then
        self._held: list[tuple[Mapping[str, Any], Any, Sequence[float] | None]] = []

    @property
    def controller(self) -> Controller:
        return self._controller

    def _over(self) -> bool:
        if not self.max_overhead or self._start is None:
            return False
        return self._spent > self.max_overhead * (time.perf_counter() - self._start)

    def _timed(self, fn: Any, *args: Any) -> Any:
        t0 = time.perf_counter()
        if self._start is None:
            self._start = t0
        try:
            return fn(*args)
        finally:
            self._spent += time.perf_counter() - t0

    def ask(self) -> dict[str, Any] | None:
        try:
            if self._over():
                return self._timed(self._controller.ask_quick)
            self._timed(self._release)
            return self._timed(self._controller.ask, 1)[0]
        except SpaceExhausted:                   # every config was tried: nothing left to propose
            self.exhausted = True
            return None

    def tell(self, config: Mapping[str, Any], reward: Any, constraints: Sequence[float] | None = None) -> None:
        """A reward (a vector with several objectives) passed through to `Controller.tell`, with
        the constraint values in a constrained job."""
        self._held.append((config, reward, constraints))
        if not self._over():
            self._timed(self._release)

    def _release(self) -> None:
        """Tell the held results in one batch."""
        if self._held:
            held, self._held = self._held, []
            configs, rewards = [c for c, _, _ in held], [r for _, r, _ in held]
            if self.constrained:
                self._controller.tell(configs, rewards, constraints=[k for _, _, k in held])
            else:
                self._controller.tell(configs, rewards)

    def warm_start(self, configs: list[Mapping[str, Any]], rewards: list[float]) -> None:
        """Pre-train the policy off-policy on earlier trials (`Controller.warm_start`)."""
        self._release()
        if hasattr(self._controller, "warm_start"):
            self._controller.warm_start(list(configs), list(rewards))
        else:
            self._controller.tell(list(configs), list(rewards))

    def state_dict(self) -> dict[str, Any]:
        self._timed(self._release)
        return self._controller.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._held = []
        self._controller.load_state_dict(state)
