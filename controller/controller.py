"""`Controller`: ask/tell policy-gradient search over a `SearchSpace` (no Ray, no MLflow).

`ask(n)` samples n configurations from the LSTM policy (NAS-RL, Zoph & Le 2017) and keeps no
autograd graph: trials finish asynchronously and out of order, so `tell(configs, rewards)`
re-encodes each config to its tokens and re-scores it under the current policy at update time.
Every `batch_size` new results one update is made (`update.step`) on either the new results
or, with `replay_history`, every distinct config told so far; the levers that make this
sample-efficient are `ControllerOptions` fields (see `settings.py`):

- shaping: rank or top-quantile advantages, blind to the metric's scale (`shaping.py`);
- replay + PPO: several clipped steps over the whole history per update (`update.py`); as the
  history grows, an update waits for history / `max_replay_ratio` new results (not fewer than
  `batch_size`), so the cost per result stays bounded instead of growing with the history;
- PQT: the policy is also pulled towards the best configs found (`memory.py`, `update.py`);
- dedup: no trial is spent twice on a config (`sampling.py`; `SpaceExhausted` at the end);
- screening: a reward model fitted to the results picks among the policy's proposals, uniform
  draws and one-decision moves from the best configs by Thompson sampling, and can reward
  imagined configs between real trials (Dyna, Sutton 1991) (`reward_model.py`);
- space filling: before screening starts, the first configs are spread over the space;
- several objectives and constraints (`objectives.py`): the policy learns from constrained
  Pareto ranks, the reward model screens on a new random scalarisation per proposal.

Failed trials: a reward of None, NaN or +-inf teaches nothing (no gradient, no baseline move)
and is counted in `stats["failed"]`; with dedup the config still counts as tried. A caller
that wants failures *avoided* passes a finite floor reward instead.
"""
from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any, Mapping, Sequence

import torch

from search_spaces import SearchSpace

from . import update
from .introspect import Introspection
from .memory import Memory, Pairs, as_pairs
from .objectives import Objectives, check_told, is_vector, vector
from .policy import Policy, PolicyConfig, one_thread as _one_thread
from .reward_model import RewardModel
from .sampling import Proposer, QuickPool, SpaceExhausted, decode, draw
from .settings import LEVERS_OFF, ControllerOptions
from .shaping import EmaBaseline, quantile_advantages, rank_advantages

__all__ = ["Controller", "ControllerOptions", "SpaceExhausted"]
STATE_VERSION = 2


def _finite(r: Any) -> bool:
    return isinstance(r, (int, float)) and not isinstance(r, bool) and math.isfinite(r)


class Controller(Introspection):
    """LSTM policy over a search space, trained by policy gradient from asynchronous rewards."""

    def __init__(self, space: SearchSpace, **options: Any) -> None:
        self.space = space
        self.options = ControllerOptions.create(**options)
        o = self.options
        with torch.random.fork_rng(devices=[]):       # seeded init, global RNG untouched
            torch.manual_seed(o.seed)
            self.policy = Policy([len(s.choices) for s in space.slots],
                                 PolicyConfig(o.hidden_size, o.num_layers, o.temperature, o.tanh_c))
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=o.lr, fused=True)
        self.rng = torch.Generator().manual_seed(o.seed)
        self.ema = EmaBaseline(o.baseline_decay)
        self.memory = Memory()
        self.proposer = Proposer(space, o)
        self.model = RewardModel(space, o.model_kernel, o.model_noise) if o.screen > 1 or o.dyna_samples else None
        self._queue: list[tuple[Pairs, float, float]] = []  # (config, reward, EMA advantage) not yet used
        self._quick = QuickPool(space, o.dedup)
        self.objectives = Objectives()                       # several objectives: their vectors
        self._fresh: list[Pairs] = []                        # ... told, not yet scored and queued
        self.stats: dict[str, float] = {"asked": 0, "told": 0, "failed": 0, "updates": 0,
                                        "baseline": float("nan"), "reward_std": float("nan"),
                                        "mean_reward": float("nan"), "entropy": float("nan"),
                                        "loss": float("nan"), "repeats": 0}

    @property
    def baseline(self) -> float | None:
        return self.ema.mean

    # ---- ask ----------------------------------------------------------------------------------
    def ask(self, n: int = 1) -> list[dict[str, Any]]:
        """`n` configurations from the current policy (untried ones when `dedup`; raises
        `SpaceExhausted` if fewer than n untried remain, proposing nothing)."""
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"ask(n): n must be a positive integer, got {n!r}")
        with _one_thread():
            model = self._screening_model()
            if model is None and self.proposer.spreads(n, self.model, self.memory):
                chosen, echoes = self.proposer.spread(n, self.model, self.memory, self.rng), []
            else:
                chosen, echoes = self.proposer.propose(n, self.policy, self.memory, model, self.rng)
        if not self.options.replay_history:     # a redrawn told config still teaches the policy
            self._queue += [self._queued(k, self.memory.reward_of(k), fold=False) for k in echoes]
        for key in chosen:
            self.memory.asked(key)
        self.stats["asked"] += n
        self.stats["repeats"] = self.proposer.repeats
        return [decode(self.space, key) for key in chosen]

    def ask_quick(self) -> dict[str, Any]:
        """One config from a pool of policy samples drawn in one batch (`QuickPool`), without
        screening: a proposal for a fraction of `ask`'s cost, for a caller over its compute
        budget (`RNNSearcher(max_overhead=...)`). Untried when `dedup`, like `ask`; when the
        pool has nothing untried left, it is `ask(1)`."""
        with _one_thread():
            key = self._quick.take(self.policy, self.memory, self.rng, int(self.stats["updates"]))
        if key is None:
            return self.ask(1)[0]
        self.memory.asked(key)
        self.stats["asked"] += 1
        return decode(self.space, key)

    def _screening_model(self) -> RewardModel | None:
        if self.model is None or self.options.screen < 2 or len(self.memory.sums) < max(2, self.options.screen_start):
            return None
        multi = self.objectives.dims and self.options.multi_screen == "parego"
        self.model.fit(*(self.objectives.parego(self.rng) if multi else self.memory.history()))
        return self.model

    # ---- tell -----------------------------------------------------------------------------------
    def tell(self, configs: Sequence[Mapping[str, Any]], rewards: Sequence[Any],
             constraints: Sequence[Sequence[float] | None] | None = None) -> None:
        """Report rewards (higher is better) for configs, in any order and batch size; configs
        the controller never asked are fine (off-policy). With several objectives a reward is
        a sequence (each objective higher-is-better); `constraints` gives each config its
        Optuna-style values (<= 0 satisfied), with one objective or several."""
        keys, limits = self._encode(configs, rewards), check_told(rewards, constraints)
        self.objectives.check(rewards)
        for key, r, c in zip(keys, rewards, limits):
            self.stats["told"] += 1
            self._record(key, r, c)
        self._rescore()
        o = self.options
        size = o.batch_size
        if o.replay_history and o.max_replay_ratio:   # at most max_replay_ratio rows per new result
            size = max(size, len(self.memory.sums) // o.max_replay_ratio)
        while len(self._queue) >= size:       # with replay_history one update takes them all
            cut = len(self._queue) if o.replay_history else size
            batch, self._queue = self._queue[:cut], self._queue[cut:]
            with _one_thread():
                self._update(batch)

    def warm_start(self, configs: Sequence[Mapping[str, Any]], rewards: Sequence[float | None]) -> None:
        """Pre-train on earlier trials (off-policy) before the first ask: they join the history
        and the elites, count as tried for dedup, and the policy takes one update on them."""
        for key, r in zip(self._encode(configs, rewards), rewards):
            self._record(key, r)
        self._rescore()
        if self._queue:
            batch, self._queue = self._queue, []
            with _one_thread():
                self._update(batch)

    def _encode(self, configs: Sequence[Mapping[str, Any]], rewards: Sequence[Any]) -> list[Pairs]:
        if isinstance(configs, Mapping):
            raise ValueError("tell(configs, rewards) takes a list of configs; wrap a single one in [ ]")
        if len(configs) != len(rewards):
            raise ValueError(f"tell: {len(configs)} configs but {len(rewards)} rewards")
        return [as_pairs(self.space.encode_slots(c)) for c in configs]   # validates every config first

    def _record(self, key: Pairs, reward: Any, constraints: Sequence[float] | None = None) -> None:
        multi = bool(self.objectives.dims) or constraints is not None or is_vector(reward)
        if multi and self.memory.sums and not self.objectives.dims:
            raise ValueError("tell: a vector reward or constraints after single-objective rewards; "
                             "one controller learns one kind")
        values = vector(reward) if multi else None
        if not (_finite(reward) or values):
            self.stats["failed"] += 1
            self.memory.told(key, None)
        elif multi:
            self.objectives.add(key, values, constraints)
            self.memory.told(key, None)               # tried; its score comes from `_rescore`
            self._fresh.append(key)
        else:
            self.memory.told(key, float(reward))
            self._queue.append(self._queued(key, float(reward), fold=True))

    def _rescore(self) -> None:
        """Several objectives: every config's score from the whole history (a new result can
        move others' fronts), then queue the new results with theirs."""
        if self._fresh:
            self.memory.sums = {k: [s, 1] for k, s in self.objectives.scores().items()}
            self._queue += [self._queued(k, self.memory.reward_of(k), fold=True) for k in self._fresh]
            self._fresh = []

    def _queued(self, key: Pairs, reward: float, fold: bool) -> tuple[Pairs, float, float]:
        """(config, reward, advantage against the EMA baseline; `fold` moves the EMA first)."""
        o = self.options
        diff = self.ema.update(reward) if fold else reward - (self.ema.mean or reward)
        return key, reward, self.ema.advantage(diff, o.normalize, o.adv_clip)

    # ---- update ---------------------------------------------------------------------------------
    def _update(self, batch: list[tuple[Pairs, float, float]]) -> None:
        """One update on the new `batch` or, with replay_history, on the whole history."""
        o = self.options
        if o.replay_history:
            keys, rewards = self.memory.history()
        else:
            keys, rewards = [k for k, _, _ in batch], [r for _, r, _ in batch]
        adv = self._advantages(rewards, [a for _, _, a in batch])
        rows = list(range(len(keys)))
        if len(rows) > o.max_history:
            rows = torch.randperm(len(rows), generator=self.rng)[: o.max_history].tolist()
        elites = [k for k, _ in self.memory.elites(o.elite_size)] if o.elite_weight else []
        loss, ent = self._step([keys[i] for i in rows], [adv[i] for i in rows], elites)
        if o.dyna_samples and self.model is not None and len(self.memory.sums) >= max(2, o.screen_start):
            self._dream(elites)
        self.stats.update(updates=self.stats["updates"] + 1, baseline=self.ema.mean,
                          reward_std=math.sqrt(self.ema.var), entropy=ent, loss=loss,
                          mean_reward=sum(r for _, r, _ in batch) / len(batch))

    def _advantages(self, rewards: list[float], ema_adv: list[float]) -> list[float]:
        o = self.options
        if o.shaping == "rank":
            return rank_advantages(rewards)
        if o.shaping == "quantile":
            return quantile_advantages(rewards, o.quantile)
        if not o.replay_history:
            return ema_adv                   # NAS-RL's rule: each reward against the EMA then
        mean = self.ema.mean if self.ema.mean is not None else 0.0
        return [self.ema.advantage(r - mean, o.normalize, o.adv_clip) for r in rewards]

    def _dream(self, elites: list[Pairs]) -> None:
        """Dyna (Sutton 1991): one more update on configs the policy imagines, rewarded by the
        reward model's posterior mean, ranked together with the real results."""
        keys, rewards = self.memory.history()
        self.model.fit(keys, rewards)
        imagined = draw(self.policy, self.space, self.options.dyna_samples, self.rng)
        predicted = self.model.posterior(imagined)[0].tolist()
        real = self.model.targets.tolist()
        adv = (rank_advantages(real + predicted) if self.options.shaping != "quantile"
               else quantile_advantages(real + predicted, self.options.quantile))[len(real):]
        self._step(imagined, adv, elites)

    def _step(self, keys: list[Pairs], adv: list[float], elites: list[Pairs]) -> tuple[float, float]:
        tokens, active = update.encode(len(self.space.slots), list(keys) + list(elites))
        batch = update.Batch(tokens, active, torch.tensor(adv, dtype=torch.float32), len(elites))
        return update.step(self.policy, self.optimizer, batch, self.options)

    # ---- state -----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: weights, optimiser, baseline, queue, memory,
        RNG. Tensors and plain data only (loads with ``torch.load(weights_only=True)``)."""
        return {"version": STATE_VERSION, "space_keys": list(self.space.keys),
                "options": asdict(self.options), "policy": self.policy.state_dict(),
                "optimizer": self.optimizer.state_dict(), "rng": self.rng.get_state(),
                "baseline": self.ema.mean, "reward_var": self.ema.var,
                "queue": [[list(map(list, k)), r, a] for k, r, a in self._queue],
                "memory": self.memory.state(), "repeats": self.proposer.repeats,
                "objectives": self.objectives.state(),
                "stats": dict(self.stats)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore `state_dict()` output (also version 1 states, which had no memory)."""
        if list(state.get("space_keys", [])) != list(self.space.keys):
            raise ValueError("controller state was saved for a different search space "
                             f"(keys {state.get('space_keys')} != {list(self.space.keys)})")
        legacy = LEVERS_OFF if state.get("version", 1) < 2 else {}
        options = {**asdict(ControllerOptions()), **legacy, **state["options"]}
        self.__init__(self.space, **options)         # rebuild with the saved shape, fresh memory
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.set_state(state["rng"])
        self.ema.mean, self.ema.var = state["baseline"], state["reward_var"]
        if state.get("version", 1) < 2:              # v1: queue of (pairs, reward); elites only
            self._queue = [self._queued(as_pairs(p), r, fold=False) for p, r in state["queue"]]
            for p, r in state.get("elite", []):
                self.memory.told(as_pairs(p), r)
        else:
            self._queue = [(as_pairs(k), r, a) for k, r, a in state["queue"]]
            self.memory.load(state["memory"])
            self.objectives.load(state.get("objectives", []))
            self.proposer.repeats = state.get("repeats", 0)
        self.stats = {**self.stats, **state["stats"]}
