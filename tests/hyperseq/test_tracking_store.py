"""MLflow helpers (`workers.tracking`) against a real sqlite store in a temp dir (no Ray)."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from workers import tracking
from workers.writer import BackgroundWriter


@pytest.fixture(scope="module")
def uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"


def test_store_is_not_created_by_reads(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'none.db'}"
    assert not tracking.store_exists(uri)
    assert tracking.job_runs(uri) == [] and tracking.experiment_id(uri) is None
    assert not (tmp_path / "none.db").exists()


def test_parent_and_child_runs(uri: str) -> None:
    parent, exp = tracking.start_job_run(uri, "job-a", {tracking.TAG_METRIC: "val_loss"}, {"trials": 2})
    assert tracking.ensure_store(uri) == exp                       # idempotent
    location = tracking.client(uri).get_experiment(exp).artifact_location
    assert location.endswith("mlartifacts") and Path(uri[len("sqlite:///"):]).parent.as_uri() in location

    child = tracking.ChildRun(uri, exp, parent, "job-a", "t_00001", {"lr": 0.01, "cell": "gru"})
    child.log_epoch({"epoch": 1, "val_loss": 2.0, "diverged": False, "note": "x"}, step=1)
    child.log_epoch({"epoch": 2, "val_loss": math.inf, "reward": 0.0}, step=2)   # inf is skipped
    child.finish("FINISHED")

    [run] = tracking.trial_runs(uri, parent)
    assert run.info.status == "FINISHED"
    assert run.data.params == {"lr": "0.01", "cell": "gru"}
    assert tracking.trial_config(run) == {"lr": 0.01, "cell": "gru"}          # typed
    history = tracking.client(uri).get_metric_history(run.info.run_id, "val_loss")
    assert [(m.step, m.value) for m in history] == [(1, 2.0)]
    assert run.data.metrics["diverged"] == 0.0 and "note" not in run.data.metrics
    [job] = tracking.job_runs(uri, "job-a")
    assert job.info.run_id == parent and job.data.tags[tracking.TAG_KIND] == "job"


def test_child_without_epochs_still_has_params(uri: str) -> None:
    parent, exp = tracking.start_job_run(uri, "job-b", {}, {})
    child = tracking.ChildRun(uri, exp, parent, "job-b", "t1", {"a": 1})
    child.finish("FAILED", {tracking.TAG_ERROR: "boom"})
    run = tracking.client(uri).get_run(child.run_id)
    assert run.info.status == "FAILED" and run.data.params == {"a": "1"}
    assert run.data.tags[tracking.TAG_ERROR] == "boom"


def test_background_writer_drains_in_order_and_survives_errors(uri: str) -> None:
    parent, _ = tracking.start_job_run(uri, "job-c", {}, {})
    writer = BackgroundWriter()
    writer.submit(lambda: 1)                                        # not picklable: skipped
    writer.submit(tracking.set_status, uri, "no-such-run", "FINISHED")   # fails: logged
    for step in range(5):
        writer.submit(tracking.log_metrics, uri, parent, {"best_reward": step / 10}, step)
    writer.submit(tracking.set_status, uri, parent, "FINISHED")
    writer.close()
    writer.close()                                                  # idempotent
    history = tracking.client(uri).get_metric_history(parent, "best_reward")
    assert [m.step for m in history] == list(range(5))
    assert tracking.client(uri).get_run(parent).info.status == "FINISHED"
    with pytest.raises(RuntimeError, match="closed"):
        writer.submit(tracking.log_metrics, uri, parent, {}, 0)


def test_default_uri_uses_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://example:5000")
    assert tracking.default_tracking_uri() == "http://example:5000"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert tracking.default_tracking_uri().startswith("sqlite:///") and tracking.default_tracking_uri().endswith("mlflow.db")
