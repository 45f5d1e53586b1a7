"""`MlflowStore`: the `Store` interface on MLflow (sqlite, file, server or database URIs).

Everything goes through `MlflowClient` with an explicit tracking URI (no fluent global state),
so one process can serve several stores and worker threads. Several processes creating a fresh
sqlite database at once corrupt it: the driver creates the store before any helper uses it, and
opens it through `sqlite_file.open_client` (a lock file for hyperseq's processes, a side file
and a wait for any other program creating it). Why not MLflow's Ray Tune callback: it leaves
runs RUNNING after a restore.
"""
from __future__ import annotations

import functools
import json
import logging
import math
import re
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping

from mlflow.entities import Metric, Param, Run, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME

from ..envvars import temp_env
from .bulk import RunRows, insert_runs
from .probe import probe_store
from .sqlite_file import creation_lock, open_client
from .store import ChildRunHandle, FinishedTrial, Store, local_path, now_ms
from .tags import (EXPERIMENT, EXPERIMENT_KIND, EXPERIMENT_KIND_TAG, MAX_TAG, PARENT, TAG_CONFIG, TAG_JOB,
                   TAG_KIND, TAG_TRIAL)

log = logging.getLogger(__name__)
BATCH = 1000                                  # MLflow's per-batch metric limit
# What a job name or run id can be: anything else names no run, and is never pasted into a
# filter string (a quote would end the string and the rest become filter clauses).
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
SAFE_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")


def numeric_metrics(values: Mapping[str, Any]) -> dict[str, float]:
    """The finite numeric entries of a dict (bools as 0/1), for `log_batch`."""
    out = {}
    for k, v in values.items():
        if isinstance(v, bool):
            out[k] = float(v)
        elif isinstance(v, (int, float)) and math.isfinite(v):
            out[k] = float(v)
    return out


def _tags(tags: Mapping[str, Any] | None) -> list[RunTag]:
    return [RunTag(k, str(v)[:MAX_TAG]) for k, v in (tags or {}).items()]


def _child_tags(parent_run_id: str, job: str, trial_id: str, config: Mapping[str, Any],
                tags: Mapping[str, str] | None = None) -> dict[str, str]:
    """The tags a trial's run is created with."""
    return {PARENT: parent_run_id, TAG_KIND: "trial", TAG_JOB: job, TAG_TRIAL: trial_id,
            TAG_CONFIG: json.dumps(dict(config), sort_keys=True)[:MAX_TAG], **(tags or {})}


def _run_rows(parent_run_id: str, job: str, trial: FinishedTrial) -> RunRows:
    """A finished trial as the run `open_child`, `log_epoch` and `finish` would leave."""
    tags = {**_child_tags(parent_run_id, job, trial.trial_id, trial.config), MLFLOW_RUN_NAME: trial.trial_id}
    metrics = []
    for values, step, epoch_tags, ts_ms in trial.epochs:
        metrics += [(k, v, ts_ms, step) for k, v in numeric_metrics(values).items()]
        tags.update({t.key: t.value for t in _tags(epoch_tags)})
    tags.update({t.key: t.value for t in _tags(trial.end_tags)})
    return RunRows(trial.trial_id, trial.start_ms, trial.end_ms, trial.status, tags,
                   {k: str(v) for k, v in trial.config.items()}, metrics)


class MlflowChildRun(ChildRunHandle):
    """A trial's child run: params with the first epoch, per-epoch metrics, final status."""

    def __init__(self, store: "MlflowStore", run_id: str, config: Mapping[str, Any]) -> None:
        self.store, self.run_id = store, run_id
        self._params = [Param(k, str(v)) for k, v in config.items()]

    def log_epoch(self, values: Mapping[str, Any], step: int, tags: Mapping[str, str] | None = None,
                  ts_ms: int | None = None) -> None:
        ts = ts_ms or now_ms()
        metrics = [Metric(k, v, ts, step) for k, v in numeric_metrics(values).items()]
        self.store.client.log_batch(self.run_id, metrics=metrics, params=self._params, tags=_tags(tags))
        self._params = []

    def finish(self, status: str, tags: Mapping[str, str] | None = None, end_ms: int | None = None) -> None:
        if self._params:                       # no epoch ran: params still belong to the run
            self.store.client.log_batch(self.run_id, params=self._params)
            self._params = []
        self.store.set_status(self.run_id, status, tags, end_ms)


class MlflowStore(Store):
    """A job store in MLflow: one experiment, parent run per job, child run per trial."""

    @functools.cached_property
    def client(self) -> MlflowClient:
        """Built on first use: building it creates a local store, which `exists` must not.
        The store is probed first (short timeouts): MLflow itself retries for minutes. A sqlite
        store is opened by `sqlite_file.open_client` (its first use creates the tables)."""
        probe_store(self.uri)
        path = local_path(self.uri)
        if path is None or not self.uri.startswith("sqlite:"):
            return MlflowClient(tracking_uri=self.uri)
        return open_client(self.uri, path)

    def probe(self, write: bool = False) -> None:
        probe_store(self.uri, write)

    def exists(self) -> bool:
        path = local_path(self.uri)
        return True if path is None else path.exists()

    def ensure(self) -> str:
        """Artifacts of a local store go to ``mlartifacts/`` next to it (not the current dir).
        Two drivers creating the experiment at once: the second one uses the first one's.
        The experiment carries MLflow's experiment-kind tag (`EXPERIMENT_KIND`), so the UI opens
        it on its runs; an experiment made without it gets it on first use, and a kind someone
        chose in the UI is left as it is."""
        path = local_path(self.uri)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        exp = self.client.get_experiment_by_name(EXPERIMENT)            # creates the schema
        if exp is not None:
            if EXPERIMENT_KIND_TAG not in exp.tags:
                self.client.set_experiment_tag(exp.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
            return exp.experiment_id
        location = None
        if path is not None:
            base = path.parent if path.suffix else path
            location = (base / "mlartifacts").resolve().as_uri()
        try:
            return self.client.create_experiment(EXPERIMENT, artifact_location=location,
                                                 tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND})
        except MlflowException as err:
            exp = self.client.get_experiment_by_name(EXPERIMENT)
            if exp is None:
                raise err from None
            return exp.experiment_id

    def experiment_id(self) -> str | None:
        """The experiment's id, or None when the store or experiment does not exist."""
        if not self.exists():
            return None
        exp = self.client.get_experiment_by_name(EXPERIMENT)
        return None if exp is None else exp.experiment_id

    # ---- writes
    def start_job(self, name: str, tags: Mapping[str, str], params: Mapping[str, Any]) -> tuple[str, str]:
        exp_id = self.ensure()
        run = self.client.create_run(exp_id, run_name=name, tags={TAG_KIND: "job", TAG_JOB: name, **tags})
        self.client.log_batch(run.info.run_id, params=[Param(k, str(v)) for k, v in params.items()])
        return run.info.run_id, exp_id

    def open_child(self, experiment_id: str, parent_run_id: str, job: str, trial_id: str,
                   config: Mapping[str, Any], tags: Mapping[str, str] | None = None,
                   start_ms: int | None = None) -> MlflowChildRun:
        run = self.client.create_run(experiment_id, start_time=start_ms, run_name=trial_id,
                                     tags=_child_tags(parent_run_id, job, trial_id, config, tags))
        return MlflowChildRun(self, run.info.run_id, config)

    def write_finished(self, experiment_id: str, parent_run_id: str, job: str,
                       trials: Iterable[FinishedTrial]) -> None:
        """A SQL store takes all the runs in one transaction (`bulk.insert_runs`); other stores,
        or a batch it refuses, go through MLflow's own calls, one run after another."""
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
        trials, store = list(trials), getattr(self.client, "_tracking_client").store
        if trials and isinstance(store, SqlAlchemyStore):
            try:
                insert_runs(store, experiment_id, [_run_rows(parent_run_id, job, t) for t in trials])
                return
            except Exception as err:                 # noqa: BLE001 - MLflow's calls say it properly
                log.debug("bulk insert of %d runs refused (%s); writing them one by one", len(trials), err)
        super().write_finished(experiment_id, parent_run_id, job, trials)

    def child(self, run_id: str, config: Mapping[str, Any]) -> MlflowChildRun:
        return MlflowChildRun(self, run_id, config)

    def set_status(self, run_id: str, status: str, tags: Mapping[str, str] | None = None,
                   end_ms: int | None = None) -> None:
        if tags:
            self.client.log_batch(run_id, tags=_tags(tags))
        self.client.set_terminated(run_id, status, end_ms)

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        self.client.log_batch(run_id, tags=_tags(tags))

    def delete_run(self, run_id: str) -> None:
        self.client.delete_run(run_id)

    def creating_job(self) -> Any:
        """A local sqlite store's creation lock (`sqlite_file.creation_lock`): this machine's
        drivers create a parent run and check its name one at a time."""
        path = local_path(self.uri)
        if path is None or not self.uri.startswith("sqlite:"):
            return super().creating_job()
        self.ensure()                              # opening the store takes the same lock
        return creation_lock(path)

    def reopen(self, run_id: str) -> None:
        self.client.update_run(run_id, status="RUNNING")

    def log_metric_steps(self, run_id: str, points: Iterable[tuple[Mapping[str, Any], int]]) -> None:
        ts = now_ms()
        metrics = [Metric(k, v, ts, step) for values, step in points
                   for k, v in numeric_metrics(values).items()]
        for start in range(0, len(metrics), BATCH):
            self.client.log_batch(run_id, metrics=metrics[start:start + BATCH])

    def log_text(self, run_id: str, text: str, path: str) -> None:
        self.client.log_text(run_id, text, path)

    def log_image(self, run_id: str, png: bytes, path: str) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / Path(path).name
            local.write_bytes(png)
            self.client.log_artifact(run_id, str(local), str(Path(path).parent) if "/" in path else None)

    # ---- reads
    def search(self, filter_string: str, order_by: Iterable[str] = ()) -> list[Run]:
        """All runs of the experiment matching a filter (paged); [] when there is no store."""
        exp_id = self.experiment_id()
        if exp_id is None:
            return []
        runs, token = [], None
        while True:
            page = self.client.search_runs([exp_id], filter_string, max_results=5000,
                                           order_by=list(order_by), page_token=token)
            runs.extend(page)
            token = page.token
            if not token:
                return runs

    def job_runs(self, name: str | None = None) -> list[Run]:
        flt = f"tags.`{TAG_KIND}` = 'job'"
        if name is not None:
            if not isinstance(name, str) or not SAFE_NAME.fullmatch(name):
                return []                        # no job can have that name
            flt += f" and tags.`{TAG_JOB}` = '{name}'"
        return self.search(flt, order_by=["attributes.start_time DESC"])

    def trial_runs(self, parent_run_id: str) -> list[Run]:
        if not isinstance(parent_run_id, str) or not SAFE_ID.fullmatch(parent_run_id):
            return []
        return self.search(f"tags.`{PARENT}` = '{parent_run_id}'")

    def get_run(self, run_id: str) -> Run:
        return self.client.get_run(run_id)

    def metric_history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        return [(m.step, m.value) for m in self.client.get_metric_history(run_id, key)]

    def download_artifact(self, run_id: str, path: str, dest: str) -> str:
        with temp_env({"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}):   # no bar on stderr
            return self.client.download_artifacts(run_id, path, dest)


def trial_config(run: Any) -> dict[str, Any]:
    """The typed config of a trial run (JSON tag; params as strings if the tag is missing)."""
    raw = run.data.tags.get(TAG_CONFIG)
    if raw:
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            pass
    return dict(run.data.params)
