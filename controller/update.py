"""One policy update: REINFORCE, or PPO's clipped surrogate over several epochs.

    loss = -mean(surrogate(logp, adv)) - entropy_weight * mean(entropy)
           - elite_weight * mean(log p(elite))

With one epoch the surrogate is REINFORCE's log p * adv (Williams 1992; NAS-RL). With more,
it is PPO's min(ratio * adv, clip(ratio, 1 +- eps) * adv) against the policy as it was before
the update (Schulman et al. 2017), which lets one set of results be reused for several steps
without the policy running away from them: the Neural Optimizer Search controller (Bello et
al. 2017) and NNI's PPO tuner train the same way. The elite term is priority-queue training
(Abolafia et al. 2018).
"""
from __future__ import annotations

import functools
from array import array
from dataclasses import dataclass

import torch

from .policy import Policy
from .settings import ControllerOptions


@dataclass
class Batch:
    tokens: torch.Tensor      # (B, S) token per slot (0 where inactive)
    active: torch.Tensor      # (B, S) bool
    adv: torch.Tensor         # (B,) advantages
    elites: int               # the last `elites` rows are elites (advantage ignored)


def encode(slots: int, encoded: list) -> tuple[torch.Tensor, torch.Tensor]:
    """(slot, token) pair lists -> tokens (B, S) and active mask (B, S).

    Each distinct config's row is packed to bytes once (`_row`); a batch is one join and one
    buffer read, not a nested list for `torch.tensor` to walk element by element."""
    rows = [_row(slots, pairs if isinstance(pairs, tuple) else tuple(map(tuple, pairs))) for pairs in encoded]
    if not rows:
        return torch.zeros(0, slots, dtype=torch.long), torch.zeros(0, slots, dtype=torch.bool)
    tokens = torch.frombuffer(bytearray(b"".join(r[0] for r in rows)), dtype=torch.long)
    active = torch.frombuffer(bytearray(b"".join(r[1] for r in rows)), dtype=torch.bool)
    return tokens.reshape(len(rows), slots), active.reshape(len(rows), slots)


@functools.lru_cache(maxsize=65536)
def _row(slots: int, pairs: tuple) -> tuple[bytes, bytes]:
    tokens, active = [0] * slots, [False] * slots
    for slot, tok in pairs:
        tokens[slot], active[slot] = tok, True
    return array("q", tokens).tobytes(), bytes(active)


def step(policy: Policy, optimizer: torch.optim.Optimizer, batch: Batch,
         o: ControllerOptions) -> tuple[float, float]:
    """Take `o.ppo_epochs` gradient steps on `batch`; returns the last (loss, mean entropy)."""
    n = batch.tokens.shape[0] - batch.elites
    old = None
    loss = ent = torch.zeros(())
    for epoch in range(o.ppo_epochs):
        logp, ent = policy.score(batch.tokens, batch.active)
        logp, elite_logp, ent = logp[:n], logp[n:], ent[:n]
        if o.ppo_epochs > 1 and epoch == 0:
            old = logp.detach()          # the policy before the update: the first epoch's pass
        if old is None:
            surrogate = logp * batch.adv
        else:
            ratio = torch.exp(logp - old)
            clipped = torch.clamp(ratio, 1 - o.ppo_clip, 1 + o.ppo_clip) if o.ppo_clip else ratio
            surrogate = torch.minimum(ratio * batch.adv, clipped * batch.adv)
        loss = -surrogate.mean() - o.entropy_weight * ent.mean()
        if batch.elites and o.elite_weight:
            loss = loss - o.elite_weight * elite_logp.mean()
        optimizer.zero_grad()
        loss.backward()
        if o.grad_clip:
            torch.nn.utils.clip_grad_norm_(policy.parameters(), o.grad_clip)
        optimizer.step()
    return float(loss.detach()), float(ent.detach().mean())
