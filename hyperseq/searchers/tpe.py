"""Optuna's samplers (TPE, GP) over a `SearchSpace`, through Optuna's ask/tell interface.

The space conversion lives here (as Ray's `OptunaSearch` owns its own): categorical decisions
become `CategoricalDistribution`s; numeric grids become an ordinal `IntDistribution` over grid
indices (log grids are then uniform in log space), so TPE sees their order. Conditional
decisions are suggested only when active (define-by-run). Results for configurations TPE did
not propose (a resumed job, a warm start) enter the study with `add_trial`.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution
from optuna.trial import TrialState

from search_spaces import SearchSpace
from search_spaces.spec import index_of

from .base import Searcher

CONSTRAINTS = "constraints"     # Optuna's system-attribute prefix of a trial's constraint values


def suggest(space: SearchSpace, trial: Any) -> dict[str, Any]:
    """Define-by-run: suggest the active slots in order; return the config.

    Works with `optuna.Trial` and any object with its `suggest_int`/`suggest_categorical`.
    """
    chosen: dict[str, int] = {}
    for slot in space.slots:
        if not space.is_active(slot, chosen):
            continue
        if slot.numeric_grid:
            chosen[slot.key] = trial.suggest_int(slot.key, 0, len(slot.choices) - 1)
        else:
            chosen[slot.key] = index_of(slot.choices, trial.suggest_categorical(slot.key, list(slot.choices)))
    return {key: space.slot(key).choices[tok] for key, tok in chosen.items()}


def distributions(space: SearchSpace, config: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, BaseDistribution]]:
    """(params, distributions) of a valid config, as `suggest` would have recorded them."""
    params: dict[str, Any] = {}
    dists: dict[str, BaseDistribution] = {}
    for i, tok in space.encode_slots(config):
        slot = space.slots[i]
        if slot.numeric_grid:
            params[slot.key], dists[slot.key] = tok, IntDistribution(0, len(slot.choices) - 1)
        else:
            params[slot.key], dists[slot.key] = slot.choices[tok], CategoricalDistribution(list(slot.choices))
    return params, dists


class OptunaSearcher(Searcher):
    """An Optuna sampler maximising the reward through ask/tell; options are the sampler's
    keywords. Subclasses name the sampler class. With ``objectives=N`` the study maximises the
    told vector (N directions); constraint values go to each trial as Optuna's constraints
    (``trial.set_constraint``, or the system attributes of an added trial), which TPE and GP
    read whenever a study has them."""

    sampler_class: Any = optuna.samplers.TPESampler

    def __init__(self, space: SearchSpace, seed: int = 0, objectives: int = 1, constrained: bool = False,
                 **options: Any) -> None:
        super().__init__(space, seed)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.objectives, self.constrained = objectives, constrained
        self.options = dict(options)
        self.study = optuna.create_study(directions=["maximize"] * objectives,
                                         sampler=self.sampler_class(seed=seed, **options))
        self._pending: list[tuple[dict[str, Any], Any]] = []     # asked, not told, in order
        self._told: list[tuple[dict[str, Any], Any, Any]] = []

    def ask(self) -> dict[str, Any]:
        trial = self.study.ask()
        config = suggest(self.space, trial)
        self._pending.append((config, trial))
        return config

    def tell(self, config: Mapping[str, Any], reward: Any, constraints: Sequence[float] | None = None) -> None:
        config = dict(config)
        self._told.append((config, reward, None if constraints is None else [float(c) for c in constraints]))
        values = self._values(reward)
        ok = values is not None
        kept = {} if constraints is None or not ok else {str(i): float(c) for i, c in enumerate(constraints)}
        index = next((i for i, (c, _) in enumerate(self._pending) if c == config), None)
        if index is not None:                       # match by config: results come in any order
            trial = self._pending.pop(index)[1]
            for key, value in kept.items():
                trial.set_constraint(key, value)
            self.study.tell(trial, values, state=None if ok else TrialState.FAIL)
            return
        params, dists = distributions(self.space, config)
        self.study.add_trial(optuna.trial.create_trial(
            params=params, distributions=dists, values=values,
            system_attrs={f"{CONSTRAINTS}:{key}": value for key, value in kept.items()},
            state=TrialState.COMPLETE if ok else TrialState.FAIL))

    def _values(self, reward: Any) -> list[float] | None:
        """The study's values of a told reward (a float, or a sequence of `objectives`); None
        for a crash or a non-finite value."""
        values = [reward] if self.objectives == 1 and not isinstance(reward, (list, tuple)) else reward
        if values is None or len(values) != self.objectives:
            return None
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
            return None
        return [float(v) for v in values]

    def state_dict(self) -> dict[str, Any]:
        """The results told so far; a restore replays them into a fresh study."""
        return {"told": [[c, r, k] for c, r, k in self._told]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.__init__(self.space, self.seed, self.objectives, self.constrained, **self.options)
        for config, reward, *constraints in state["told"]:      # (older states: no constraints)
            self.tell(config, reward, constraints[0] if constraints else None)


class TPESearcher(OptunaSearcher):
    """Optuna's TPE (Bergstra et al. 2011); options are `TPESampler` keywords, e.g.
    ``multivariate=True, group=True``."""

    sampler_class = optuna.samplers.TPESampler


class GPSearcher(OptunaSearcher):
    """Optuna's Gaussian-process Bayesian optimisation (`GPSampler`); options are its keywords."""

    sampler_class = optuna.samplers.GPSampler
