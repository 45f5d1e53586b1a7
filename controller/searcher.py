"""Ray Tune searchers over a `SearchSpace`: the RNN controller adapter and the baselines.

`ControllerSearcher` is a thin adapter in the manner of Ray Tune's `OptunaSearch`: a trial-id
-> config map, `suggest` = `Controller.ask`, `on_trial_complete` = `Controller.tell`.
`build_search` returns, for any of the three searcher names, what `tune.Tuner` needs: the
search algorithm and the `param_space` (non-empty only for random search, whose configs carry
every slot and are projected by the trainable).
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
from ray import tune
from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter, SearchAlgorithm, Searcher

from search_spaces import SearchSpace

from .controller import Controller

SEARCHERS = ("rnn", "random", "tpe")


class ControllerSearcher(Searcher):
    """Proposes configs from the controller's policy; feeds each trial's reward back.

    `metric`/`mode` are fixed here: Ray does not call `set_search_properties` when
    `param_space` is empty. A trial that errored, or ended without a result, tells `None`
    (ignored by the policy). Trials a scheduler stopped arrive with ``error=False`` and their
    last result, whose reward is the best-so-far reward (see `workers.rewards`).
    """

    def __init__(self, space: SearchSpace, metric: str = "reward", mode: str = "max",
                 controller: Controller | None = None, **controller_options: Any) -> None:
        super().__init__(metric=metric, mode=mode)
        self.space = space
        self.controller = controller or Controller(space, **controller_options)
        self._pending: dict[str, dict[str, Any]] = {}

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict,
                              **spec: Any) -> bool:
        if metric:
            self._metric = metric
        if mode:
            self._mode = mode
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        config = self.controller.ask(1)[0]
        self._pending[trial_id] = config
        return dict(config)

    def on_trial_complete(self, trial_id: str, result: Mapping[str, Any] | None = None,
                          error: bool = False) -> None:
        config = self._pending.pop(trial_id, None)
        if config is None:
            return
        reward = None
        if not error and result and result.get(self.metric) is not None:
            reward = float(result[self.metric])
            if self.mode == "min":
                reward = -reward
        self.controller.tell([config], [reward])

    @property
    def pending(self) -> dict[str, dict[str, Any]]:
        """Configs of trials suggested but not completed, by trial id."""
        return dict(self._pending)

    def save(self, checkpoint_path: str) -> None:
        """Controller state + pending map (so `Tuner.restore` continues exactly).

        Tune calls this through `save_to_dir` at each experiment checkpoint. The file is
        written with `torch.save` and read with ``weights_only=True``: tensors and plain data
        only, so loading it cannot run code (unlike `pickle`).
        """
        state = {"controller": self.controller.state_dict(), "pending": self._pending,
                 "metric": self._metric, "mode": self._mode}
        torch.save(state, checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        state = torch.load(checkpoint_path, weights_only=True)
        self.controller.load_state_dict(state["controller"])
        self._pending = dict(state["pending"])
        self._metric, self._mode = state["metric"], state["mode"]


def build_search(name: str, space: SearchSpace, concurrency: int, seed: int = 0,
                 metric: str = "reward", mode: str = "max",
                 controller_options: Mapping[str, Any] | None = None,
                 ) -> tuple[SearchAlgorithm | Searcher, dict[str, Any]]:
    """(search_alg, param_space) for searcher `name` in ``rnn | random | tpe``."""
    if name == "rnn":
        searcher = ControllerSearcher(space, metric, mode, seed=seed, **dict(controller_options or {}))
        return ConcurrencyLimiter(searcher, max_concurrent=concurrency), {}
    if name == "random":
        domains = {k: tune.choice(v) for k, v in space.domains().items()}
        return BasicVariantGenerator(max_concurrent=concurrency, random_state=seed), domains
    if name == "tpe":
        import optuna
        from ray.tune.search.optuna import OptunaSearch
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        searcher = OptunaSearch(space=space.suggest_optuna, metric=metric, mode=mode,
                                sampler=optuna.samplers.TPESampler(seed=seed))
        return ConcurrencyLimiter(searcher, max_concurrent=concurrency), {}
    raise ValueError(f"unknown searcher {name!r}; choose one of {', '.join(SEARCHERS)}")


def controller_of(search_alg: Any) -> Controller | None:
    """The Controller inside a (wrapped) search algorithm, or None for the baselines."""
    inner = getattr(search_alg, "searcher", search_alg)
    return inner.controller if isinstance(inner, ControllerSearcher) else None
