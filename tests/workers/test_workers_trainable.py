"""The trainable's reward and failure rules, end to end on real Ray + MLflow with the no-op child.

- a diverged child: FINISHED, tagged, the finite floor reward (0.0) -> the controller learns;
- a crashing child: FAILED with the error, no reward -> the controller is told None;
- ASHA: stopped trials end FINISHED (tagged stopped_early) with the best reward they reached;
  no child run is left RUNNING.
"""
from __future__ import annotations

import pytest
from ray import tune

from hyperseq.jobs import JobFailed, run_search
from search_spaces import SearchSpace
from hyperseq.tracking import tags as T
from hyperseq.tracking.mlflow_store import trial_config
from hyperseq.tracking.store import default_tracking_uri, open_store
from workers.trainable import trial_seed


def _space(outcome: str) -> SearchSpace:
    return SearchSpace.from_dict({"name": f"noop_{outcome}", "task": "noop", "decisions": [
        {"name": "a", "choices": [1, 2, 3, 4, 5, 6]},
        {"name": "b", "choices": ["x", "y", "z"]},
        {"name": "outcome", "choices": [outcome]}]})


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, ray_cluster) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("trainable")
    yield {"tracking_uri": f"sqlite:///{tmp / 'mlflow.db'}", "storage": str(tmp / "ray")}


def _children(env: dict[str, str], name: str) -> tuple:
    [parent] = open_store(env["tracking_uri"]).job_runs(name)
    return parent, open_store(env["tracking_uri"]).trial_runs(parent.info.run_id)


@pytest.mark.slow
def test_diverged_children_get_the_floor(env) -> None:
    result = run_search(_space("diverge"), final_top=0, searcher="rnn", trials=4, epochs=2, **env)
    parent, children = _children(env, result.name)
    assert len(children) == 4 and result.best_reward == 0.0
    for run in children:
        assert run.info.status == "FAILED" and run.data.tags["hyperseq.diverged"] == "true"
        assert run.data.metrics["diverged"] == 1.0
        assert run.data.metrics["reward"] == 0.0 and T.TAG_STOPPED not in run.data.tags
    assert parent.data.metrics["trials_failed"] == 0     # crashed trials only: these gave a reward


@pytest.mark.slow
def test_crashing_children_fail_and_give_no_reward(env) -> None:
    with pytest.raises(JobFailed, match="all 2 search trials failed.*crashed on purpose"):
        run_search(_space("crash"), final_top=0, searcher="rnn", trials=2, epochs=1, max_failures=1,
                   name="crash_all", **env)
    parent, children = _children(env, "crash_all")
    assert len(children) == 4                                       # 2 trials x (1 try + 1 retry)
    assert sum(r.data.tags.get("hyperseq.retried") == "true" for r in children) == 2
    for run in children:
        assert run.info.status == "FAILED" and "crashed on purpose" in run.data.tags[T.TAG_ERROR]
        assert "reward" not in run.data.metrics
        config = trial_config(run)
        assert run.data.params == {"a": str(config["a"]), "b": config["b"], "outcome": "crash"}
    assert parent.data.metrics["trials_failed"] == 2 and parent.info.status == "FAILED"   # no answer


@pytest.mark.slow
def test_asha_stopped_trials_keep_their_best_reward(env) -> None:
    epochs = 3
    result = run_search(_space("ok"), final_top=0, searcher="random", trials=10, epochs=epochs, scheduler="asha",
                        seed=0, **env)
    parent, children = _children(env, result.name)
    assert len(children) == 10 and parent.data.params["scheduler"] == "asha"
    stopped = [r for r in children if r.data.tags.get(T.TAG_STOPPED) == "true"]
    assert stopped, "ASHA stopped no trial"
    c = open_store(env["tracking_uri"]).client
    for run in children:
        assert run.info.status == "FINISHED"                           # none left RUNNING
        steps = len(c.get_metric_history(run.info.run_id, "score"))
        assert run.data.metrics["fidelity"] == pytest.approx(steps / epochs)
        assert run.data.metrics["reward"] == run.data.metrics["best_score"] > 0
    for run in stopped:
        assert run.data.metrics["fidelity"] < 1.0


class _Boom(tune.Callback):
    def on_trial_result(self, *args, **kwargs) -> None:
        raise RuntimeError("boom in the driver")


@pytest.mark.slow
def test_a_job_that_raises_ends_failed_and_leaves_no_running_trial(env) -> None:
    with pytest.raises(Exception, match="boom"):            # a TuneError wrapping it
        run_search(_space("ok"), final_top=0, searcher="rnn", trials=2, epochs=2, name="boom", callbacks=[_Boom()], **env)
    parent, children = _children(env, "boom")
    assert parent.info.status == "FAILED"
    assert children and all(r.info.status != "RUNNING" for r in children)


def test_trial_seed_is_deterministic() -> None:
    assert trial_seed(0, "abc_00003") == 3 and trial_seed(1, "abc_00003") != 3
    assert trial_seed(0, "f00d") == trial_seed(0, "f00d")


@pytest.mark.slow
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA GPU")
def test_fractional_gpus_place_children_on_the_gpu(env) -> None:
    """Two trials with half a GPU each run at once, each on `cuda` (the GPU Ray granted)."""
    result = run_search(_space("ok"), final_top=0, searcher="random", trials=2, concurrency=2, epochs=1,
                        gpus_per_trial=0.5, **env)
    _, children = _children(env, result.name)
    assert len(children) == 2
    for run in children:
        assert run.data.tags["hyperseq.device"] == "cuda" and run.data.tags["hyperseq.gpu_ids"] != ""
