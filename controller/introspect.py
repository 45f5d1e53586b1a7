"""What a `Controller`'s policy believes, read without changing it: the log-probability of a
config, the greedy config and each decision's distribution along it, the policy's entropy.
A mixin so the controller module stays about learning; it reads `space`, `policy` and `rng`."""
from __future__ import annotations

from typing import Any, Mapping

import torch

from . import update
from .policy import one_thread as _one_thread
from .sampling import draw


class Introspection:
    """Read-only views of the policy (mixed into `Controller`)."""

    space: Any
    policy: Any
    rng: torch.Generator

    @torch.no_grad()
    def log_prob(self, config: Mapping[str, Any]) -> float:
        """log p(config) under the current policy."""
        tokens, active = update.encode(len(self.space.slots), [self.space.encode_slots(config)])
        return float(self.policy.score(tokens, active)[0][0])

    @torch.no_grad()
    def most_likely(self) -> tuple[dict[str, Any], dict[str, dict[str, float]]]:
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

        with _one_thread():
            self.policy.run(1, choose)
        by_key = {s.key: s for s in slots}
        return {k: by_key[k].choices[t] for k, t in chosen.items()}, dists

    def choice_probabilities(self) -> dict[str, dict[str, float]]:
        """Per decision: the policy's distribution over its choices along the greedy path."""
        return self.most_likely()[1]

    @torch.no_grad()
    def entropy(self, samples: int = 64) -> float:
        """Mean summed entropy of the policy over `samples` fresh sequences (RNG left as it was)."""
        saved = self.rng.get_state()
        with _one_thread():
            keys = draw(self.policy, self.space, samples, self.rng)
            self.rng.set_state(saved)
            tokens, active = update.encode(len(self.space.slots), keys)
            return float(self.policy.score(tokens, active)[1].mean())
