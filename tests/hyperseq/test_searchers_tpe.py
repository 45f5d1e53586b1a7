"""The TPE searcher's own conversion of a `SearchSpace` into Optuna distributions."""
from __future__ import annotations

import optuna
import pytest

from hyperseq.searchers.tpe import TPESearcher, distributions, suggest
from search_spaces import SearchSpace

DEMO = {"name": "demo", "decisions": [
    {"name": "cell", "choices": ["rnn", "gru", "lstm"]},
    {"name": "layers", "choices": [1, 2]},
    {"name": "lr", "range": [1.0e-4, 1.0e-2], "steps": 5, "log": True},
    {"name": "attention", "choices": ["dot", "mlp"], "when": {"cell": "lstm"}},
    {"repeat": "layers", "decisions": [{"name": "hidden", "choices": [64, 128]}]}]}


@pytest.fixture(scope="module")
def demo() -> SearchSpace:
    return SearchSpace.from_dict(DEMO)


def test_optuna_define_by_run_matches_space(demo: SearchSpace) -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for _ in range(30):
        trial = study.ask()
        cfg = suggest(demo, trial)
        assert demo.validate(cfg) == cfg
        study.tell(trial, 0.0)
    # numeric grids are ordinal ints, categoricals are categorical
    assert isinstance(study.trials[0].distributions["lr"], optuna.distributions.IntDistribution)
    assert isinstance(study.trials[0].distributions["cell"], optuna.distributions.CategoricalDistribution)


def test_distributions_match_what_suggest_records(demo: SearchSpace) -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(20):
        trial = study.ask()
        cfg = suggest(demo, trial)
        study.tell(trial, 0.0)
        params, dists = distributions(demo, cfg)
        assert params == study.trials[-1].params and dists == study.trials[-1].distributions


def test_results_it_did_not_propose_enter_the_study(demo: SearchSpace) -> None:
    s = TPESearcher(demo, seed=0)
    mine = s.ask()
    s.tell({"cell": "gru", "layers": 1, "lr": 1e-3, "hidden_1": 64}, 0.5)    # not proposed
    s.tell(mine, None)                                                       # a crash
    states = [t.state for t in s.study.trials]
    assert states.count(optuna.trial.TrialState.COMPLETE) == 1
    assert states.count(optuna.trial.TrialState.FAIL) == 1 and len(states) == 2
