"""What the controller remembers between asks: told results, pending asks, elites.

A config is keyed by its (slot, token) pairs. `Memory` knows which configs were already tried
(told, warm-started or asked and not yet told) so that `ask` never spends a trial twice, and
the mean reward of every distinct config told (the history the policy is replayed on and the
elite priority queue of PQT, Abolafia et al. 2018). Plain Python data only, so
`state_dict` stays loadable with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

Pairs = tuple[tuple[int, int], ...]


def as_pairs(pairs: Iterable[Sequence[int]]) -> Pairs:
    return tuple((int(s), int(t)) for s, t in pairs)


class Memory:
    """Told rewards per distinct config (arrival order), tried configs, pending asks."""

    def __init__(self) -> None:
        self.sums: dict[Pairs, list[float]] = {}    # config -> [reward sum, count] (finite only)
        self.tried: set[Pairs] = set()              # told (failed too) or warm-started
        self.pending: dict[Pairs, int] = {}         # asked, not yet told -> how many times

    # ---- bookkeeping ------------------------------------------------------------------------
    def asked(self, key: Pairs) -> None:
        self.pending[key] = self.pending.get(key, 0) + 1

    def told(self, key: Pairs, reward: float | None) -> None:
        """Record one result (None = failed: tried, but no reward to learn from)."""
        self.tried.add(key)
        left = self.pending.get(key, 0) - 1
        if left > 0:
            self.pending[key] = left
        else:
            self.pending.pop(key, None)
        if reward is not None:
            total = self.sums.setdefault(key, [0.0, 0])
            total[0] += reward
            total[1] += 1

    def is_used(self, key: Pairs) -> bool:
        return key in self.tried or key in self.pending

    def used_count(self) -> int:
        return len(self.tried) + sum(1 for k in self.pending if k not in self.tried)

    def reward_of(self, key: Pairs) -> float | None:
        total = self.sums.get(key)
        return None if total is None else total[0] / total[1]

    # ---- views ------------------------------------------------------------------------------
    def history(self) -> tuple[list[Pairs], list[float]]:
        """Every distinct config with a finite reward and its mean reward, in first-told order."""
        return list(self.sums), [s / n for s, n in self.sums.values()]

    def elites(self, k: int) -> list[tuple[Pairs, float]]:
        """The k best distinct configs by mean reward, best first (ties: first told first)."""
        keys, rewards = self.history()
        order = sorted(range(len(keys)), key=lambda i: -rewards[i])[:k]
        return [(keys[i], rewards[i]) for i in order]

    # ---- state ------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"sums": [[list(map(list, k)), v[0], v[1]] for k, v in self.sums.items()],
                "tried": [list(map(list, k)) for k in self.tried],
                "pending": [[list(map(list, k)), n] for k, n in self.pending.items()]}

    def load(self, state: Mapping[str, Any]) -> None:
        self.sums = {as_pairs(k): [float(s), int(n)] for k, s, n in state.get("sums", [])}
        self.tried = {as_pairs(k) for k in state.get("tried", [])}
        self.pending = {as_pairs(k): int(n) for k, n in state.get("pending", [])}
