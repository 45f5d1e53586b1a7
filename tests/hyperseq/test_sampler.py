"""`ControllerSampler` beyond Optuna's contract: determinism, learning, shared RDB studies,
threads, pruned and failed trials, and the distribution <-> slot conversion."""
from __future__ import annotations

import copy
import json
import math
import os
import pickle
import random
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from controller import Controller
from hyperseq.sampler import ControllerSampler, _asking_copy, _history
from hyperseq.sampler_space import SlotMap, bins_for

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = {"x": FloatDistribution(-5.0, 5.0), "lr": FloatDistribution(1e-5, 1e-1, log=True),
         "n": IntDistribution(1, 64, log=True), "k": IntDistribution(0, 20, step=2),
         "cell": CategoricalDistribution(["rnn", "gru", "lstm"])}


@pytest.fixture(autouse=True)
def _one_thread(one_thread) -> None:
    """Tiny policy ops on one intra-op thread (tests/conftest.py)."""


def objective(trial: optuna.Trial) -> float:
    """Mixed space with one conditional parameter; minimum 0 at x=1, n=16, k=8, cell=lstm."""
    x = trial.suggest_float("x", -5.0, 5.0)
    n = trial.suggest_int("n", 1, 64, log=True)
    k = trial.suggest_int("k", 0, 20, step=2)
    cell = trial.suggest_categorical("cell", ["rnn", "gru", "lstm"])
    extra = trial.suggest_float("dropout", 0.0, 0.5) if cell == "lstm" else 0.0
    return abs(x - 1) + abs(math.log2(n / 16)) + abs(k - 8) / 4 + (cell != "lstm") * 2 + extra


def params_of(study: optuna.Study) -> list[dict[str, Any]]:
    return [t.params for t in study.trials]


def next_suggestions(*studies: optuna.Study) -> list[dict[str, Any]]:
    """Each study's relative sample for a new trial (same number in each), from its own sampler."""
    out = []
    for study in studies:
        number = study.ask().number
        trial = study.trials[number]                                 # the new trial, frozen
        space = study.sampler.infer_relative_search_space(study, trial)
        out.append(study.sampler.sample_relative(study, trial, space))
    assert len({study.trials[-1].number for study in studies}) == 1
    return out


# ---- determinism ------------------------------------------------------------------------------
def test_same_seed_same_trials_other_seed_differs() -> None:
    runs = []
    for seed in (7, 7, 8):
        study = optuna.create_study(sampler=ControllerSampler(seed=seed))
        study.optimize(objective, n_trials=24)
        runs.append(params_of(study))
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_cached_controller_matches_a_fresh_replay() -> None:
    """The sampler that built its controller trial by trial and a new one that replays the
    finished study from scratch suggest the same next trial."""
    study = optuna.create_study(sampler=ControllerSampler(seed=2))
    study.optimize(objective, n_trials=20)
    fresh = optuna.create_study(sampler=ControllerSampler(seed=2))
    fresh.add_trials(study.trials)
    suggest = next_suggestions(study, fresh)
    assert suggest[0] == suggest[1] and set(suggest[0]) == {"x", "n", "k", "cell"}


def _same(a: Any, b: Any) -> bool:
    """Deep equality over a controller's state: tensors, generators, modules, optimisers,
    containers and plain objects (NaN equals NaN, as in fresh stats)."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.shape == b.shape and bool(torch.equal(a, b))
    if isinstance(a, torch.Generator):
        return torch.equal(a.get_state(), b.get_state())
    if isinstance(a, (torch.nn.Module, torch.optim.Optimizer)):
        return _same(a.state_dict(), b.state_dict())
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    if hasattr(a, "__dict__") and not isinstance(a, type):
        return type(a) is type(b) and _same(vars(a), vars(b))
    return a == b


def test_asking_leaves_the_told_controller_as_it_was_and_matches_a_deep_copy() -> None:
    """A trial's ask runs on a copy of the cached controller that shares its told configs and
    tensors: the cached controller (policy, optimiser, memory, model, RNG, stats, queue) must
    come out exactly as it went in, and the suggestion must equal that of a full deep copy
    asked with the same per-trial seed, at every stage of a study (startup, screening on)."""
    sampler = ControllerSampler(seed=4)
    study = optuna.create_study(sampler=sampler)
    for stop in (2, 8, 30):
        study.optimize(objective, n_trials=stop - len(study.trials))
        trial = study.ask()
        space = sampler.infer_relative_search_space(study, trial)
        first = sampler.sample_relative(study, trial, space)        # tells the new results
        ctrl = sampler._cache.ctrl
        before = copy.deepcopy(ctrl)
        again = sampler.sample_relative(study, trial, space)
        unchanged = sampler._cache.ctrl is ctrl and _same(vars(before), vars(ctrl))
        assert again == first and unchanged, stop
        for number in range(trial.number, trial.number + 3):
            seed = sampler._derived_seed(number, "ask")
            reference = copy.deepcopy(ctrl)
            reference.rng = torch.Generator().manual_seed(seed)
            with torch.inference_mode():
                asked = _asking_copy(ctrl, seed).ask(1)
            assert asked == reference.ask(1), (stop, number)
        unchanged = _same(vars(before), vars(ctrl))
        assert unchanged, stop
        study.tell(trial, state=TrialState.FAIL)


def test_suggestions_equal_an_in_order_retell() -> None:
    """Each suggestion of a 40-trial study (pruned and failed trials among them) equals what a
    bare controller gives when told the same results one by one in the same order and asked
    with that trial's seed: the sampler adds no state of its own between trials."""
    def noisy(trial: optuna.Trial) -> float:
        x, n = trial.suggest_float("x", -5.0, 5.0), trial.suggest_int("n", 1, 64, log=True)
        k = trial.suggest_int("k", 0, 20, step=2)
        cell = trial.suggest_categorical("cell", ["rnn", "gru", "lstm"])
        value = abs(x - 1) + abs(math.log2(n / 16)) + abs(k - 8) / 4 + (cell != "lstm") * 2
        if trial.number % 9 == 4:
            raise optuna.TrialPruned()
        return math.nan if trial.number % 11 == 6 else value

    sampler = ControllerSampler(seed=6)
    study = optuna.create_study(sampler=sampler)
    study.optimize(noisy, n_trials=40, catch=())
    space = {n: SPACE[n] for n in ("x", "n", "k", "cell")}
    slots = SlotMap.create(space, 8)
    ctrl = Controller(slots.space, seed=6)
    checked = 0
    for t in study.trials:
        if t.number >= 1:                        # n_startup_trials=1: trial 0 is independent
            asked = _asking_copy(ctrl, sampler._derived_seed(t.number, "ask")).ask(1)[0]
            assert slots.params_of(asked, sampler._rng(t.number, "bins")) == t.params, t.number
            checked += 1
        if t.state == TrialState.COMPLETE and math.isfinite(t.value):
            ctrl.tell([slots.config_of(t.params)], [-t.value])
    assert checked == 39 and sum(t.state != TrialState.COMPLETE for t in study.trials) >= 6


# ---- learning ---------------------------------------------------------------------------------
TARGET = {"a": "w", "b": "x", "c": "y", "d": "z", "e": "w", "f": "x"}


def needle(trial: optuna.Trial) -> float:
    """Six 4-way categorical choices, one right each, plus a float and a log int."""
    wrong = sum(trial.suggest_categorical(k, ["w", "x", "y", "z"]) != v for k, v in TARGET.items())
    x = trial.suggest_float("x", 0.0, 1.0)
    n = trial.suggest_int("n", 1, 64, log=True)
    return wrong + abs(x - 0.7) + abs(n - 16) / 16


@pytest.mark.slow
def test_learns_beats_random_search_median() -> None:
    """Best value after 80 trials, median over 3 seeds: the controller must reach less than
    half of random search's (random's median best is about 2.4 wrong choices; the optimum 0)."""
    def median_best(make) -> float:
        bests = []
        for seed in range(3):
            study = optuna.create_study(sampler=make(seed))
            study.optimize(needle, n_trials=80)
            bests.append(study.best_value)
        return statistics.median(bests)

    ours = median_best(lambda s: ControllerSampler(seed=s))
    rand = median_best(lambda s: optuna.samplers.RandomSampler(seed=s))
    assert ours < 0.5 * rand, (ours, rand)


# ---- storage, processes, threads --------------------------------------------------------------
def _suggest_in_other_process(url: str, name: str, cwd: Path) -> dict[str, Any]:
    """Load the study in a new Python process (this one's import path) and ask one trial."""
    code = ("import json, optuna; from hyperseq.sampler import ControllerSampler;"
            f"s = optuna.load_study(study_name={name!r}, storage={url!r}, sampler=ControllerSampler(seed=3));"
            "t = s.ask(); print(json.dumps({k: t.suggest_float(k, *r) for k, r in "
            "[('x', (-5.0, 5.0)), ('y', (0.0, 1.0))]}))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    out = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_rdb_study_shared_by_two_samplers_and_a_process(tmp_path: Path) -> None:
    """Two study objects on one sqlite study take turns; the next trial, suggested in another
    process, equals what a single in-memory replay of the same trials suggests."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    optuna.create_study(study_name="s", storage=url)
    studies = [optuna.load_study(study_name="s", storage=url, sampler=ControllerSampler(seed=3))
               for _ in range(2)]
    for i in range(14):
        study = studies[i % 2]
        trial = study.ask()
        x, y = trial.suggest_float("x", -5.0, 5.0), trial.suggest_float("y", 0.0, 1.0)
        if i == 5:
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, (x - 1) ** 2 + y)
    remote = _suggest_in_other_process(url, "s", tmp_path)
    replay = optuna.create_study(sampler=ControllerSampler(seed=3))
    replay.add_trials(studies[0].get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED)))
    trial = replay.ask()
    assert trial.number == 14
    assert {k: trial.suggest_float(k, *r) for k, r in [("x", (-5.0, 5.0)), ("y", (0.0, 1.0))]} == remote


def test_n_jobs_two_threads_then_replay() -> None:
    study = optuna.create_study(sampler=ControllerSampler(seed=0))
    study.optimize(objective, n_trials=24, n_jobs=2)
    assert len(study.trials) == 24 and all(t.state == TrialState.COMPLETE for t in study.trials)
    fresh = optuna.create_study(sampler=ControllerSampler(seed=0))
    fresh.add_trials(study.trials)
    suggest = next_suggestions(study, fresh)
    assert suggest[0] == suggest[1]


def test_pickles_without_its_lock_or_cache() -> None:
    sampler = ControllerSampler(seed=1)
    optuna.create_study(sampler=sampler).optimize(objective, n_trials=3)
    clone = pickle.loads(pickle.dumps(sampler))
    study = optuna.create_study(sampler=clone)
    study.optimize(objective, n_trials=3)
    assert len(study.trials) == 3


# ---- what is learned from ---------------------------------------------------------------------
def _study_with(extra: list[tuple[TrialState, float | None, dict[str, Any]]]) -> optuna.Study:
    """Trials 0-7 COMPLETE and fixed; trials 8.. as given (state, value, params)."""
    study = optuna.create_study(sampler=ControllerSampler(seed=5))
    rng = random.Random(0)
    dists = {"x": SPACE["x"], "cell": SPACE["cell"]}
    for _ in range(8):
        params = {"x": rng.uniform(-5, 5), "cell": rng.choice(["rnn", "gru", "lstm"])}
        study.add_trial(optuna.create_trial(params=params, distributions=dists, value=abs(params["x"])))
    for state, value, params in extra:
        study.add_trial(optuna.create_trial(params=params, distributions=dists, value=value, state=state))
    return study


def test_pruned_failed_and_non_finite_trials_teach_nothing() -> None:
    a = _study_with([(TrialState.PRUNED, None, {"x": 1.0, "cell": "rnn"}),
                     (TrialState.FAIL, None, {"x": 2.0, "cell": "gru"}),
                     (TrialState.COMPLETE, math.inf, {"x": 3.0, "cell": "lstm"})])
    b = _study_with([(TrialState.PRUNED, None, {"x": -4.0, "cell": "lstm"}),
                     (TrialState.FAIL, None, {"x": 0.5, "cell": "rnn"}),
                     (TrialState.COMPLETE, -math.inf, {"x": -1.0, "cell": "gru"})])
    suggested = []
    for study in (a, b):
        space = study.sampler.infer_relative_search_space(study, study.trials[-1])
        assert set(space) == {"x", "cell"}
        suggested.append(study.sampler.sample_relative(study, study.trials[-1], space))
        told = _history(study.get_trials(states=(TrialState.COMPLETE,)), space,
                        SlotMap.create(space, 8), study.directions)
        assert [number for number, _, _, _ in told] == list(range(8))
    assert suggested[0] == suggested[1]


def test_reward_follows_the_study_direction() -> None:
    for direction, sign in (("minimize", -1), ("maximize", 1)):
        study = optuna.create_study(direction=direction)
        study.add_trial(optuna.create_trial(params={"x": 1.0}, distributions={"x": SPACE["x"]}, value=2.0))
        space = {"x": SPACE["x"]}
        told = _history(study.trials, space, SlotMap.create(space, 8), study.directions)
        assert [r for _, _, r, _ in told] == [sign * 2.0]


# ---- distributions <-> slots ------------------------------------------------------------------
@pytest.mark.parametrize("dist", [*SPACE.values(), FloatDistribution(-10, 10, step=0.1),
                                  IntDistribution(-3, 3), IntDistribution(0, 10**9),
                                  IntDistribution(1, 100, log=True), FloatDistribution(2.0, 2.0),
                                  CategoricalDistribution([None, 1, "a", 2.5])])
def test_every_bin_draws_inside_itself(dist) -> None:
    bins, rng = bins_for(dist, 8), random.Random(0)
    assert 1 <= bins.count <= max(8, len(getattr(dist, "choices", ())))
    for token in range(bins.count):
        for _ in range(50):
            value = bins.draw(token, rng)
            assert dist._contains(dist.to_internal_repr(value))
            assert bins.bin_of(value) == token


def test_bins_are_ordinal_and_log_spaced() -> None:
    small = bins_for(IntDistribution(3, 9, step=2), 8)
    assert small.count == 4 and [small.draw(t, random.Random(0)) for t in range(4)] == [3, 5, 7, 9]
    log = bins_for(FloatDistribution(1e-4, 1.0, log=True), 4)
    assert [log.bin_of(v) for v in (1e-4, 2e-3, 2e-2, 0.5)] == [0, 1, 2, 3]
    ints = bins_for(IntDistribution(1, 1000, log=True), 8)
    assert ints.count == 8 and ints.bin_of(1) == 0 and ints.bin_of(1000) == 7 and ints.bin_of(30) < 5


def test_bad_options_are_value_errors() -> None:
    with pytest.raises(ValueError, match="hidden_sise"):
        ControllerSampler(hidden_sise=8)
    with pytest.raises(ValueError, match="n_bins"):
        ControllerSampler(n_bins=0)
    with pytest.raises(ValueError, match="n_startup_trials"):
        ControllerSampler(n_startup_trials=-1)
