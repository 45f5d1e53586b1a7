"""Ray Tune's searcher contract for `ControllerSearcher`, adapted from Ray's own
``python/ray/tune/tests/test_searchers.py``: invalid values (inf, -inf, NaN) with the searcher
bare and inside a `ConcurrencyLimiter`, metric/mode from the `TuneConfig`, a `param_space`
with unresolved domains refused, save/restore, reports after completion, a scheduler stop."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
from ray import cloudpickle, tune
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search import ConcurrencyLimiter

from hyperseq.searchers.tune import ControllerSearcher
from search_spaces import SearchSpace

cloudpickle.register_pickle_by_value(sys.modules[__name__])   # workers cannot import tests/

SPACE = {"name": "invalid", "decisions": [
    {"name": "report", "choices": [0.5, 1.0, 1.5, 2.0, 2.5, 3.5, 4.5]},
    {"name": "num", "choices": [4]},
    {"name": "pad", "choices": [0, 1, 2]}]}       # 21 configs: more than any test's samples


def invalid_objective(config: dict) -> None:
    """As Ray's `_invalid_objective`: inf above 4, -inf above 3, NaN above 2, else the value."""
    r = config["report"]
    value = float("inf") if r > 4 else float("-inf") if r > 3 else math.nan if r > 2 else float(r)
    tune.report({"_metric": value})


def steps_objective(config: dict) -> None:
    for i in range(1, 4):
        tune.report({"_metric": config["report"] * i})


@pytest.fixture(scope="module")
def space() -> SearchSpace:
    return SearchSpace.from_dict(SPACE)


@pytest.fixture(scope="module")
def ray_local(ray_cluster):
    yield


def _fit(searcher, tmp_path: Path, trainable=invalid_objective, samples: int = 12, **config) -> tune.ResultGrid:
    tuner = tune.Tuner(trainable, param_space=config.get("param_space", {}),
                       tune_config=tune.TuneConfig(search_alg=searcher, metric="_metric", mode="max",
                                                   num_samples=samples, scheduler=config.get("scheduler")),
                       run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0))
    return tuner.fit()


@pytest.mark.slow
@pytest.mark.parametrize("limited", [False, True])
def test_invalid_values(ray_local, space: SearchSpace, tmp_path: Path, limited: bool) -> None:
    searcher = ControllerSearcher(space, seed=3, batch_size=2)
    alg = ConcurrencyLimiter(searcher, max_concurrent=2) if limited else searcher
    grid = _fit(alg, tmp_path, param_space={"list": [1, 2, 3]})
    assert not grid.errors
    best = grid.get_best_result()
    assert best.config["report"] <= 2.0 and best.config["num"] == 4 and best.config["list"] == [1, 2, 3]
    stats = searcher.controller.stats
    assert stats["told"] == 12 and stats["failed"] == sum(r.config["report"] > 2 for r in grid)
    assert searcher.metric == "_metric" and searcher.mode == "max"      # taken from the TuneConfig


def test_unresolved_param_space_is_refused(ray_local, space: SearchSpace, tmp_path: Path) -> None:
    searcher = ConcurrencyLimiter(ControllerSearcher(space), max_concurrent=2)
    with pytest.raises(ValueError, match="unresolved"):
        _fit(searcher, tmp_path, param_space={"lr": tune.uniform(0, 1)})


@pytest.mark.slow
def test_scheduler_stop_tells_the_last_result(ray_local, space: SearchSpace, tmp_path: Path) -> None:
    searcher = ControllerSearcher(space, seed=1, batch_size=1)
    asha = ASHAScheduler(max_t=3, grace_period=1, reduction_factor=3)
    grid = _fit(searcher, tmp_path, trainable=steps_objective, samples=9, scheduler=asha)
    stopped = [r for r in grid if r.metrics["training_iteration"] < 3]
    assert stopped and searcher.controller.stats["told"] == 9 and not searcher.pending


def test_save_restore(space: SearchSpace, tmp_path: Path) -> None:
    """Ray's SaveRestoreCheckpointTest: a fresh searcher restores without set_search_properties."""
    path = str(tmp_path / "searcher.pt")
    s = ControllerSearcher(space)
    assert s.set_search_properties("metric", "max", {})
    s.suggest("1"), s.suggest("2"), s.suggest("not_completed")
    s.on_trial_result("1", {"training_iteration": 1, "metric": 1})
    s.on_trial_complete("1", {"training_iteration": 1, "metric": 1})
    s.save(path)
    fresh = ControllerSearcher(space)
    fresh.restore(path)
    fresh.on_trial_complete("2", {"training_iteration": 1, "metric": 1})
    fresh.suggest("3")
    fresh.on_trial_complete("3", {"training_iteration": 1, "metric": 1})
    assert "not_completed" in fresh.pending and fresh.controller.stats["told"] == 3


def test_report_too_often(space: SearchSpace) -> None:
    s = ControllerSearcher(space, metric="metric", mode="max")
    s.suggest("trial_1")
    s.on_trial_result("trial_1", {"training_iteration": 1, "metric": 1})
    s.on_trial_complete("trial_1", {"training_iteration": 2, "metric": 1})
    s.on_trial_result("trial_1", {"training_iteration": 3, "metric": 1})      # after complete: no error
    s.on_trial_complete("trial_1", {"training_iteration": 4, "metric": 1})    # twice: ignored
    assert s.controller.stats["told"] == 1


def test_metric_conflict_is_refused(space: SearchSpace) -> None:
    s = ControllerSearcher(space, metric="reward", mode="max")
    assert not s.set_search_properties("_metric", "max", {})
    assert s.set_search_properties("reward", None, {"constant": 1})
