"""One contract over every registered tracking backend (`hyperseq.tracking.store.BACKENDS`),
each on a real local store in a temp dir: what the jobs, the recorder and the queries rely on."""
from __future__ import annotations

from pathlib import Path

import pytest

from hyperseq.tracking import tags as T
from hyperseq.tracking.mlflow_store import trial_config
from hyperseq.tracking.store import BACKENDS, Store, open_store

# a local URI per backend class, so every registered class is exercised
LOCAL_URIS = {"hyperseq.tracking.mlflow_store:MlflowStore": ["sqlite:///{tmp}/mlflow.db"]}


def _uris(tmp: Path) -> list[str]:
    return [u.format(tmp=tmp) for backend in sorted(set(BACKENDS.values())) for u in LOCAL_URIS[backend]]


def test_every_backend_has_a_local_store_here() -> None:
    assert set(BACKENDS.values()) <= set(LOCAL_URIS)


@pytest.fixture(params=range(len(_uris(Path("x")))))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    return open_store(_uris(tmp_path)[request.param])


def test_reads_never_create_the_store(store: Store) -> None:
    assert not store.exists()
    assert store.job_runs() == [] and store.job_runs("nope") == []
    assert not store.exists()


def test_job_and_trials_round_trip(store: Store, tmp_path: Path) -> None:
    exp = store.ensure()
    assert store.ensure() == exp and store.exists()
    parent, exp2 = store.start_job("j1", {T.TAG_SEARCHER: "rnn"}, {"trials": 2})
    assert exp2 == exp
    config = {"cell": "lstm", "lr": 0.01}
    child = store.open_child(exp, parent, "j1", "t_00001", config)
    child.log_epoch({"val_loss": 2.0, "reward": 0.1, "bad": float("nan")}, 1, {"hyperseq.device": "cpu"})
    child.log_epoch({"val_loss": 1.5, "reward": 0.2}, 2)
    child.finish("FINISHED")
    store.log_metric_steps(parent, [({"best_reward": 0.2}, 1), ({"best_reward": 0.3}, 2)])
    store.log_text(parent, "name: x\n", "space.yaml")
    [job] = store.job_runs("j1")
    assert job.info.run_id == parent and job.data.tags[T.TAG_SEARCHER] == "rnn"
    assert job.data.params["trials"] == "2" and job.data.metrics["best_reward"] == 0.3
    [trial] = store.trial_runs(parent)
    assert trial.info.status == "FINISHED" and trial_config(trial) == config
    assert trial.data.metrics == {"val_loss": 1.5, "reward": 0.2}
    assert trial.data.tags[T.TAG_TRIAL] == "t_00001" and trial.data.params["cell"] == "lstm"
    assert Path(store.download_artifact(parent, "space.yaml", str(tmp_path))).read_text() == "name: x\n"


def test_status_changes(store: Store) -> None:
    parent, exp = store.start_job("j2", {}, {})
    store.set_status(parent, "KILLED", {T.TAG_CLOSED_BY: "test"})
    assert store.get_run(parent).info.status == "KILLED"
    store.reopen(parent)
    assert store.get_run(parent).info.status == "RUNNING"
    child = store.open_child(exp, parent, "j2", "t1", {"a": 1})
    child.finish("FAILED", {T.TAG_ERROR: "x" * (T.MAX_TAG + 10)})    # long tags are cut, not refused
    [trial] = store.trial_runs(parent)
    assert trial.info.status == "FAILED" and len(trial.data.tags[T.TAG_ERROR]) == T.MAX_TAG
    assert trial.data.params == {"a": "1"}                            # params even without an epoch


def test_unknown_scheme_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no tracking backend for (URI )?scheme 'foo'"):
        open_store("foo://bar")
