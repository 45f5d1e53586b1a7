"""`ControllerSampler` on multi-objective and constrained studies, beyond Optuna's contract."""
from __future__ import annotations

import optuna
import pytest

from hyperseq.sampler import ControllerSampler

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(autouse=True)
def _one_thread(one_thread) -> None:
    """Tiny policy ops on one intra-op thread (tests/conftest.py)."""


def _two(trial: optuna.Trial) -> tuple[float, float]:
    x, y = trial.suggest_int("x", 0, 9), trial.suggest_categorical("c", ["a", "b", "c"])
    return float(x * x), float(x) + (2.0 if y == "b" else 0.0)


def test_a_multi_objective_study_tells_one_reward_per_objective_and_replays_alike():
    runs = []
    for _ in range(2):
        study = optuna.create_study(directions=["minimize", "maximize"], sampler=ControllerSampler(seed=4))
        study.optimize(_two, n_trials=25)
        runs.append([t.params for t in study.trials])
    assert runs[0] == runs[1]                                 # same seed, same history: same asks
    ctrl = study.sampler._cache.ctrl
    assert ctrl.objectives.dims == 2 and ctrl.stats["told"] == 24
    x9 = [v for k, v in ctrl.objectives.sums.items()]
    assert all(len(s) == 2 for s, _, _ in x9)


def _capped(trial: optuna.Trial) -> float:
    """Maximise a + b under a + b <= 29: the best feasible answers sit on the constraint."""
    a, b = trial.suggest_int("a", 0, 29), trial.suggest_int("b", 0, 29)
    trial.set_user_attr("load", a + b)
    return float(a + b)


def test_constraints_steer_the_controller_to_the_feasible_edge():
    def constraints(trial: optuna.trial.FrozenTrial) -> list[float]:
        return [trial.user_attrs["load"] - 29.0]

    def tail(sampler) -> tuple[int, int]:
        """Of the last 25 trials: how many are feasible within 3 of the edge, how many infeasible."""
        study = optuna.create_study(direction="maximize", sampler=sampler)
        study.optimize(_capped, n_trials=50)
        loads = [t.user_attrs["load"] for t in study.trials[-25:]]
        return sum(26 <= x <= 29 for x in loads), sum(x > 29 for x in loads)

    # one token per integer, so the edge is reachable exactly
    rnn = [tail(ControllerSampler(seed=s, constraints_func=constraints, n_bins=32)) for s in range(3)]
    rand = [tail(optuna.samplers.RandomSampler(seed=s)) for s in range(3)]
    assert sum(n for n, _ in rnn) > sum(n for n, _ in rand) + 15, (rnn, rand)
    assert sum(bad for _, bad in rnn) < sum(bad for _, bad in rand), (rnn, rand)
