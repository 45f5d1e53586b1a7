"""`Controller`: ask/tell REINFORCE over a `SearchSpace` (no Ray, no MLflow).

`ask(n)` samples n configurations from the LSTM policy and keeps nothing but RNG state: no
autograd graph survives between ask and tell, because trials finish asynchronously and out of
order. `tell(configs, rewards)` re-encodes each config to its tokens, queues it, and whenever
`batch_size` rewards are queued takes one policy-gradient step on them, re-scored under the
current policy:

    advantage = clip((r - b) / s, ±adv_clip)     b, s: EMA mean and EMA std of past rewards
    loss      = -mean(log p(tokens) * advantage) - entropy_weight * mean(entropy)
                - elite_weight * mean(log p(elite))

The last term is priority-queue training (Abolafia et al. 2018, "Neural Program Synthesis with
Priority Queue Training"): `elite` are the `elite_size` best distinct configs told so far, and
the policy is also pulled towards them. It makes the policy a mixture around the best configs
found rather than one sequence. Defaults (elite 8, weight 0.5) were picked by replaying
settings on the char_lm table (BENCHMARKS.md, section 1, says how many for each searcher):
median regret at 100 trials 0.000 vs 0.023 without the term on the tuning seeds.

Failed trials: a reward of None, NaN or ±inf is dropped — no gradient, no baseline move — and
counted in `stats["failed"]`. A failure therefore never poisons the policy; a caller that wants
failures to be *avoided* (e.g. a diverging child) passes a finite floor reward instead.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

import torch

from search_spaces import SearchSpace

from .policy import Policy, PolicyConfig


@dataclass
class ControllerOptions:
    hidden_size: int = 64          # LSTM width
    num_layers: int = 1            # stacked LSTMCells
    temperature: float = 1.0       # sampling temperature
    tanh_c: float | None = 2.5     # logit clipping tanh_c * tanh(logits); None = off
    entropy_weight: float = 0.1    # entropy bonus beta (per summed-sequence entropy)
    baseline_decay: float = 0.9    # EMA decay of the reward baseline (and its std)
    lr: float = 5e-3               # Adam learning rate
    grad_clip: float = 5.0         # max gradient norm; 0 = off
    batch_size: int = 4            # rewards per policy-gradient step
    normalize: bool = True         # divide advantages by the EMA std of rewards
    adv_clip: float = 5.0          # clip |advantage| (after normalisation)
    elite_size: int = 8            # keep the k best configs seen (0 = off) ...
    elite_weight: float = 0.5      # ... and add elite_weight * -mean(log p(elite)) to each update
    seed: int = 0                  # seeds the policy init and the sampling RNG

    @classmethod
    def create(cls, **options: Any) -> "ControllerOptions":
        """Validated options; unknown names are a ValueError listing the valid ones."""
        unknown = set(options) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown Controller option(s): {', '.join(sorted(unknown))} "
                             f"(valid: {', '.join(cls.__dataclass_fields__)})")
        made = cls(**options)
        made.validate()
        return made

    def validate(self) -> None:
        positive = ("hidden_size", "num_layers", "temperature", "lr", "batch_size", "adv_clip")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
                raise ValueError(f"Controller option {name}={value!r} must be > 0")
        for name in ("hidden_size", "num_layers", "batch_size", "seed"):
            if not isinstance(getattr(self, name), int):
                raise ValueError(f"Controller option {name}={getattr(self, name)!r} must be an integer")
        if not 0.0 <= self.baseline_decay < 1.0:
            raise ValueError(f"Controller option baseline_decay={self.baseline_decay!r} must be in [0, 1)")
        for name in ("entropy_weight", "grad_clip", "elite_weight"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"Controller option {name}={getattr(self, name)!r} must be >= 0")
        if not isinstance(self.elite_size, int) or isinstance(self.elite_size, bool) or self.elite_size < 0:
            raise ValueError(f"Controller option elite_size={self.elite_size!r} must be an integer >= 0")
        if self.tanh_c is not None and not self.tanh_c > 0:
            raise ValueError(f"Controller option tanh_c={self.tanh_c!r} must be > 0 or None")


@contextlib.contextmanager
def _one_thread():
    """Run the tiny policy ops on one intra-op thread: on a busy machine (children training
    beside the driver) OpenMP spinning made ask+tell 30x slower with 2 threads than with 1."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _finite(r: Any) -> bool:
    return isinstance(r, (int, float)) and not isinstance(r, bool) and math.isfinite(r)


class Controller:
    """LSTM policy over a search space, trained by REINFORCE from asynchronous rewards."""

    def __init__(self, space: SearchSpace, **options: Any) -> None:
        self.space = space
        self.options = ControllerOptions.create(**options)
        o = self.options
        with torch.random.fork_rng(devices=[]):       # seeded init, global RNG untouched
            torch.manual_seed(o.seed)
            self.policy = Policy([len(s.choices) for s in space.slots],
                                 PolicyConfig(o.hidden_size, o.num_layers, o.temperature, o.tanh_c))
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=o.lr)
        self.rng = torch.Generator().manual_seed(o.seed)
        self.baseline: float | None = None
        self.reward_var = 0.0
        self._queue: list[tuple[list[tuple[int, int]], float]] = []
        self._elite: list[tuple[list[tuple[int, int]], float]] = []    # best first, no repeats
        self.stats: dict[str, float] = {"asked": 0, "told": 0, "failed": 0, "updates": 0,
                                        "baseline": float("nan"), "reward_std": float("nan"),
                                        "mean_reward": float("nan"), "entropy": float("nan"),
                                        "loss": float("nan")}

    # ---- ask ----------------------------------------------------------------------------------
    @torch.no_grad()
    def ask(self, n: int = 1) -> list[dict[str, Any]]:
        """Sample `n` configurations from the current policy."""
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"ask(n): n must be a positive integer, got {n!r}")
        chosen: list[dict[str, int]] = [{} for _ in range(n)]
        slots = self.space.slots

        def choose(i: int, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            active = torch.tensor([self.space.is_active(slots[i], c) for c in chosen])
            tokens = torch.multinomial(torch.softmax(logits, -1), 1, generator=self.rng).squeeze(1)
            tokens = tokens * active
            for row in active.nonzero().flatten().tolist():
                chosen[row][slots[i].key] = int(tokens[row])
            return tokens, active

        with _one_thread():
            self.policy.run(n, choose)
        self.stats["asked"] += n
        by_key = {s.key: s for s in slots}
        return [{k: by_key[k].choices[t] for k, t in c.items()} for c in chosen]

    # ---- tell -----------------------------------------------------------------------------------
    def tell(self, configs: Sequence[Mapping[str, Any]], rewards: Sequence[float | None]) -> None:
        """Report rewards (higher is better) for configs, in any order and batch size."""
        if isinstance(configs, Mapping):
            raise ValueError("tell(configs, rewards) takes a list of configs; wrap a single one in [ ]")
        if len(configs) != len(rewards):
            raise ValueError(f"tell: {len(configs)} configs but {len(rewards)} rewards")
        encoded = [self.space.encode_slots(c) for c in configs]    # validates every config first
        for pairs, r in zip(encoded, rewards):
            self.stats["told"] += 1
            if not _finite(r):
                self.stats["failed"] += 1
                continue
            self._queue.append((pairs, float(r)))
            self._remember(pairs, float(r))
        while len(self._queue) >= self.options.batch_size:
            batch = self._queue[: self.options.batch_size]
            del self._queue[: self.options.batch_size]
            with _one_thread():
                self._update(batch)

    def _remember(self, pairs: list[tuple[int, int]], reward: float) -> None:
        """Priority-queue memory of the best configs (Abolafia et al. 2018, PQT)."""
        k = self.options.elite_size
        if not k or pairs in (p for p, _ in self._elite):
            return
        self._elite.append((pairs, reward))
        self._elite.sort(key=lambda e: -e[1])
        del self._elite[k:]

    def _advantages(self, rewards: list[float]) -> list[float]:
        """EMA baseline and std, updated reward by reward in arrival order."""
        o, adv = self.options, []
        for r in rewards:
            if self.baseline is None:
                self.baseline = r
            diff = r - self.baseline
            self.reward_var = o.baseline_decay * self.reward_var + (1 - o.baseline_decay) * diff * diff
            a = diff / (math.sqrt(self.reward_var) + 1e-8) if o.normalize else diff
            adv.append(max(-o.adv_clip, min(o.adv_clip, a)))
            self.baseline = o.baseline_decay * self.baseline + (1 - o.baseline_decay) * r
        return adv

    def _tensors(self, encoded: Sequence[Sequence[tuple[int, int]]]) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = torch.zeros(len(encoded), len(self.space.slots), dtype=torch.long)
        active = torch.zeros_like(tokens, dtype=torch.bool)
        for row, pairs in enumerate(encoded):
            for slot, tok in pairs:
                tokens[row, slot], active[row, slot] = tok, True
        return tokens, active

    def _update(self, batch: list[tuple[list[tuple[int, int]], float]]) -> None:
        rewards = [r for _, r in batch]
        adv = torch.tensor(self._advantages(rewards))
        tokens, active = self._tensors([p for p, _ in batch])
        logp, ent = self.policy.score(tokens, active)
        loss = -(logp * adv).mean() - self.options.entropy_weight * ent.mean()
        if self.options.elite_weight and self._elite:
            elite_logp, _ = self.policy.score(*self._tensors([p for p, _ in self._elite]))
            loss = loss - self.options.elite_weight * elite_logp.mean()
        self.optimizer.zero_grad()
        loss.backward()
        if self.options.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.policy.parameters(), self.options.grad_clip)
        self.optimizer.step()
        self.stats.update(updates=self.stats["updates"] + 1, baseline=self.baseline,
                          reward_std=math.sqrt(self.reward_var), mean_reward=sum(rewards) / len(rewards),
                          entropy=float(ent.detach().mean()), loss=float(loss.detach()))

    # ---- introspection ---------------------------------------------------------------------------
    @torch.no_grad()
    def log_prob(self, config: Mapping[str, Any]) -> float:
        """log p(config) under the current policy."""
        tokens, active = self._tensors([self.space.encode_slots(config)])
        return float(self.policy.score(tokens, active)[0][0])

    @torch.no_grad()
    def most_likely(self) -> tuple[dict[str, Any], list[dict[str, float]]]:
        """Greedy (argmax) configuration and each active slot's choice distribution along it."""
        chosen: dict[str, int] = {}
        dists: dict[str, dict[str, float]] = {}
        slots = self.space.slots

        def choose(i: int, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            on = self.space.is_active(slots[i], chosen)
            probs = torch.softmax(logits[0], -1)
            if on:
                chosen[slots[i].key] = int(probs.argmax())
                dists[slots[i].key] = {str(c): float(p) for c, p in zip(slots[i].choices, probs)}
            return probs.argmax().view(1) * on, torch.tensor([on])

        self.policy.run(1, choose)
        by_key = {s.key: s for s in slots}
        return {k: by_key[k].choices[t] for k, t in chosen.items()}, dists

    def choice_probabilities(self) -> dict[str, dict[str, float]]:
        """Per decision: the policy's distribution over its choices along the greedy path."""
        return self.most_likely()[1]

    def entropy(self, samples: int = 64) -> float:
        """Mean summed entropy of the policy over `samples` fresh sequences (own RNG)."""
        saved = self.rng.get_state()
        configs = self.ask(samples)
        self.rng.set_state(saved)
        self.stats["asked"] -= samples
        with torch.no_grad():
            tokens, active = self._tensors([self.space.encode_slots(c) for c in configs])
            return float(self.policy.score(tokens, active)[1].mean())

    # ---- state -----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: weights, optimiser, baseline, queue, RNG."""
        return {"version": 1, "space_keys": list(self.space.keys), "options": asdict(self.options),
                "policy": self.policy.state_dict(), "optimizer": self.optimizer.state_dict(),
                "rng": self.rng.get_state(), "baseline": self.baseline, "reward_var": self.reward_var,
                "queue": [(list(p), r) for p, r in self._queue], "stats": dict(self.stats),
                "elite": [(list(p), r) for p, r in self._elite]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if list(state.get("space_keys", [])) != list(self.space.keys):
            raise ValueError("controller state was saved for a different search space "
                             f"(keys {state.get('space_keys')} != {list(self.space.keys)})")
        if state["options"] != asdict(self.options):
            self.__init__(self.space, **state["options"])        # rebuild with the saved shape
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.set_state(state["rng"])
        self.baseline, self.reward_var = state["baseline"], state["reward_var"]
        self._queue = [([tuple(x) for x in p], r) for p, r in state["queue"]]
        self._elite = [([tuple(x) for x in p], r) for p, r in state.get("elite", [])]
        self.stats = dict(state["stats"])
