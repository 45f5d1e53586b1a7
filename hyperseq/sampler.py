"""`ControllerSampler`: the RNN controller as an Optuna sampler.

Relative sampling over the study's intersection search space (as `CmaEsSampler` does,
optuna/samplers/_cmaes.py): each parameter is one token slot of a `controller.Controller`
(see `sampler_space.py` for how distributions become slots). Parameters outside that space
are sampled independently: uniformly, or by a given `independent_sampler`, with no warning.
Multi-objective studies tell the controller one reward per objective, and constraints (from
`constraints_func` or `Trial.set_constraint`) go with them (`controller.objectives`).

The controller's state is a function of the study's trials, never of one process's memory:
it is rebuilt from the COMPLETE trials in the order they completed (ties by trial number),
each told its reward one at a time, and a cached controller is reused only when the study's
history extends exactly what it was told. Completion order rather than trial numbers because
parallel trials finish out of number order; their history still only grows at the end, so the
cache keeps hitting (and a controller fed by Ray sees results in that order too).

The cached controller is only ever told: each trial asks a cheap copy of it (`_asking_copy`:
policy and told configs shared, what asking writes copied) whose sampling RNG is seeded
from (seed, trial number), so whatever `ask` changes inside the controller (RNG, dedup
memory) never reaches later trials; values inside bins come from another per-trial RNG. So
threads (n_jobs > 1, one lock) and processes sharing an RDB study get the suggestion that a
single-process replay of the same trials gives.
"""
from __future__ import annotations

import copy
import math
import random
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Sequence

import torch
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.samplers._base import _process_constraints_after_trial
from optuna.search_space import IntersectionSearchSpace
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from controller import Controller
from search_spaces import SearchSpace

try:                        # dedup=True can exhaust a small space
    from controller import SpaceExhausted
except ImportError:         # a controller without dedup never raises it
    SpaceExhausted = ()     # type: ignore[assignment,misc]

from .sampler_space import SlotMap, bins_for

# (trial number, slot config, reward: a float, or one per objective, constraint values or None)
Entry = tuple[int, dict[str, int], Any, tuple[float, ...] | None]
History = list[Entry]


@dataclass
class _Replay:
    """The cached controller: the space it was built for and what it has been told."""

    key: tuple                                   # (directions, constrained, sorted space items)
    slots: SlotMap
    ctrl: Controller
    told: History = field(default_factory=list)
    entries: dict[tuple, Entry | None] = field(default_factory=dict)   # per finished trial


class ControllerSampler(BaseSampler):
    """Sample parameters from an LSTM policy trained by policy gradient on the study's trials.

    Args:
        seed: seeds the controller's initial policy and every per-trial draw. None picks one
            at random (then processes sharing a study do not agree on suggestions).
        n_startup_trials: sample independently until the study has this many COMPLETE trials.
        n_bins: bins for a float range, and the most values an int or stepped-float range
            keeps as one token each (a longer grid is split into `n_bins` runs).
        independent_sampler: samples parameters outside the relative space; default uniform.
        constraints_func: a trial's constraint values (each <= 0 satisfied), stored after
            each trial as Optuna's samplers do; `Trial.set_constraint` values count alike.
            The controller ranks feasible trials first (`controller.objectives`).
        **controller_options: `controller.Controller` options (hidden_size, lr, batch_size,
            entropy_weight, elite_size, ...); unknown names are a ValueError.
    """

    def __init__(self, seed: int | None = None, *, n_startup_trials: int = 1, n_bins: int = 8,
                 independent_sampler: BaseSampler | None = None,
                 constraints_func: Callable[[FrozenTrial], Sequence[float]] | None = None,
                 **controller_options: Any) -> None:
        if isinstance(n_startup_trials, bool) or not isinstance(n_startup_trials, int) or n_startup_trials < 0:
            raise ValueError(f"n_startup_trials must be an integer >= 0, got {n_startup_trials!r}")
        if not isinstance(n_bins, int) or isinstance(n_bins, bool) or n_bins < 1:
            raise ValueError(f"n_bins must be an integer >= 1, got {n_bins!r}")
        self._seed = random.SystemRandom().randrange(2**31) if seed is None else int(seed)
        self._n_startup_trials = n_startup_trials
        self._n_bins = n_bins
        self._independent_sampler = independent_sampler
        self._constraints_func = constraints_func
        self._options = dict(controller_options)
        probe = SearchSpace.from_dict({"name": "probe", "decisions": [{"name": "p", "choices": [0, 1]}]})
        Controller(probe, seed=self._seed, **self._options)      # fail fast on bad options
        self._init_state()

    def _init_state(self) -> None:
        self._search_space = IntersectionSearchSpace()
        self._lock = threading.RLock()        # one controller, many optimize() threads
        self._cache: _Replay | None = None
        self._limits: dict[tuple, bool] = {}   # finished trial -> whether it has constraints

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for name in ("_search_space", "_lock", "_cache", "_limits"):     # rebuilt from the study anyway
            del state[name]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_state()

    def reseed_rng(self) -> None:
        # Per-trial RNGs derive from (seed, trial number): nothing to reseed but a fallback's.
        if self._independent_sampler is not None:
            self._independent_sampler.reseed_rng()

    # ---- the three BaseSampler methods -------------------------------------------------------
    def infer_relative_search_space(self, study: Study,
                                    trial: FrozenTrial) -> dict[str, BaseDistribution]:
        with self._lock:                       # IntersectionSearchSpace caches as it goes
            space = self._search_space.calculate(study)
        # A single-valued distribution is set by the Trial itself (optuna/trial/_trial.py).
        return {name: d for name, d in space.items() if not d.single()}

    def sample_relative(self, study: Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        if not search_space:
            return {}
        trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if len(trials) < self._n_startup_trials:
            return {}
        with self._lock:                       # the controller pins torch to one thread while it asks
            ctrl, slots = self._controller(tuple(study.directions), search_space, trials)
            try:
                with torch.inference_mode():   # asking needs no autograd bookkeeping
                    config = _asking_copy(ctrl, self._derived_seed(trial.number, "ask")).ask(1)[0]
            except SpaceExhausted:             # dedup=True over a small space: go uniform
                return {}
        return slots.params_of(config, self._rng(trial.number, "bins"))

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        if self._independent_sampler is not None:
            return self._independent_sampler.sample_independent(study, trial, param_name,
                                                                param_distribution)
        rng = self._rng(trial.number, f"independent:{param_name}")
        return bins_for(param_distribution, self._n_bins).uniform(rng)

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        if self._constraints_func is not None:
            _process_constraints_after_trial(self._constraints_func, study, trial, state)
        if self._independent_sampler is not None:
            self._independent_sampler.after_trial(study, trial, state, values)

    # ---- the controller as a function of the study's trials -----------------------------------
    def _controller(self, directions: tuple[StudyDirection, ...], search_space: dict[str, BaseDistribution],
                    trials: Sequence[FrozenTrial]) -> tuple[Controller, SlotMap]:
        """A controller told exactly `trials` (in completion order): the cached one if what it was
        told is a prefix of their history, else a fresh one replayed from the start. Once any
        trial has constraints, every trial is told with its own (none: feasible)."""
        constrained = any(self._has_limits(t) for t in trials)
        key = (directions, constrained, tuple(sorted(search_space.items())))
        replay = self._cache if self._cache is not None and self._cache.key == key else None
        slots = replay.slots if replay else SlotMap.create(search_space, self._n_bins)
        memo = replay.entries if replay else {}
        history = _history(trials, search_space, slots, directions, memo, constrained)
        if replay is None or history[:len(replay.told)] != replay.told:
            ctrl = Controller(slots.space, seed=self._seed, **self._options)
            replay = _Replay(key, slots, ctrl, entries=memo)
        for number, config, reward, constraints in history[len(replay.told):]:
            # one at a time: a replay batches alike
            replay.ctrl.tell([config], [reward], None if constraints is None else [constraints])
            replay.told.append((number, config, reward, constraints))
        self._cache = replay
        return replay.ctrl, slots

    def _has_limits(self, trial: FrozenTrial) -> bool:
        """Whether a finished trial has constraint values (parsed once per trial: Optuna reads
        them out of its system attrs on every access)."""
        key = (trial._trial_id, trial.number, trial.datetime_complete)
        if key not in self._limits:
            self._limits[key] = bool(trial.constraints)
        return self._limits[key]

    def _derived_seed(self, number: int, purpose: str) -> int:
        # str seeds hash with SHA-512 (random.seed), the same in every process.
        return random.Random(f"{self._seed}/{number}/{purpose}").getrandbits(63)

    def _rng(self, number: int, purpose: str) -> random.Random:
        return random.Random(self._derived_seed(number, purpose))


def reward_of(value: float | None, direction: StudyDirection) -> float | None:
    """The controller maximises reward: the value, negated for a minimize study; a non-finite
    value tells nothing (the controller normalises advantages, so the scale does not matter)."""
    if value is None or not math.isfinite(value):
        return None
    return -value if direction == StudyDirection.MINIMIZE else value


def _history(trials: Sequence[FrozenTrial], search_space: dict[str, BaseDistribution], slots: SlotMap,
             directions: Sequence[StudyDirection], memo: dict[tuple, Entry | None] | None = None,
             constrained: bool = False) -> History:
    """(number, config, reward, constraints) of the COMPLETE trials that sampled every
    parameter of the space from the same distribution, in completion order; pruned and failed
    trials, and non-finite values, tell nothing. A multi-objective study's reward is one per
    objective. `memo` keeps each finished trial's entry between calls."""
    memo = {} if memo is None else memo
    out: History = []
    for t in sorted(trials, key=lambda t: (t.datetime_complete or datetime.min, t.number)):
        # a finished trial never changes (its constraints are stored before it completes)
        fingerprint = (t._trial_id, t.number, t.datetime_complete, constrained)
        if fingerprint not in memo:
            reward = _rewards(t, directions) if t.state == TrialState.COMPLETE else None
            fits = reward is not None and all(t.distributions.get(n) == d for n, d in search_space.items())
            limits = tuple(t.constraints.values()) if constrained else None
            memo[fingerprint] = (t.number, slots.config_of(t.params), reward, limits) if fits else None
        if memo[fingerprint] is not None:
            out.append(memo[fingerprint])
    return out


def _rewards(trial: FrozenTrial, directions: Sequence[StudyDirection]) -> Any:
    """A trial's reward: one number, or a tuple with one per objective; None if any is missing."""
    if len(directions) == 1:
        return reward_of(trial.value, directions[0])
    rewards = tuple(reward_of(v, d) for v, d in zip(trial.values or (), directions))
    return rewards if len(rewards) == len(directions) and None not in rewards else None


def _asking_copy(ctrl: Controller, seed: int) -> Controller:
    """A copy of `ctrl` whose next `ask` depends on `seed` and the told trials only, and which
    leaves `ctrl` as it was. Uses the controller's `rng` attribute (its sampling generator,
    saved in its state dict). The space, policy and optimiser are shared: asking samples
    without a gradient. Everything else is copied two levels down (the controller's attributes,
    and the containers inside its parts: memory's pending asks, the queue, the stats, the
    reward model's fit), which is as deep as `ask` writes; the told configs themselves (tuples)
    and the tensors are shared, as asking only reads them, so a copy costs the same at any
    history length (tests/hyperseq/test_sampler.py checks the asked controller is unchanged)."""
    clone = copy.copy(ctrl)
    for name, value in vars(ctrl).items():
        if name not in _SHARED:
            setattr(clone, name, _copy_two_levels(value))
    clone.rng = torch.Generator().manual_seed(seed)
    return clone


_SHARED = frozenset({"space", "policy", "optimizer", "rng", "options"})
_CONTAINERS = (dict, list, set)


def _copy_two_levels(value: Any) -> Any:
    """A container copied shallowly; an object copied with its container attributes copied."""
    if isinstance(value, _CONTAINERS):
        return copy.copy(value)
    if isinstance(value, torch.Tensor) or not hasattr(value, "__dict__"):
        return value                             # tensors, numbers, strings, None: read only
    clone = copy.copy(value)
    for name, inner in vars(value).items():
        if isinstance(inner, _CONTAINERS):
            setattr(clone, name, copy.copy(inner))
    return clone


__all__ = ["ControllerSampler", "reward_of"]
