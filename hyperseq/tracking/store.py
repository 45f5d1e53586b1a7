"""The tracking-store interface the service writes jobs and trials through, and its registry.

A backend implements `Store` for one URI; `open_store(uri)` picks the backend by the URI's
scheme (`BACKENDS`: scheme -> "module:class", imported lazily) and caches one instance per URI
per process. Runs are returned as MLflow `Run` entities (``info.run_id``, ``info.status``,
``data.tags``/``params``/``metrics``): the shape every query in `query.py` reads.
A new backend is one module with a `Store` subclass and one line in `BACKENDS`.
"""
from __future__ import annotations

import contextlib
import functools
import importlib
import os
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping
from urllib.parse import unquote, urlparse

MLFLOW = "hyperseq.tracking.mlflow_store:MlflowStore"
# URI scheme -> backend class ("" = a plain path: MLflow's file store)
BACKENDS = {"sqlite": MLFLOW, "file": MLFLOW, "": MLFLOW, "http": MLFLOW, "https": MLFLOW,
            "postgresql": MLFLOW, "mysql": MLFLOW, "mssql": MLFLOW, "databricks": MLFLOW}


PROBE_TIMEOUT = 5.0             # seconds to connect to (and hear from) a store's server
DB_PORTS = {"postgresql": 5432, "mysql": 3306, "mssql": 1433}


class StoreError(ValueError):
    """A store that cannot be used, in one line: `exit_code` 2 for a URI that can never work
    (unknown scheme, in-memory), 1 for one that does not answer or is broken."""

    def __init__(self, message: str, exit_code: int = 1, reason: str = "") -> None:
        super().__init__(message)
        self.exit_code, self.reason = exit_code, reason or message


def default_tracking_uri() -> str:
    """`$MLFLOW_TRACKING_URI`, else ``sqlite:///<cwd>/mlflow.db``."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def local_path(uri: str) -> Path | None:
    """Filesystem path of a sqlite or file store, else None (a server or an in-memory db)."""
    parsed = urlparse(uri)
    if parsed.scheme == "sqlite":
        path = unquote(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else ""
        return Path(path) if path and path != ":memory:" else None
    if parsed.scheme in ("", "file"):
        return Path(unquote(parsed.path))
    return None


def is_server(uri: str) -> bool:
    return urlparse(uri).scheme in ("http", "https")


def scheme_of(uri: str) -> str:
    """The backend scheme of a URI (``postgresql+psycopg://`` -> ``postgresql``)."""
    return urlparse(uri).scheme.split("+", 1)[0]


def check_uri(uri: str) -> None:
    """StoreError (exit 2) for a URI no command can use: an unknown scheme, or an in-memory
    sqlite store (each process would get its own empty one: nothing recorded survives)."""
    why = ""
    if scheme_of(uri) not in BACKENDS:
        why = (f"no tracking backend for URI scheme {scheme_of(uri)[:40]!r} "
               f"(known: {', '.join(s for s in BACKENDS if s)})")
    elif scheme_of(uri) == "sqlite" and local_path(uri) is None:
        why = ("an in-memory store: nothing it records outlives the process; use "
               "sqlite:///PATH or http://HOST:5000")
    if why:
        raise StoreError(f"tracking URI {uri[:200]!r}: {why}", 2, why)


class ChildRunHandle(ABC):
    """A trial's open run: per-epoch metrics, then one final status."""

    run_id: str

    @abstractmethod
    def log_epoch(self, values: Mapping[str, Any], step: int, tags: Mapping[str, str] | None = None,
                  ts_ms: int | None = None) -> None:
        """One epoch's finite metrics at `step`, timestamped `ts_ms` (default now); the first
        call also records the params."""

    @abstractmethod
    def finish(self, status: str, tags: Mapping[str, str] | None = None, end_ms: int | None = None) -> None:
        """End the run FINISHED / FAILED / KILLED (at `end_ms`, default now) with optional final tags."""


def now_ms() -> int:
    """Wall-clock time in ms, as MLflow stamps runs and metrics."""
    return int(time.time() * 1000)


@dataclass
class FinishedTrial:
    """A trial's whole run, known only once it ended: written in one go (`Store.write_finished`).
    `epochs`: (values, step, tags, timestamp ms) as reported; `end_tags` go with the status."""

    trial_id: str
    config: Mapping[str, Any]
    start_ms: int
    end_ms: int = 0
    status: str = "RUNNING"
    epochs: list[tuple[Mapping[str, Any], int, Mapping[str, str], int]] = field(default_factory=list)
    end_tags: Mapping[str, str] = field(default_factory=dict)


class Store(ABC):
    """One tracking store (`uri`): jobs as parent runs, trials as their child runs."""

    def __init__(self, uri: str) -> None:
        self.uri = uri

    # ---- the store itself
    @abstractmethod
    def exists(self) -> bool:
        """Whether the store may hold runs (servers: assumed yes). Never creates anything."""

    def probe(self, write: bool = False) -> None:
        """StoreError within seconds when the store cannot be reached or used (for writing,
        with `write`); nothing is created. Default: nothing to check."""

    @abstractmethod
    def ensure(self) -> str:
        """Create the store and the experiment if needed; return the experiment id."""

    # ---- writes
    @abstractmethod
    def start_job(self, name: str, tags: Mapping[str, str], params: Mapping[str, Any]) -> tuple[str, str]:
        """Create a job's parent run (RUNNING); return (run_id, experiment_id)."""

    @abstractmethod
    def open_child(self, experiment_id: str, parent_run_id: str, job: str, trial_id: str,
                   config: Mapping[str, Any], tags: Mapping[str, str] | None = None,
                   start_ms: int | None = None) -> ChildRunHandle:
        """Create a trial's child run under `parent_run_id` (started at `start_ms`, default now)."""

    def write_finished(self, experiment_id: str, parent_run_id: str, job: str,
                       trials: Iterable[FinishedTrial]) -> None:
        """Record trials that already ended, each as `open_child`, `log_epoch`s and `finish`
        would; a backend may write them all at once."""
        for trial in trials:
            run = self.open_child(experiment_id, parent_run_id, job, trial.trial_id, trial.config,
                                  start_ms=trial.start_ms)
            for values, step, tags, ts_ms in trial.epochs:
                run.log_epoch(values, step, tags, ts_ms)
            run.finish(trial.status, trial.end_tags, trial.end_ms)

    @abstractmethod
    def child(self, run_id: str, config: Mapping[str, Any]) -> ChildRunHandle:
        """An existing child run, to continue (a resume completing a run whose writes were cut
        short); `config` (the params, {} when already recorded) goes with the next write."""

    @abstractmethod
    def set_status(self, run_id: str, status: str, tags: Mapping[str, str] | None = None,
                   end_ms: int | None = None) -> None:
        """End a run FINISHED / FAILED / KILLED (at `end_ms`, default now; optional final tags)."""

    @abstractmethod
    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        """Add or overwrite tags of a run."""

    @abstractmethod
    def delete_run(self, run_id: str) -> None:
        """Delete a run (a parent run that lost its name to another driver's)."""

    def creating_job(self) -> Any:
        """A context held while a job's parent run is created and its name checked: a store
        that can serialise that across this machine's drivers does (default: nothing held)."""
        return contextlib.nullcontext()

    @abstractmethod
    def reopen(self, run_id: str) -> None:
        """Mark a run RUNNING again (a resumed job reuses its parent run)."""

    @abstractmethod
    def log_metric_steps(self, run_id: str, points: Iterable[tuple[Mapping[str, Any], int]]) -> None:
        """Several steps' finite metrics in one write."""

    @abstractmethod
    def log_text(self, run_id: str, text: str, path: str) -> None:
        """A text artifact."""

    @abstractmethod
    def log_image(self, run_id: str, png: bytes, path: str) -> None:
        """A PNG image artifact."""

    # ---- reads
    @abstractmethod
    def job_runs(self, name: str | None = None) -> list[Any]:
        """Parent runs (all jobs, or the one named), newest first; [] without a store."""

    @abstractmethod
    def trial_runs(self, parent_run_id: str) -> list[Any]:
        """Child runs of a job's parent run."""

    @abstractmethod
    def get_run(self, run_id: str) -> Any:
        """One run by id."""

    @abstractmethod
    def download_artifact(self, run_id: str, path: str, dest: str) -> str:
        """Copy an artifact to directory `dest`; return its local path."""

    def metric_history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        """(step, value) of each value a run logged for metric `key`; [] from a backend that
        keeps only the latest values (readers then use those)."""
        return []


@functools.lru_cache(maxsize=8)
def open_store(uri: str) -> Store:
    """The store for `uri` (one per URI per process: opening one connects and checks the schema).

    StoreError (exit 2) for an unknown scheme; the store is not contacted here."""
    check_uri(uri)
    module, cls = BACKENDS[scheme_of(uri)].split(":")
    return getattr(importlib.import_module(module), cls)(uri)


# ---- calls a `BackgroundWriter` executes in its helper process (pickled by reference) ---------
def log_metric_steps(uri: str, run_id: str, points: list[tuple[Mapping[str, Any], int]]) -> None:
    open_store(uri).log_metric_steps(run_id, points)


def set_status(uri: str, run_id: str, status: str, tags: Mapping[str, str] | None = None) -> None:
    open_store(uri).set_status(run_id, status, tags)
