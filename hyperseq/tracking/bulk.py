"""Group commit of finished trial runs into an SQL tracking store: many runs, one transaction.

Recorded through `MlflowClient`, one trial's run (create, log a batch, end) costs MLflow's
`SqlAlchemyStore` about a dozen sessions and thirty statements. When trials end every few
milliseconds, that makes the writer process the biggest CPU user of a job on a small
machine. A trial that ends before its run was ever opened (`recorder.TrialRecorder` defers the
open) is complete when written: it is a brand-new run, so there is nothing to read, merge or
update, only rows to insert. `insert_runs` inserts those rows, the ones MLflow's own calls write
(its ORM tables, its validators and truncation, its NaN/inf rule, its latest-metric rule), for
many runs in one transaction of multi-row inserts.

The rows follow MLflow's schema, so this module depends on MLflow's internals. The check is
`tests/hyperseq/test_bulk_runs.py`: a run written here must read back through `MlflowClient`
exactly like the same run written by MLflow's own calls. Callers fall back to those calls when
this raises (`MlflowStore.write_finished`). The transaction either commits whole or leaves
nothing behind.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence


@dataclass(frozen=True)
class RunRows:
    """One finished run, as `MlflowClient` would have recorded it: `tags` include the
    run-name tag, `metrics` every logged (key, value, timestamp ms, step)."""

    name: str
    start_ms: int
    end_ms: int
    status: str
    tags: Mapping[str, str]
    params: Mapping[str, str]
    metrics: Sequence[tuple[str, float, int, int]] = field(default_factory=tuple)


def insert_runs(store: Any, experiment_id: str, runs: Sequence[RunRows]) -> list[str]:
    """Insert finished runs into `store` (an MLflow `SqlAlchemyStore`) in one transaction;
    return their run ids. MlflowException for invalid data or an experiment that is not active."""
    from mlflow.entities import LifecycleStage, RunStatus
    from mlflow.exceptions import MlflowException
    from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlMetric, SqlParam, SqlRun, SqlTag
    from mlflow.utils.uri import append_to_uri_path
    from sqlalchemy import insert

    experiment = store.get_experiment(experiment_id)
    if experiment.lifecycle_stage != LifecycleStage.ACTIVE:
        raise MlflowException(f"experiment {experiment_id} is {experiment.lifecycle_stage}, not active")
    rows: dict[Any, list[dict[str, Any]]] = {SqlRun: [], SqlTag: [], SqlParam: [], SqlMetric: [],
                                              SqlLatestMetric: []}
    ids = []
    for run in runs:
        run_id = uuid.uuid4().hex
        ids.append(run_id)
        rows[SqlRun].append(dict(
            run_uuid=run_id, name=run.name, experiment_id=int(experiment_id),
            artifact_uri=append_to_uri_path(experiment.artifact_location, run_id, store.ARTIFACTS_FOLDER_NAME),
            source_type="UNKNOWN", source_name="", entry_point_name="", user_id="unknown",
            status=RunStatus.to_string(RunStatus.from_string(run.status)), start_time=run.start_ms,
            end_time=run.end_ms, deleted_time=None, source_version="", lifecycle_stage=LifecycleStage.ACTIVE))
        tags, params = _validated(run)
        rows[SqlTag] += [dict(run_uuid=run_id, key=k, value=v) for k, v in tags.items()]
        rows[SqlParam] += [dict(run_uuid=run_id, key=k, value=v) for k, v in params.items()]
        metrics, latest = _metric_rows(store, run_id, run.metrics)
        rows[SqlMetric] += metrics
        rows[SqlLatestMetric] += latest
    with store.ManagedSessionMaker(read_only=False) as session:
        for model, values in rows.items():          # runs first: the others reference them
            if values:
                session.execute(insert(model), values)
    return ids


def _validated(run: RunRows) -> tuple[dict[str, str], dict[str, str]]:
    """Tags and params as MLflow's batch validation passes them (too-long values truncated)."""
    from mlflow.entities import Param, RunTag
    from mlflow.utils.validation import _validate_batch_log_data
    _, params, tags = _validate_batch_log_data([], [Param(k, v) for k, v in run.params.items()],
                                               [RunTag(k, v) for k, v in run.tags.items()])
    return {t.key: t.value for t in tags}, {p.key: p.value for p in params}


def _metric_rows(store: Any, run_id: str, metrics: Sequence[tuple[str, float, int, int]]
                 ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """History rows (duplicates dropped, as MLflow does) and the latest row per key (highest
    (step, timestamp, value), MLflow's rule)."""
    from mlflow.utils.validation import _validate_metric
    history: dict[tuple, dict[str, Any]] = {}
    latest: dict[str, dict[str, Any]] = {}
    for key, value, timestamp, step in metrics:
        _validate_metric(key, value, timestamp, step)
        is_nan, stored = store.sanitize_metric_value(value)
        row = dict(run_uuid=run_id, key=key, value=stored, timestamp=timestamp, step=step, is_nan=is_nan)
        history.setdefault((key, timestamp, step, stored, is_nan), row)
        best = latest.get(key)
        if best is None or (step, timestamp, stored) > (best["step"], best["timestamp"], best["value"]):
            latest[key] = row
    return list(history.values()), [dict(r) for r in latest.values()]
