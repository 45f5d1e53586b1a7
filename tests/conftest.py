"""Shared fixtures."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    """Train on one intra-op thread: on a loaded 2-core machine two OpenMP threads ran torch
    ~40x slower than one (measured while other tests ran beside)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def ray_cluster(request):
    """A real local Ray for one test module, shut down after it; a module-level `RAY_CPUS`
    sets its size (default 2, the CI machine's cores)."""
    import ray

    from hyperseq.jobs.ray_env import local_ray_options
    ray.init(**local_ray_options(getattr(request.module, "RAY_CPUS", 2)))
    yield
    ray.shutdown()
