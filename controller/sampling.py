"""Drawing proposals from the policy: deduplication, screening, and the exhausted space.

With dedup on, a proposal is never a config already tried (told, failed, warm-started) or
asked and not yet told: the policy redraws up to `max_retries` rounds; then uniform draws
take over; near exhaustion of an enumerable space the untried configs are listed and one is
drawn at random. If fewer untried configs remain than were asked for, `SpaceExhausted` is
raised and nothing is proposed. Only where the space is too large to list (more than
`ENUMERATE_LIMIT` configs) and every retry hit a tried config does a repeat go out; that
takes astronomically bad luck, and `stats["repeats"]` counts it.
"""
from __future__ import annotations

import random
from typing import Callable

import torch

from search_spaces import SearchSpace

from .memory import Memory, Pairs
from .policy import Policy
from .reward_model import RewardModel
from .settings import ControllerOptions

ENUMERATE_LIMIT = 100_000
SPREAD_POOL = 64          # uniform draws the space-filling first batch picks from
LOCAL_ELITES = 4          # `screen_local` moves start from this many best configs, in turn


class SpaceExhausted(RuntimeError):
    """Every configuration of the space was already tried (or fewer remain than asked for)."""

    def __init__(self, asked: int, remaining: int) -> None:
        super().__init__(f"search space exhausted: asked for {asked} new configs, {remaining} untried remain")
        self.asked, self.remaining = asked, remaining


def draw(policy: Policy, space: SearchSpace, n: int, generator: torch.Generator) -> list[Pairs]:
    """n sequences sampled from the policy, as (slot, token) pairs."""
    chosen: list[dict[str, int]] = [{} for _ in range(n)]
    picked: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    slots = space.slots

    def choose(i: int, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        slot = slots[i]
        tokens = torch.multinomial(torch.softmax(logits, -1), 1, generator=generator).squeeze(1)
        on, active = None, None                  # unconditional: every row takes its token
        if slot.requires:
            on = [space.is_active(slot, c) for c in chosen]
            active = torch.tensor(on)
            tokens = tokens * active
        for row, tok in enumerate(tokens.tolist()):
            if on is None or on[row]:
                chosen[row][slot.key] = tok
                picked[row].append((i, tok))
        return tokens, active

    with torch.no_grad():
        policy.walk(n, choose)
    return [tuple(p) for p in picked]


def uniform(space: SearchSpace, rng: random.Random) -> Pairs:
    """One config drawn uniformly as `SearchSpace.sample` draws it, as (slot, token) pairs."""
    return space.sample_tokens(rng)


def neighbour(space: SearchSpace, key: Pairs, rng: random.Random) -> Pairs:
    """`key` with one active decision changed: to an adjacent value on an ordered scale (one
    or two steps), to any other value otherwise; decisions it switches on are drawn uniformly."""
    tokens = dict(key)
    movable = [i for i, _ in key if len(space.slots[i].choices) > 1]
    if not movable:
        return key
    i = rng.choice(movable)
    slot, tok = space.slots[i], tokens[i]
    size = len(slot.choices)
    if slot.ordered:
        step = rng.choice((-2, -1, -1, 1, 1, 2))
        new = min(size - 1, max(0, tok + step))
        if new == tok:                                  # at an end: one step the other way
            back = tok - (1 if step > 0 else -1)
            new = back if 0 <= back < size else tok
    else:
        new = rng.choice([t for t in range(size) if t != tok])
    tokens[i] = new
    return space.sample_tokens(rng, tokens)


def decode(space: SearchSpace, pairs: Pairs) -> dict:
    return {space.slots[s].key: space.slots[s].choices[t] for s, t in pairs}


class QuickPool:
    """Policy samples drawn `size` at a time for `Controller.ask_quick`; the pool is dropped
    when the policy changes (its update count), so every sample is from the current policy."""

    def __init__(self, space: SearchSpace, dedup: bool, size: int = 64) -> None:
        self.space, self.dedup, self.size = space, dedup, size
        self.keys: list[Pairs] = []
        self.version = -1

    def take(self, policy: Policy, memory: Memory, generator: torch.Generator,
             version: int) -> Pairs | None:
        """An untried sample (any sample without dedup); None if a fresh pool has none."""
        if version != self.version:
            self.keys, self.version = [], version
        for _ in range(2):
            if not self.keys:
                self.keys = draw(policy, self.space, self.size, generator)
            while self.keys:
                key = self.keys.pop()
                if not (self.dedup and memory.is_used(key)):
                    return key
        return None


class Proposer:
    """Turns policy draws into `n` proposals (distinct and untried when `dedup`)."""

    def __init__(self, space: SearchSpace, options: ControllerOptions) -> None:
        self.space, self.o = space, options
        self._size: int | None = None
        self.repeats = 0

    @property
    def size(self) -> int:
        if self._size is None:
            self._size = self.space.size()
        return self._size

    def propose(self, n: int, policy: Policy, memory: Memory, model: RewardModel | None,
                generator: torch.Generator) -> tuple[list[Pairs], list[Pairs]]:
        """(proposals, told configs the policy redrew on the way)."""
        per_round = max(n, self.o.screen if model is not None else n)
        extra = self.extra(memory, generator) if model is not None else []   # screened once, in round 0
        sample: Callable[[int], list[Pairs]] = lambda k: draw(policy, self.space, k, generator)
        if not self.o.dedup:
            pool = sample(per_round) + extra
            return self._pick(pool, n, model, generator), []
        remaining = self.size - memory.used_count()
        if remaining < n:
            raise SpaceExhausted(n, remaining)
        pool, seen, echoes = [], set(), []
        for round_ in range(1 + self.o.max_retries):
            for key in sample(per_round) + (extra if round_ == 0 else []):
                if key in seen or memory.is_used(key):
                    if key in memory.sums and len(echoes) < n:
                        echoes.append(key)
                    continue
                seen.add(key)
                pool.append(key)
            if len(pool) >= n:
                break
        if len(pool) < n:
            pool += self._fallback(n - len(pool), memory, seen, generator)
        return self._pick(pool, n, model, generator), echoes

    def _pick(self, pool: list[Pairs], n: int, model: RewardModel | None,
              generator: torch.Generator) -> list[Pairs]:
        if model is None or len(pool) <= n:
            return pool[:n]
        return [pool[i] for i in model.thompson(pool, n, generator)]

    def spreads(self, n: int, model: RewardModel | None, memory: Memory) -> bool:
        """Whether an ask of n is part of the space-filling first batch (before screening)."""
        o = self.o
        return (o.space_filling and model is not None and o.dedup and len(memory.sums) < o.screen_start
                and self.size - memory.used_count() >= n)

    def spread(self, n: int, model: RewardModel, memory: Memory, generator: torch.Generator) -> list[Pairs]:
        """n untried configs far from every config tried or pending (greedy maximin on the
        reward model's overlap among `SPREAD_POOL` uniform draws): a space-filling first batch,
        before there are results to screen by."""
        rng = random.Random(int(torch.randint(2 ** 62, (1,), generator=generator)))
        seen: set[Pairs] = set()
        pool = []
        for _ in range(SPREAD_POOL):
            key = uniform(self.space, rng)
            if key not in seen and not memory.is_used(key):
                seen.add(key)
                pool.append(key)
        if len(pool) < n:
            return pool + self._fallback(n - len(pool), memory, seen, generator)
        used = list(memory.tried) + list(memory.pending)
        cand = model.onehot(pool)
        near = torch.zeros(len(pool), dtype=torch.float64)       # largest overlap with a used config
        if used:
            near = (cand @ model.similarity @ model.onehot(used).T).max(1).values
        picked: list[int] = []
        for _ in range(n):
            i = int(torch.argmin(near + torch.rand(len(pool), generator=generator, dtype=torch.float64) * 1e-9))
            picked.append(i)
            near = torch.maximum(near, (cand @ model.similarity @ cand[i]))
            near[i] = float("inf")
        return [pool[i] for i in picked]

    def extra(self, memory: Memory, generator: torch.Generator) -> list[Pairs]:
        """Screening candidates beside the policy's: uniform draws (`screen_random`) and
        one-decision moves from the best configs so far (`screen_local`)."""
        rng = random.Random(int(torch.randint(2 ** 62, (1,), generator=generator)))
        out = [uniform(self.space, rng) for _ in range(self.o.screen_random)]
        elites = [k for k, _ in memory.elites(LOCAL_ELITES)]
        if elites:
            out += [neighbour(self.space, elites[i % len(elites)], rng) for i in range(self.o.screen_local)]
        return out

    def _fallback(self, k: int, memory: Memory, seen: set, generator: torch.Generator) -> list[Pairs]:
        """k untried configs drawn uniformly: by rejection, then by listing what is left."""
        rng = random.Random(int(torch.randint(2 ** 62, (1,), generator=generator)))
        out: list[Pairs] = []
        for _ in range(64 * k + 64):
            key = uniform(self.space, rng)
            if key not in seen and not memory.is_used(key):
                seen.add(key)
                out.append(key)
                if len(out) == k:
                    return out
        if self.size <= ENUMERATE_LIMIT:
            left = [key for key in (tuple(self.space.encode_slots(c)) for c in self.space)
                    if key not in seen and not memory.is_used(key)]
            return out + rng.sample(left, k - len(out))
        extra = [uniform(self.space, rng) for _ in range(k - len(out))]
        self.repeats += len(extra)
        return out + extra
