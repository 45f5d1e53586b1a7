"""The MLflow store (`hyperseq.tracking.mlflow_store`) against a real sqlite store in a temp dir (no Ray)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from hyperseq.tracking import tags as T
from hyperseq.tracking.mlflow_store import trial_config
from hyperseq.tracking import store
from hyperseq.tracking.store import default_tracking_uri, open_store
from hyperseq.tracking.writer import BackgroundWriter


@pytest.fixture(scope="module")
def uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"


def test_store_is_not_created_by_reads(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'none.db'}"
    assert not open_store(uri).exists()
    assert open_store(uri).job_runs() == [] and open_store(uri).experiment_id() is None
    assert not (tmp_path / "none.db").exists()


def test_parent_and_child_runs(uri: str) -> None:
    parent, exp = open_store(uri).start_job("job-a", {T.TAG_METRIC: "val_loss"}, {"trials": 2})
    assert open_store(uri).ensure() == exp                       # idempotent
    location = open_store(uri).client.get_experiment(exp).artifact_location
    assert location.endswith("mlartifacts") and Path(uri[len("sqlite:///"):]).parent.as_uri() in location

    child = open_store(uri).open_child(exp, parent, "job-a", "t_00001", {"lr": 0.01, "cell": "gru"})
    child.log_epoch({"epoch": 1, "val_loss": 2.0, "diverged": False, "note": "x"}, step=1)
    child.log_epoch({"epoch": 2, "val_loss": math.inf, "reward": 0.0}, step=2)   # inf is skipped
    child.finish("FINISHED")

    [run] = open_store(uri).trial_runs(parent)
    assert run.info.status == "FINISHED"
    assert run.data.params == {"lr": "0.01", "cell": "gru"}
    assert trial_config(run) == {"lr": 0.01, "cell": "gru"}          # typed
    history = open_store(uri).client.get_metric_history(run.info.run_id, "val_loss")
    assert [(m.step, m.value) for m in history] == [(1, 2.0)]
    assert run.data.metrics["diverged"] == 0.0 and "note" not in run.data.metrics
    [job] = open_store(uri).job_runs("job-a")
    assert job.info.run_id == parent and job.data.tags[T.TAG_KIND] == "job"


def test_child_without_epochs_still_has_params(uri: str) -> None:
    parent, exp = open_store(uri).start_job("job-b", {}, {})
    child = open_store(uri).open_child(exp, parent, "job-b", "t1", {"a": 1})
    child.finish("FAILED", {T.TAG_ERROR: "boom"})
    run = open_store(uri).client.get_run(child.run_id)
    assert run.info.status == "FAILED" and run.data.params == {"a": "1"}
    assert run.data.tags[T.TAG_ERROR] == "boom"


@pytest.mark.slow
def test_background_writer_drains_in_order_and_stops_at_a_failed_write(uri: str) -> None:
    """Writes run in order; the first that fails is reported (`failure`, for the job to stop on)
    and the writes after it are skipped: the job's resume records them from Tune's state."""
    parent, _ = open_store(uri).start_job("job-c", {}, {})
    writer = BackgroundWriter()
    writer.submit(lambda: 1)                                        # not picklable: skipped
    for step in range(5):
        writer.submit(store.log_metric_steps, uri, parent, [({"best_reward": step / 10}, step)])
    assert writer.flush() and writer.failure is None
    writer.submit(store.set_status, uri, "no-such-run", "FINISHED")   # fails
    writer.submit(store.set_status, uri, parent, "FINISHED")         # skipped
    assert not writer.flush()                                       # returns at the failure
    assert writer.failure and "no-such-run" in writer.failure and "\n" not in writer.failure
    writer.close()
    writer.close()                                                  # idempotent
    history = open_store(uri).client.get_metric_history(parent, "best_reward")
    assert [m.step for m in history] == list(range(5))
    assert open_store(uri).client.get_run(parent).info.status == "RUNNING"
    with pytest.raises(RuntimeError, match="closed"):
        writer.submit(store.log_metric_steps, uri, parent, [({}, 0)])


@pytest.mark.parametrize("user, expected", [({}, "MLFLOW_DISABLE_TELEMETRY=true"),
                                            ({"MLFLOW_DISABLE_TELEMETRY": "false"}, "MLFLOW_DISABLE_TELEMETRY=false"),
                                            ({"DO_NOT_TRACK": "false"}, None)])
def test_the_writer_runs_without_mlflow_telemetry_unless_the_user_chose(
        monkeypatch: pytest.MonkeyPatch, user: dict[str, str], expected: str | None) -> None:
    for name in ("MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK"):
        monkeypatch.delenv(name, raising=False)
    for name, value in user.items():
        monkeypatch.setenv(name, value)
    writer = BackgroundWriter()
    try:
        env = Path(f"/proc/{writer._proc.pid}/environ").read_bytes().decode().split("\0")
    finally:
        writer.close()
    found = [e for e in env if e.startswith("MLFLOW_DISABLE_TELEMETRY=")]
    assert found == ([expected] if expected else [])


def test_default_uri_uses_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://example:5000")
    assert default_tracking_uri() == "http://example:5000"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert default_tracking_uri().startswith("sqlite:///") and default_tracking_uri().endswith("mlflow.db")


def _start_job_at(uri: str, name: str, go: Any) -> str:
    """In a fresh process (imports done): meet the other one, then start a job on a new store."""
    go.wait(120)
    open_store(uri).start_job(name, {}, {"trials": 1})
    return name


@pytest.mark.slow
def test_drivers_creating_one_sqlite_store_at_once_both_succeed(tmp_path: Path) -> None:
    """Two processes that start a job on the same new sqlite store at the same moment: MLflow's
    table creation is serialised by a lock file beside the db (unlocked, one crashes with a
    duplicate column or a failed alembic migration)."""
    import multiprocessing as mp
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager, ctx.Pool(2) as pool:
        for attempt in range(2):
            uri = f"sqlite:///{tmp_path / f'race{attempt}.db'}"
            go = manager.Barrier(2)
            pending = [pool.apply_async(_start_job_at, (uri, f"job{i}", go)) for i in range(2)]
            assert sorted(p.get(120) for p in pending) == ["job0", "job1"]
            runs = open_store(uri).job_runs()
            assert sorted(r.data.tags[T.TAG_JOB] for r in runs) == ["job0", "job1"]
            assert len({r.info.experiment_id for r in runs}) == 1
