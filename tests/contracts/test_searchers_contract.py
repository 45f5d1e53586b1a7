"""One contract suite over every registered searcher, like Optuna's sampler tests.

Same space (built-in no-op child, with a condition and a repeat block), same assertions.
Engine-free (ask/tell only): configs are valid, rewards, failures and configs the searcher did
not propose are accepted, the state survives `torch.save`/`torch.load(weights_only=True)`.
Through a real job: N trials complete, results arrive in MLflow, the job's best is the max
reward. Plus checks of the Ray adapter with the controller.
"""
from __future__ import annotations

import random
from pathlib import Path

import pytest

from hyperseq.jobs import run_search
import torch

from hyperseq import searchers
from hyperseq.searchers.tpe import OptunaSearcher
from hyperseq.searchers.tune import ControllerSearcher, TuneSearcher, controller_of
from search_spaces import SearchSpace
from hyperseq.tracking import tags as T
from hyperseq.tracking.mlflow_store import trial_config
from hyperseq.tracking.store import default_tracking_uri, open_store
from tasks.noop import score

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


@pytest.mark.slow
@pytest.mark.parametrize("searcher", searchers.names())
def test_searcher_contract_in_a_job(env, space: SearchSpace, searcher: str) -> None:
    result = run_search(space, final_top=0, searcher=searcher, trials=TRIALS, concurrency=2, epochs=2,
                        tracking_uri=env["uri"], storage=env["storage"], seed=3)
    assert result.status == "FINISHED"
    [parent] = open_store(env["uri"]).job_runs(result.name)
    children = open_store(env["uri"]).trial_runs(parent.info.run_id)
    assert len(children) == TRIALS                                   # N trials complete
    rewards = []
    for run in children:
        config = trial_config(run)
        assert space.validate(config) == config                      # valid for the space
        assert run.info.status == "FINISHED"
        assert run.data.metrics["reward"] == pytest.approx(score(config))   # noop: reward = score
        rewards.append(run.data.metrics["reward"])
    assert result.best_reward == pytest.approx(max(rewards))         # best is the max reward
    assert space.validate(result.best_config) == result.best_config
    assert result.trials["reward"].tolist() == sorted(rewards, reverse=True)
    assert parent.data.metrics["best_reward"] == pytest.approx(max(rewards))


@pytest.mark.parametrize("name", searchers.names())
def test_ask_tell_without_an_engine(space: SearchSpace, name: str) -> None:
    s = searchers.create(name, space, seed=0)
    asked = [s.ask() for _ in range(6)]
    for config in asked:
        assert space.validate(config) == config
    for config in asked[:4]:
        s.tell(config, score(config))
    s.tell(asked[4], None)                                           # a crash
    s.tell(space.sample(random.Random(1)), 0.9)                      # not proposed (off-policy)
    s.tell(asked[5], float("nan"))                                   # non-finite: a failure
    config = s.ask()                                                 # still proposes
    assert space.validate(config) == config


@pytest.mark.parametrize("name", searchers.names())
def test_state_round_trip_is_safe_and_continues(space: SearchSpace, name: str, tmp_path: Path) -> None:
    s = searchers.create(name, space, seed=4)
    for _ in range(6):
        config = s.ask()
        s.tell(config, score(config))
    torch.save(s.state_dict(), tmp_path / "state.pt")
    fresh = searchers.create(name, space, seed=99)
    fresh.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True))
    nxt = [fresh.ask() for _ in range(3)]
    assert all(space.validate(c) == c for c in nxt)
    if not isinstance(s, OptunaSearcher):                           # Optuna's rebuild their study
        assert nxt == [s.ask() for _ in range(3)]


def test_registry_and_controller_of(space: SearchSpace) -> None:
    assert searchers.names() == ("rnn", "random", "tpe", "gp")
    assert controller_of(TuneSearcher(searchers.create("random", space))) is None
    assert controller_of(ControllerSearcher(space)) is not None
    with pytest.raises(ValueError, match="unknown searcher 'grid'"):
        searchers.create("grid", space)


def test_controller_adapter_tells_rewards_and_failures(space: SearchSpace) -> None:
    s = ControllerSearcher(space, metric="reward", mode="max", batch_size=2)
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
    s = ControllerSearcher(space, metric="reward", mode="max", seed=5, batch_size=2)
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
