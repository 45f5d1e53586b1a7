"""Optimisation of the child tasks: the optimiser, the learning-rate schedule (`lr_schedule`,
`lr_horizon_s`) and the parameter count."""

from __future__ import annotations

import math
import time
from typing import Any

import torch
from torch import nn

COSINE_FLOOR = 0.1  # a cosine schedule ends at lr x this (nanoGPT's min_lr = lr / 10)


class LrSchedule:
    """The learning rate of each step. ``constant``: ``cfg.lr`` throughout. ``cosine``: from
    ``cfg.lr`` down to COSINE_FLOOR x lr along a half cosine (Loshchilov & Hutter 2017, no
    restarts; as nanoGPT decays to ``max_iters``), over the run's own budget: its
    epochs x steps_per_epoch steps, or ``lr_horizon_s`` seconds of wall time since the run
    started when that is set (a run cut by a deadline rather than a step count), then flat.

    Why a run needs one: with a constant rate a short run favours the highest learning rate
    and a long run a lower one (the short-horizon bias, Wu et al. 2018), so configs ranked
    after a few hundred steps are not the ones that win when trained long. Decaying to the end
    of whatever budget the run has makes every run finish annealed, so a short run ranks
    configs more nearly as they would finish."""

    def __init__(self, cfg: Any, steps: int, start: float) -> None:
        self.lr, self.cosine = cfg.lr, cfg.lr_schedule == "cosine"
        self.steps, self.seconds, self.start = steps, cfg.lr_horizon_s, start

    def __call__(self, step: int) -> float:
        """The rate for optimisation step ``step`` (0-based) of the run."""
        if not self.cosine:
            return self.lr
        if self.seconds > 0:
            done = (time.perf_counter() - self.start) / self.seconds
        else:
            done = step / max(1, self.steps)
        cos = 0.5 * (1.0 + math.cos(math.pi * min(1.0, done)))
        return self.lr * (COSINE_FLOOR + (1.0 - COSINE_FLOOR) * cos)


def make_optimizer(cfg: Any, params: Any) -> torch.optim.Optimizer:
    """The optimiser named by ``cfg.optimizer``."""
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
    return torch.optim.RMSprop(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def count_params(model: nn.Module) -> int:
    """Number of distinct trainable parameters (tied weights are counted once)."""
    unique = {id(p): p for p in model.parameters() if p.requires_grad}
    return sum(p.numel() for p in unique.values())
