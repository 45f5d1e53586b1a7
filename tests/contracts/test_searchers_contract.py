"""One contract suite over the three searchers (rnn, random, tpe), like Optuna's sampler tests.

Same space (built-in no-op child, with a condition and a repeat block), same assertions: every
trained config is valid for the space, N trials complete, results arrive in MLflow, and the
job's best is the max reward. Plus engine-free checks of the controller adapter.
"""
from __future__ import annotations

import random
from pathlib import Path

import pytest

from controller.jobs import run_search
from controller.searcher import SEARCHERS, ControllerSearcher, build_search, controller_of
from search_spaces import SearchSpace
from workers import tracking
from workers.noop import score

TRIALS = 8
SPEC = {
    "name": "contract",
    "task": "noop",
    "decisions": [
        {"name": "cell", "choices": ["gru", "lstm"]},
        {"name": "attention", "choices": ["dot", "mlp"], "when": {"cell": "lstm"}},
        {"name": "layers", "choices": [1, 2, 3]},
        {"repeat": "layers", "decisions": [{"name": "hidden", "choices": [32, 64, 128]}]},
        {"name": "lr", "range": [1e-4, 1e-1], "steps": 4, "log": True},
    ],
}


@pytest.fixture(scope="module")
def space() -> SearchSpace:
    return SearchSpace.from_dict(SPEC)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, ray_cluster) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("contract")
    yield {"uri": f"sqlite:///{tmp / 'mlflow.db'}", "storage": str(tmp / "ray")}


@pytest.mark.parametrize("searcher", SEARCHERS)
def test_searcher_contract(env, space: SearchSpace, searcher: str) -> None:
    result = run_search(space, searcher=searcher, trials=TRIALS, concurrency=2, epochs=2,
                        tracking_uri=env["uri"], storage=env["storage"], seed=3)
    assert result.status == "FINISHED"
    [parent] = tracking.job_runs(env["uri"], result.name)
    children = tracking.trial_runs(env["uri"], parent.info.run_id)
    assert len(children) == TRIALS                                   # N trials complete
    rewards = []
    for run in children:
        config = tracking.trial_config(run)
        assert space.validate(config) == config                      # valid for the space
        assert run.info.status == "FINISHED"
        assert run.data.metrics["reward"] == pytest.approx(score(config))   # noop: reward = score
        rewards.append(run.data.metrics["reward"])
    assert result.best_reward == pytest.approx(max(rewards))         # best is the max reward
    assert space.validate(result.best_config) == result.best_config
    assert result.trials["reward"].tolist() == sorted(rewards, reverse=True)
    assert parent.data.metrics["best_reward"] == pytest.approx(max(rewards))


@pytest.mark.parametrize("searcher", ["rnn", "tpe"])
def test_searcher_suggestions_are_valid_without_an_engine(space: SearchSpace, searcher: str) -> None:
    alg, param_space = build_search(searcher, space, concurrency=4, seed=0)
    assert param_space == {}
    inner = alg.searcher
    for i in range(6):
        config = inner.suggest(f"t{i}")
        assert space.validate(config) == config
        inner.on_trial_complete(f"t{i}", {"reward": score(config)})


def test_random_search_samples_every_slot_for_projection(space: SearchSpace) -> None:
    alg, param_space = build_search("random", space, concurrency=2, seed=0)
    assert set(param_space) == set(space.keys)
    assert controller_of(alg) is None


def test_controller_adapter_tells_rewards_and_failures(space: SearchSpace) -> None:
    s = ControllerSearcher(space, batch_size=2)
    a, b, c = (s.suggest(t) for t in ("a", "b", "c"))
    assert set(s.pending) == {"a", "b", "c"}
    s.on_trial_complete("a", {"reward": 0.5})
    s.on_trial_complete("b", None, error=True)                        # crash -> None
    s.on_trial_complete("c", {"reward": 0.7, "training_iteration": 1})   # ASHA-stopped: error=False
    s.on_trial_complete("zzz", {"reward": 1.0})                       # unknown trial: ignored
    stats = s.controller.stats
    assert stats["told"] == 3 and stats["failed"] == 1 and stats["updates"] == 1
    assert s.pending == {}


def test_controller_adapter_min_mode_negates(space: SearchSpace) -> None:
    s = ControllerSearcher(space, metric="loss", mode="min", batch_size=1)
    s.suggest("a")
    s.on_trial_complete("a", {"loss": 2.0})
    assert s.controller.stats["mean_reward"] == -2.0


def test_controller_adapter_save_restore_continues_exactly(space: SearchSpace, tmp_path: Path) -> None:
    rng = random.Random(0)
    s = ControllerSearcher(space, seed=5, batch_size=2)
    for i in range(5):
        s.suggest(f"t{i}")
    for i in range(4):
        s.on_trial_complete(f"t{i}", {"reward": rng.random()})
    s.save(str(tmp_path / "searcher.pkl"))
    after = [s.suggest(f"n{i}") for i in range(3)]

    fresh = ControllerSearcher(space, seed=99, batch_size=2)
    fresh.restore(str(tmp_path / "searcher.pkl"))
    assert set(fresh.pending) == {"t4"}                              # pending map restored
    assert [fresh.suggest(f"n{i}") for i in range(3)] == after       # same policy and RNG
    fresh.on_trial_complete("t4", {"reward": 0.3})
    assert fresh.controller.stats["told"] == 5


def test_unknown_searcher(space: SearchSpace) -> None:
    with pytest.raises(ValueError, match="grid"):
        build_search("grid", space, 2)
