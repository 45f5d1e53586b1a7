"""Where a child trains: the GPU (or GPU share) Ray gave the trial, else the CPU.

Ray sets ``CUDA_VISIBLE_DEVICES`` for an actor to the GPU ids it was granted, so inside the
trial the granted GPU is ``cuda`` (index 0). Fractional shares (``gpu: 0.25``) give several
trials the same id: four small children then share one GPU, each in its own process.
"""
from __future__ import annotations

import os
from typing import Any


def trial_resources(cpus: float = 1, gpus: float = 0) -> dict[str, float]:
    """Resource request for `tune.with_resources` (fractional GPUs allowed)."""
    return {"cpu": cpus, "gpu": gpus} if gpus else {"cpu": cpus}


def granted_gpus() -> list[Any]:
    """GPU ids Ray granted to this worker ([] outside Ray or without a GPU share)."""
    try:
        import ray
        return list(ray.get_gpu_ids()) if ray.is_initialized() else []
    except Exception:                                   # noqa: BLE001 - not in a Ray worker
        return []


def trial_device() -> str:
    """'cuda' when this trial holds a GPU (share) and CUDA works, else 'cpu'.

    Never 'auto': a CPU-only trial on a GPU node must not grab a GPU it was not granted.
    """
    if granted_gpus() and os.environ.get("CUDA_VISIBLE_DEVICES", "") != "":
        import torch
        if torch.cuda.is_available():
            return "cuda"
    return "cpu"
