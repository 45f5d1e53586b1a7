"""The Ray Tune adapter: any ask/tell `Searcher` as a `ray.tune.search.Searcher`.

Thin, in the manner of Ray Tune's `OptunaSearch`: a trial-id -> config map, `suggest` = ask,
`on_trial_complete` = tell. `metric`/`mode` default to None, as Ray's searchers do: they come
from the Tuner's `TuneConfig` through `set_search_properties` (or the constructor). The
searcher owns its space, so a `param_space` with unresolved domains is refused (False), and
Tune raises instead of passing `Domain` objects to the trials. Non-finite results (NaN, ±inf)
and errored trials tell `None`. A multi-objective or constrained job's trials report
``objectives`` (the vector told instead of the reward) and ``constraints`` (told beside it;
`workers.trainable`); a single-objective job's searcher is told a float, as before. State is
saved with `torch.save` and read back with ``weights_only=True``: tensors and plain data only,
so loading it cannot run code.
"""
from __future__ import annotations

import contextlib
import math
from typing import Any, Iterator, Mapping

import torch
from ray.tune.search import Searcher as RaySearcher
from ray.tune.search.variant_generator import parse_spec_vars

from controller import Controller
from search_spaces import SearchSpace

from ..schedulers.rungs import RungRanks
from .base import Searcher
from .rnn import RNNSearcher


_LIVE: dict[str, Searcher] = {}       # label -> the searcher object this process's driver holds


@contextlib.contextmanager
def live_searcher(label: str, searcher: Searcher) -> Iterator[None]:
    """While the block runs, a `TuneSearcher` labelled `label` that Tune restores from its
    experiment state continues in `searcher` (the object the driver's monitor watches)."""
    _LIVE[label] = searcher
    try:
        yield
    finally:
        _LIVE.pop(label, None)


class TuneSearcher(RaySearcher):
    """Proposes configs from `searcher.ask()`; feeds each trial's result back with `tell`.

    `label` (a job name) lets a restored copy continue in the driver's live searcher.
    """

    def __init__(self, searcher: Searcher, metric: str | None = None, mode: str | None = None,
                 label: str | None = None, rungs: RungRanks | None = None) -> None:
        super().__init__(metric=metric, mode=mode)
        self.inner, self.label = searcher, label    # not `.searcher`: Tune takes that for a wrapper
        self.rungs = rungs                          # with a scheduler: tell ranks within rungs
        self._pending: dict[str, dict[str, Any]] = {}

    @property
    def space(self) -> SearchSpace:
        return self.inner.space

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict,
                              **spec: Any) -> bool:
        _, domains, grids = parse_spec_vars(config or {})
        if domains or grids:                       # the searcher has its own space
            return False
        if metric and self._metric and metric != self._metric:
            return False
        self._metric = metric or self._metric
        self._mode = mode or self._mode
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        config = self.inner.ask()
        if config is None:                          # the space is exhausted: the search ends
            return RaySearcher.FINISHED
        self._pending[trial_id] = config
        return dict(config)

    def on_trial_result(self, trial_id: str, result: Mapping[str, Any]) -> None:
        reward = self._reward(result)
        if self.rungs is not None and reward is not None and trial_id in self._pending:
            self.rungs.observe(trial_id, int(result.get("training_iteration", 1)), reward)

    def on_trial_complete(self, trial_id: str, result: Mapping[str, Any] | None = None,
                          error: bool = False) -> None:
        config = self._pending.pop(trial_id, None)
        if config is None:                         # unknown, or reported complete twice
            return
        reward = None if error else self._reward(result)
        if self.rungs is not None and reward is not None:
            epoch = int(result.get("training_iteration", 1))
            self.rungs.observe(trial_id, epoch, reward)
            reward = self.rungs.reward(epoch, reward)
        told = {} if error else {key: (result or {}).get(key) for key in ("objectives", "constraints")
                                 if key in (result or {})}
        if "objectives" in told:                   # several objectives: the vector (None: diverged)
            reward = told["objectives"]
        if "constraints" in told:
            self.inner.tell(config, reward, told["constraints"])
        else:
            self.inner.tell(config, reward)

    def _reward(self, result: Mapping[str, Any] | None) -> float | None:
        value = (result or {}).get(self.metric) if self.metric else None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return None
        return -float(value) if self.mode == "min" else float(value)

    @property
    def pending(self) -> dict[str, dict[str, Any]]:
        """Configs of trials suggested but not completed, by trial id."""
        return dict(self._pending)

    def save(self, checkpoint_path: str) -> None:
        torch.save({"searcher": self.inner.state_dict(), "pending": self._pending,
                    "metric": self._metric, "mode": self._mode,
                    "rungs": None if self.rungs is None else self.rungs.state_dict()}, checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        state = torch.load(checkpoint_path, weights_only=True)
        self.inner = _LIVE.get(self.label or "", self.inner)
        self.inner.load_state_dict(state["searcher"])
        self._pending = dict(state["pending"])
        self._metric, self._mode = state["metric"], state["mode"]
        if self.rungs is not None and state.get("rungs") is not None:
            self.rungs.load_state_dict(state["rungs"])


class ControllerSearcher(TuneSearcher):
    """The RNN controller as a Ray Tune searcher (options are `ControllerOptions` fields)."""

    def __init__(self, space: SearchSpace, metric: str | None = None, mode: str | None = None,
                 controller: Controller | None = None, **controller_options: Any) -> None:
        super().__init__(RNNSearcher(space, controller=controller, **controller_options), metric, mode)

    @property
    def controller(self) -> Controller:
        return self.inner.controller


def controller_of(search_alg: Any) -> Controller | None:
    """The Controller inside a (wrapped) search algorithm, or None for the baselines."""
    inner = getattr(search_alg, "searcher", search_alg)
    if isinstance(inner, TuneSearcher):
        return inner.inner.controller
    return None
