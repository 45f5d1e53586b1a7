"""A job's trial actors start together (`workers.gather`), on a real local Ray.

Without it, a job whose trials are shorter than an actor's start-up ran every trial on its
first actor about half the time (Tune hands a cached actor to the trial whose own actor is
still starting): concurrency 1 while asking for 2.
"""
from __future__ import annotations

import time
from typing import Any

import ray
from ray import tune
from ray.experimental import internal_kv as kv

from hyperseq.jobs import run_search
from search_spaces import SearchSpace
from waiting import wait_for
from workers.gather import NAMESPACE, gather, release


@ray.remote(num_cpus=0)
def _meet(key: str, size: int, delay: float, timeout: float) -> float:
    time.sleep(delay)
    return gather(key, size, timeout)


def test_the_first_actor_waits_for_the_others(ray_cluster) -> None:
    early = _meet.remote("t-wait", 2, 0.0, 30.0)
    # the second starts once the first waits (two workers' start-ups on a loaded machine can
    # be seconds apart, more than the second's delay), and arrives 2 s after that
    wait_for(lambda: kv._internal_kv_list("t-wait/", namespace=NAMESPACE), 120,
             what="the first task to register under t-wait")
    late = _meet.remote("t-wait", 2, 2.0, 30.0)
    early, late = ray.get([early, late])
    assert 1.0 <= early < 30.0 and late < 1.0       # generous: early waits >= 2 s, late none


def test_a_missing_actor_costs_the_timeout_only(ray_cluster) -> None:
    # the timeout (0.5 s) plus a few GCS calls; 5 s leaves room for a loaded machine
    assert 0.5 <= ray.get(_meet.remote("t-alone", 3, 0.0, 0.5)) < 5.0


def test_once_per_process_and_key_and_released_after(ray_cluster) -> None:
    assert gather("t-once", 1) == 0.0 and gather("", 5) == 0.0           # nothing to wait for
    assert gather("t-once", 2, timeout=0.2) >= 0.2
    assert gather("t-once", 2, timeout=0.2) == 0.0                        # met before: no wait
    assert kv._internal_kv_list("t-once/", namespace=NAMESPACE)
    release("t-once")
    assert not kv._internal_kv_list("t-once/", namespace=NAMESPACE)


class _Actors(tune.Callback):
    """The Ray actors the job's trials started on."""

    def __init__(self) -> None:
        self.actors: set[Any] = set()

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.actors.add(trial.temporary_state.ray_actor._ray_actor_id)


def test_short_trials_run_on_as_many_actors_as_the_concurrency(ray_cluster, tmp_path) -> None:
    space = SearchSpace.from_dict({"name": "noop_gather", "task": "noop", "decisions": [
        {"name": "a", "choices": list(range(50))}]})
    probe = _Actors()
    result = run_search(space, searcher="random", trials=40, concurrency=2, epochs=1, final_top=0,
                        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", storage=str(tmp_path / "ray"),
                        callbacks=[probe])
    assert result.status == "FINISHED" and len(result.trials) == 40
    assert len(probe.actors) == 2
    assert not kv._internal_kv_list(f"{result.name}/", namespace=NAMESPACE)       # released
    from hyperseq.tracking.store import open_store
    runs = open_store(result.tracking_uri).trial_runs(result.parent_run_id)       # each trial's cost
    assert len(runs) == 40 and all(r.data.metrics["params"] == 0 and r.data.metrics["step_ms"] >= 0
                                   for r in runs)


def test_how_many_actors_start_together(ray_cluster, tmp_path) -> None:
    from hyperseq.jobs.ray_env import actors_together
    from hyperseq.jobs.spec import prepare_job
    space = SearchSpace.from_dict({"name": "noop_size", "task": "noop", "decisions": [
        {"name": "a", "choices": [1, 2]}]})
    common = {"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}", "storage": str(tmp_path / "ray")}
    wide = prepare_job(space, concurrency=8, trials=20, **common)
    key, size = actors_together(wide, "search", 20)
    assert size == 2 and key.startswith(f"{wide.name}/search/")       # the 2-CPU Ray holds 2
    assert actors_together(wide, "search", 1)[1] == 1                  # one trial left to run
    assert actors_together(wide, "final", 20)[0] != key                # a new key per experiment
    half = prepare_job(space, concurrency=8, trials=20, cpus_per_trial=0.5, **common)
    assert actors_together(half, "search", 20)[1] == 4
