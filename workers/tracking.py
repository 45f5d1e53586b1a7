"""MLflow helpers shared by the driver (jobs, CLI), the Ray workers and the tests.

Layout in the store: one experiment, ``hyperseq``; one *parent* run per job (tag
``hyperseq.kind=job``) and one *child* run per trial (``hyperseq.kind=trial``, linked by the
standard ``mlflow.parentRunId`` tag). Jobs are found by their ``hyperseq.job`` tag, trials by
the parent run id. Everything goes through `MlflowClient` with an explicit tracking URI (no
fluent global state), so one process can serve several stores and worker threads.

Why not MLflow's Ray Tune callback: it leaves runs RUNNING after a restore. Why the driver
creates the store first: several processes creating a fresh sqlite database at once corrupt it.
"""
from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Iterable, Mapping
from urllib.parse import unquote, urlparse

from mlflow.entities import Metric, Param, Run, RunTag
from mlflow.tracking import MlflowClient

EXPERIMENT = "hyperseq"
PARENT = "mlflow.parentRunId"
RUN_NAME = "mlflow.runName"
TAG_KIND = "hyperseq.kind"               # "job" | "trial"
TAG_JOB = "hyperseq.job"                 # job name, on parent and children
TAG_SEARCHER = "hyperseq.searcher"
TAG_SPACE = "hyperseq.space"
TAG_TASK = "hyperseq.task"
TAG_METRIC = "hyperseq.metric"           # task metric name (children and parent)
TAG_MODE = "hyperseq.mode"
TAG_REWARD_RULE = "hyperseq.reward_rule"
TAG_STORAGE = "hyperseq.storage"         # Ray Tune experiment path, for a later resume
TAG_TRIAL = "hyperseq.trial_id"
TAG_CONFIG = "hyperseq.config"           # the config as JSON (typed; params are strings)
TAG_STOPPED = "hyperseq.stopped_early"   # "true" on trials a scheduler stopped
TAG_ERROR = "hyperseq.error"
TAG_OPTIONS = "hyperseq.options"         # the job's options as JSON (typed), for `resume`
TAG_INTERRUPTED = "hyperseq.interrupted" # "true" on trial runs a driver crash or Ctrl-C cut short
MAX_TAG = 5000



# ---- store ----------------------------------------------------------------------------------
def default_tracking_uri() -> str:
    """`$MLFLOW_TRACKING_URI`, else ``sqlite:///<cwd>/mlflow.db``."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def _local_path(uri: str) -> Path | None:
    """Filesystem path of a sqlite or file store, else None (a server)."""
    parsed = urlparse(uri)
    if parsed.scheme == "sqlite":
        path = unquote(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else ""
        return Path(path) if path and path != ":memory:" else None
    if parsed.scheme in ("", "file"):
        return Path(unquote(parsed.path))
    return None


def store_exists(uri: str) -> bool:
    """Whether the store may hold runs (servers: assumed yes). Never creates anything."""
    path = _local_path(uri)
    return True if path is None else path.exists()


@functools.lru_cache(maxsize=8)
def client(uri: str) -> MlflowClient:
    """One client per URI per process (building one costs ~0.5 s: engine and schema check)."""
    return MlflowClient(tracking_uri=uri)


def ensure_store(uri: str) -> str:
    """Create the store and the `hyperseq` experiment if needed; return the experiment id.

    Call it from the driver before any worker starts. Artifacts of a local store go to
    ``mlartifacts/`` next to it (not to the current directory).
    """
    path = _local_path(uri)
    fresh_sqlite = path is not None and uri.startswith("sqlite:") and not path.exists()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    c = client(uri)
    if fresh_sqlite:
        _use_wal(path)
    exp = c.get_experiment_by_name(EXPERIMENT)
    if exp is not None:
        return exp.experiment_id
    location = None
    if path is not None:
        base = path.parent if path.suffix else path
        location = (base / "mlartifacts").resolve().as_uri()
    return c.create_experiment(EXPERIMENT, artifact_location=location)


def _use_wal(path: Path) -> None:
    """Write-ahead logging for a sqlite store we just created: a commit costs one fsync, not
    several, and readers (queries, the UI) no longer block the writer. The mode is stored in
    the database file; stores created elsewhere are left as they are."""
    import sqlite3
    with contextlib.closing(sqlite3.connect(path)) as con:
        con.execute("PRAGMA journal_mode=WAL")


def experiment_id(uri: str) -> str | None:
    """The experiment's id, or None when the store or experiment does not exist."""
    if not store_exists(uri):
        return None
    exp = client(uri).get_experiment_by_name(EXPERIMENT)
    return None if exp is None else exp.experiment_id


# ---- values ---------------------------------------------------------------------------------
def numeric_metrics(values: Mapping[str, Any]) -> dict[str, float]:
    """The finite numeric entries of a dict (bools as 0/1), for `log_batch`."""
    out = {}
    for k, v in values.items():
        if isinstance(v, bool):
            out[k] = float(v)
        elif isinstance(v, (int, float)) and math.isfinite(v):
            out[k] = float(v)
    return out


def _now_ms() -> int:
    return int(time.time() * 1000)


def log_metrics(uri: str, run_id: str, values: Mapping[str, Any], step: int) -> None:
    """Numeric entries of `values` at one step."""
    log_metric_steps(uri, run_id, [(values, step)])


def log_metric_steps(uri: str, run_id: str, points: Iterable[tuple[Mapping[str, Any], int]]) -> None:
    """Several steps' metrics in one `log_batch` (one store transaction)."""
    ts = _now_ms()
    metrics = [Metric(k, v, ts, step) for values, step in points
               for k, v in numeric_metrics(values).items()]
    for start in range(0, len(metrics), 1000):          # MLflow's per-batch metric limit
        client(uri).log_batch(run_id, metrics=metrics[start:start + 1000])


# ---- runs -----------------------------------------------------------------------------------
def start_job_run(uri: str, name: str, tags: Mapping[str, str],
                  params: Mapping[str, Any]) -> tuple[str, str]:
    """Create the job's parent run (RUNNING); return (run_id, experiment_id)."""
    exp_id = ensure_store(uri)
    c = client(uri)
    run = c.create_run(exp_id, run_name=name, tags={TAG_KIND: "job", TAG_JOB: name, **tags})
    c.log_batch(run.info.run_id, params=[Param(k, str(v)) for k, v in params.items()])
    return run.info.run_id, exp_id


def reopen(uri: str, run_id: str) -> None:
    """Mark a run RUNNING again (a resumed job reuses its parent run)."""
    client(uri).update_run(run_id, status="RUNNING")


def set_status(uri: str, run_id: str, status: str, tags: Mapping[str, str] | None = None) -> None:
    """End a run with FINISHED / FAILED / KILLED (and optional final tags)."""
    c = client(uri)
    if tags:
        c.log_batch(run_id, tags=[RunTag(k, str(v)[:MAX_TAG]) for k, v in tags.items()])
    c.set_terminated(run_id, status)


class ChildRun:
    """A trial's child run: params, per-epoch metrics, status (see `workers.recorder`)."""

    def __init__(self, uri: str, experiment_id: str, parent_run_id: str, job: str,
                 trial_id: str, config: Mapping[str, Any], tags: Mapping[str, str] | None = None):
        self.uri = uri
        c = client(uri)
        run = c.create_run(experiment_id, run_name=trial_id, tags={
            PARENT: parent_run_id, TAG_KIND: "trial", TAG_JOB: job, TAG_TRIAL: trial_id,
            TAG_CONFIG: json.dumps(dict(config), sort_keys=True)[:MAX_TAG], **(tags or {})})
        self.run_id = run.info.run_id
        self._params = [Param(k, str(v)) for k, v in config.items()]

    def log_epoch(self, values: Mapping[str, Any], step: int,
                  tags: Mapping[str, str] | None = None) -> None:
        """One epoch's metrics at `step` (the first call also carries the params)."""
        ts = _now_ms()
        metrics = [Metric(k, v, ts, step) for k, v in numeric_metrics(values).items()]
        client(self.uri).log_batch(self.run_id, metrics=metrics, params=self._params,
                                   tags=[RunTag(k, str(v)[:MAX_TAG]) for k, v in (tags or {}).items()])
        self._params = []

    def finish(self, status: str, tags: Mapping[str, str] | None = None) -> None:
        if self._params:                       # no epoch ran: params still belong to the run
            client(self.uri).log_batch(self.run_id, params=self._params)
            self._params = []
        set_status(self.uri, self.run_id, status, tags)


# ---- queries --------------------------------------------------------------------------------
def search(uri: str, filter_string: str, order_by: Iterable[str] = ()) -> list[Run]:
    """All runs of the experiment matching a filter (paged); [] when there is no store."""
    exp_id = experiment_id(uri)
    if exp_id is None:
        return []
    runs, token = [], None
    while True:
        page = client(uri).search_runs([exp_id], filter_string, max_results=5000,
                                       order_by=list(order_by), page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def job_runs(uri: str, name: str | None = None) -> list[Run]:
    """Parent runs (all jobs, or the one named), newest first."""
    flt = f"tags.`{TAG_KIND}` = 'job'"
    if name is not None:
        flt += f" and tags.`{TAG_JOB}` = '{name}'"
    return search(uri, flt, order_by=["attributes.start_time DESC"])


def trial_runs(uri: str, parent_run_id: str) -> list[Run]:
    return search(uri, f"tags.`{PARENT}` = '{parent_run_id}'")


def trial_config(run: Run) -> dict[str, Any]:
    """The typed config of a trial run (JSON tag; params as strings if the tag is missing)."""
    raw = run.data.tags.get(TAG_CONFIG)
    if raw:
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            pass
    return dict(run.data.params)
