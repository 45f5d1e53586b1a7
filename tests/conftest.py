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
