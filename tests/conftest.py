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


# ---- the fast lane -----------------------------------------------------------------------------
# `pytest -m "not slow"` is the day-to-day lane; `pytest` (CI) runs everything. A test that grows
# past FAST_TEST_S in the fast lane is named at the end, so it can be marked slow before the
# lane as a whole gets slow.
FAST_TEST_S = 20.0
_took: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _took[report.nodeid] = _took.get(report.nodeid, 0.0) + report.duration    # setup + call + teardown


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if "not slow" not in (config.option.markexpr or ""):
        return
    over = sorted(((s, n) for n, s in _took.items() if s > FAST_TEST_S), reverse=True)
    if over:
        terminalreporter.section("fast-lane tests over %g s (mark them slow?)" % FAST_TEST_S)
        for seconds, nodeid in over:
            terminalreporter.write_line(f"{seconds:7.1f} s  {nodeid}")
