"""Watching and stopping cluster jobs: status, logs, cancel, and the jobs list joined with
the tracking store's view.

    from hyperseq.cluster import control
    control.job_status(address, name)          # the engine's view + the tracking store's
    control.cancel(address, name)              # STOPPED, runs KILLED
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import pandas as pd

from ..envvars import temp_env
from ..tracking import tags as T
from ..tracking.query import JOB_COLUMNS, list_jobs
from ..tracking.store import default_tracking_uri, open_store
from .access import ClusterError, first_line, tracking_reachable
from .engine import Engine, connect
from .submit import META_JOB, META_TRACKING, STOP_WAIT_S

NO_URL_PRINTS = "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"


@dataclass
class CancelResult:
    """What `cancel` did."""

    name: str
    ray_status: str                  # final status (STOPPED, or already SUCCEEDED / FAILED)
    stopped: bool                    # True when this call stopped a live job
    closed_runs: list[str] = field(default_factory=list)   # tracking runs this call ended
    note: str = ""                   # why runs could not be checked, if so


# ---- status / logs ---------------------------------------------------------------------------------
def _time(ms: int | None) -> pd.Timestamp | None:
    return None if ms is None else pd.to_datetime(ms, unit="ms")


def mlflow_summary(uri: str, name: str) -> dict[str, Any]:
    """The job's parent run: status, trials done / requested, best reward (None when unknown)."""
    out: dict[str, Any] = {"status": None, "trials_done": None, "trials": None, "best_reward": None,
                           "run_id": None}
    runs = open_store(uri).job_runs(name)
    if runs:
        run = runs[0]
        trials = run.data.params.get("trials", "")
        best = run.data.metrics.get("best_reward")
        out.update(status=run.info.status, trials_done=int(run.data.metrics.get("trials_completed", 0)),
                   trials=int(trials) if trials.isdigit() else None, run_id=run.info.run_id,
                   best_reward=None if best is None else float(best))
    return out


def job_status(address: str | None, name: str, tracking_uri: str | None = None) -> dict[str, Any]:
    """One job, as Ray and MLflow see it (``ray_status``, ``status`` = the parent run's)."""
    info = connect(address).info(name)
    uri = tracking_uri or (info.metadata or {}).get(META_TRACKING)
    reachable = bool(uri) and tracking_reachable(uri)
    row = {"job": name, "ray_status": str(info.status), "message": info.message or "",
           "start_time": _time(info.start_time), "end_time": _time(info.end_time), "tracking_uri": uri,
           "tracking_reachable": reachable}
    row.update(mlflow_summary(uri, name) if reachable else dict.fromkeys(
        ("status", "trials_done", "trials", "best_reward", "run_id")))
    return row


def job_logs(address: str | None, name: str) -> str:
    """The driver's output so far."""
    return connect(address).logs(name)


def follow_logs(address: str | None, name: str, write: Callable[[str], None]) -> str:
    """Stream the driver's output to `write` until the job ends; return its final Ray status."""
    engine = connect(address)
    engine.info(name)

    async def tail() -> None:
        async for chunk in engine.tail(name):
            write(chunk)
    try:
        asyncio.run(tail())
    except Exception as err:                             # noqa: BLE001
        raise ClusterError(f"job server at {engine.address}: {first_line(err)}") from None
    return str(engine.info(name).status)


# ---- cancel --------------------------------------------------------------------------------------
def _wait_terminal(engine: Engine, name: str, timeout: float, poll: float = 0.5) -> str:
    deadline = time.monotonic() + timeout
    while True:
        info = engine.info(name)
        if info.status.is_terminal() or time.monotonic() >= deadline:
            return str(info.status)
        time.sleep(poll)


def close_runs(uri: str, name: str, status: str = "KILLED") -> list[str]:
    """End the job's parent run(s) and trial runs still open; return the run ids ended."""
    closed, store, tags = [], open_store(uri), {T.TAG_CLOSED_BY: "hyperseq cancel"}
    with temp_env({NO_URL_PRINTS: "true"}):   # MLflow prints "View run ... at URL" to stdout
        for parent in store.job_runs(name):
            runs = [*store.trial_runs(parent.info.run_id), parent]
            for run in (r for r in runs if r.info.status in T.LIVE):
                store.set_status(run.info.run_id, status, tags)
                closed.append(run.info.run_id)
    return closed


def cancel(address: str | None, name: str, tracking_uri: str | None = None,
           timeout: float = STOP_WAIT_S + 30) -> CancelResult:
    """Stop the Ray job, wait (at most `timeout` s) until it is terminal, then make sure no
    MLflow run of the job is left RUNNING (KILLED if stopped, FAILED if the job had failed)."""
    engine = connect(address)
    info = engine.info(name)
    stopped = False if info.status.is_terminal() else engine.stop(name)
    final = _wait_terminal(engine, name, timeout)
    if final not in ("STOPPED", "SUCCEEDED", "FAILED"):
        raise ClusterError(f"job {name} did not stop within {timeout:g} s (Ray status {final}); its "
                           "MLflow runs are left as they are")
    result = CancelResult(name, final, stopped)
    uri = tracking_uri or (info.metadata or {}).get(META_TRACKING)
    if not uri:
        result.note = "no tracking URI recorded for this job: give --tracking-uri to close its runs"
    elif not tracking_reachable(uri):
        result.note = f"tracking store {uri} not reachable from here: its runs were not checked"
    else:
        result.closed_runs = close_runs(uri, name, "FAILED" if final == "FAILED" else "KILLED")
    return result


# ---- list -----------------------------------------------------------------------------------------
CLUSTER_COLUMNS = ["job", "ray_status", "status", "searcher", "space", "task", "metric", "trials_done",
                   "trials", "best_reward", "start_time", "run_id", "storage", "tracking_uri"]


def jobs_frame(address: str | None, tracking_uri: str | None = None) -> tuple[pd.DataFrame, list[str]]:
    """hyperseq jobs on the cluster joined with the jobs of the MLflow store, newest first.

    One row per job name: ``ray_status`` from Ray (empty for a job run locally), the other
    columns as `query.list_jobs` (empty when the store has no such job). Returns
    (frame, notes) where notes say what could not be read.
    """
    ray_jobs = [j for j in connect(address).jobs() if (j.metadata or {}).get(META_JOB)]
    ray_df = pd.DataFrame([{"job": j.metadata[META_JOB], "ray_status": str(j.status),
                            "ray_start": _time(j.start_time),
                            "tracking_uri": j.metadata.get(META_TRACKING)} for j in ray_jobs],
                          columns=["job", "ray_status", "ray_start", "tracking_uri"])
    uri = tracking_uri or default_tracking_uri()
    notes = []
    if tracking_reachable(uri):
        ml_df = list_jobs(uri).drop(columns=["tracking_uri"], errors="ignore")
    else:
        notes.append(f"tracking store {uri} not reachable: showing Ray's view only")
        ml_df = pd.DataFrame(columns=JOB_COLUMNS)
    df = ray_df.merge(ml_df.astype({"job": object}), on="job", how="outer")
    start = pd.to_datetime(df["start_time"]).astype("datetime64[ns]")
    df["start_time"] = start.fillna(pd.to_datetime(df["ray_start"]).astype("datetime64[ns]"))
    df = df.sort_values("start_time", ascending=False, na_position="last", kind="stable")
    df[["trials_done", "trials"]] = df[["trials_done", "trials"]].astype("Int64")   # NA for Ray-only rows
    return df.reindex(columns=CLUSTER_COLUMNS).reset_index(drop=True), notes
