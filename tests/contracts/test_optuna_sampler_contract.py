"""`ControllerSampler` held to Optuna's own sampler contract (optuna/testing/pytest_samplers.py).

The test cases are Optuna's, unmodified; this file only supplies the `sampler` fixture, as
Optuna's tests/samplers_tests do for its built-in samplers.
"""
from __future__ import annotations

from typing import Callable

import optuna
import pytest
from optuna.samplers import BaseSampler
from optuna.testing.pytest_samplers import (BasicSamplerTestCase, MultiObjectiveSamplerTestCase,
                                            RelativeSamplerTestCase)

from hyperseq.sampler import ControllerSampler

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(autouse=True)
def _one_thread(one_thread) -> None:
    """Tiny policy ops on one intra-op thread (tests/conftest.py)."""


class TestControllerSampler(BasicSamplerTestCase, RelativeSamplerTestCase, MultiObjectiveSamplerTestCase):
    @pytest.fixture
    def sampler(self) -> Callable[[], BaseSampler]:
        return lambda: ControllerSampler(seed=0)


class TestControllerSamplerWithFallback(BasicSamplerTestCase, MultiObjectiveSamplerTestCase):
    """The same contract with a fallback sampler for parameters outside the relative space."""

    @pytest.fixture
    def sampler(self) -> Callable[[], BaseSampler]:
        return lambda: ControllerSampler(seed=0, n_startup_trials=0,
                                         independent_sampler=optuna.samplers.RandomSampler(seed=0))
