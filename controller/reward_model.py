"""A reward model fitted to the results so far: a Gaussian process on token overlap.

Two configs are similar by how many decisions they share: per slot, 1 for the same choice of
a categorical, a Gaussian of the grid distance for a numeric grid, 0 when the slot is active
in only one of them (`overlap`). The kernel is that overlap as a fraction of the slots, taken
linearly, to the second degree (pairwise interactions) or exponentially (the categorical
overlap kernel of CoCaBO, Ru et al. 2020). Targets are normal scores of the reward ranks, so
the model is blind to the metric's scale. It screens the policy's proposals by Thompson
sampling (Thompson 1933; Russo et al. 2018): one joint posterior draw over the candidates,
the argmax is proposed, so uncertain configs still get tried.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

from search_spaces import SearchSpace

from .memory import Pairs
from .shaping import normal_scores
from .update import encode

EXP_SCALE = 3.0       # "exp" kernel: exp(EXP_SCALE * (overlap - 1))
GRID_WIDTH = 0.5      # numeric grids: similarity exp(-(d / (GRID_WIDTH * (n - 1)))^2 / 2)


class RewardModel:
    """GP regression on configs as (slot, token) pairs; refitted from scratch by `fit`."""

    def __init__(self, space: SearchSpace, kernel: str, noise: float) -> None:
        sizes = [len(s.choices) for s in space.slots]
        self.offsets = [sum(sizes[:i]) for i in range(len(sizes))]
        self.vocab = sum(sizes)
        self.slots = len(sizes)
        self.kernel, self.noise = kernel, noise
        self.similarity = torch.zeros(self.vocab, self.vocab, dtype=torch.float64)
        for slot, off in zip(space.slots, self.offsets):
            n = len(slot.choices)
            idx = torch.arange(n, dtype=torch.float64)
            if slot.ordered and n > 1:
                d = (idx[:, None] - idx[None, :]) / (GRID_WIDTH * (n - 1))
                block = torch.exp(-0.5 * d * d)
            else:
                block = torch.eye(n, dtype=torch.float64)
            self.similarity[off:off + n, off:off + n] = block
        self.x: torch.Tensor | None = None
        self.alpha: torch.Tensor | None = None
        self.chol: torch.Tensor | None = None
        self.targets = torch.zeros(0, dtype=torch.float64)

    def onehot(self, configs: Sequence[Pairs]) -> torch.Tensor:
        """(N, vocab) 0/1 rows: a 1 at each active slot's token (one scatter over the encoded rows)."""
        tokens, active = encode(self.slots, configs)
        out = torch.zeros(len(configs), self.vocab, dtype=torch.float64)
        return out.scatter_(1, tokens + torch.tensor(self.offsets), active.to(torch.float64))

    def gram(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        overlap = (a @ self.similarity @ b.T) / self.slots
        if self.kernel == "linear":
            return overlap
        if self.kernel == "poly":
            return 0.5 * (overlap + overlap * overlap)
        return torch.exp(EXP_SCALE * (overlap - 1.0))

    def fit(self, configs: Sequence[Pairs], rewards: Sequence[float]) -> None:
        """Condition on the results: targets are the rewards' normal scores."""
        y = torch.tensor(normal_scores(rewards), dtype=torch.float64)
        self.targets = y
        self.x = self.onehot(configs)
        k = self.gram(self.x, self.x) + self.noise * torch.eye(len(configs), dtype=torch.float64)
        self.chol = torch.linalg.cholesky(k)
        self.alpha = torch.cholesky_solve(y[:, None], self.chol)[:, 0]

    def posterior(self, configs: Sequence[Pairs]) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean (M,) and covariance (M, M) of the latent reward at `configs`."""
        xs = self.onehot(configs)
        prior = self.gram(xs, xs)
        if self.x is None:
            return torch.zeros(len(configs), dtype=torch.float64), prior
        cross = self.gram(xs, self.x)                                # (M, N)
        mean = cross @ self.alpha
        v = torch.linalg.solve_triangular(self.chol, cross.T, upper=False)
        return mean, prior - v.T @ v

    def thompson(self, configs: Sequence[Pairs], draws: int, generator: torch.Generator) -> list[int]:
        """Indices of the argmax of `draws` joint posterior samples (distinct, in draw order)."""
        mean, cov = self.posterior(configs)
        m = len(configs)
        jitter = 1e-6 * torch.eye(m, dtype=torch.float64)
        chol = _safe_cholesky(cov + jitter)
        noise = torch.randn(m, draws, generator=generator, dtype=torch.float64)
        samples = mean[:, None] + chol @ noise                      # (M, draws)
        picked: list[int] = []
        for d in range(draws):
            order = torch.argsort(samples[:, d], descending=True).tolist()
            picked.append(next(i for i in order if i not in picked))
        return picked


def _safe_cholesky(cov: torch.Tensor) -> torch.Tensor:
    """Cholesky factor; adds jitter until the (numerically) PSD matrix factorises."""
    eye = torch.eye(cov.shape[0], dtype=cov.dtype)
    for power in range(-6, 1):
        chol, info = torch.linalg.cholesky_ex(cov + (10.0 ** power) * eye)
        if int(info) == 0:
            return chol
    return torch.diag(torch.sqrt(torch.clamp(torch.diagonal(cov), min=0.0)) + math.sqrt(1e-6))
