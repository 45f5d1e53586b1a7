"""Search jobs on a Ray cluster through Ray's Jobs API, recorded in a shared MLflow store.

    from controller import cluster
    sub = cluster.submit("space.yaml", "http://HEAD:8265", trials=50,
                         tracking_uri="http://HOST:5000")        # returns at once
    cluster.job_status(sub.address, sub.name)                      # Ray's view + MLflow's
    cluster.cancel(sub.address, sub.name)                          # STOPPED, runs KILLED

A submitted job is the ordinary ``hyperseq run`` executed as the Ray job's driver on the
head node: its ``runtime_env`` working_dir carries the packages (and the space file), so
the cluster runs this checkout's code; the nodes need only the dependencies. The job name
is both the Ray ``submission_id`` and the MLflow job name, so every command takes it.

Everything is validated before anything is contacted (the same `prepare_job` as `run`),
then the tracking server and the job server are probed with short timeouts, and only then
is the job submitted: a failure leaves no Ray job and no MLflow run behind.
Stopping: the driver gets SIGINT (as Ctrl-C: Tune stops the trials, the parent run ends
KILLED) and ``RAY_JOB_STOP_WAIT_TIME_S`` to finish before Ray kills it; `cancel` then closes
any run the driver could not.
"""
from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import shlex
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import pandas as pd

from workers import tracking

from .cluster_access import (ClusterError, auth_headers, check_tracking_server, cluster_tracking_uri,
                             connect, is_server, request_error, resolve_address, tracking_reachable)
from .options import JobSpec, prepare_job
from .pairs import format_pairs

PACKAGES = ("search_spaces", "controller", "workers", "tasks")
IGNORED = ("__pycache__", "*.pyc", "*.db", "*.db-journal", "mlruns", "mlartifacts", "ray_results",
           ".hyperseq", ".venv", ".git")
EXCLUDES = [*IGNORED, "benchmarks/data"]        # runtime_env excludes (gitignore syntax)
SPACE_DIR = "_space"                             # where a space file goes in the working_dir
META_JOB = "hyperseq.job"                        # Ray job metadata keys
META_TRACKING = "hyperseq.tracking_uri"
TAG_CLOSED_BY = "hyperseq.closed_by"             # on runs `cancel` had to end itself
STOP_WAIT_S = 30                                 # driver's grace period after SIGINT
JOB_ENV = {"RAY_JOB_STOP_SIGNAL": "SIGINT",      # stop = Ctrl-C for `hyperseq run`
           "RAY_JOB_STOP_WAIT_TIME_S": str(STOP_WAIT_S),
           "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}   # no "View run at" per trial in logs
NO_URL_PRINTS = "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"
LIVE = ("RUNNING", "SCHEDULED")                  # MLflow statuses of a run still open


@dataclass(frozen=True)
class Submission:
    """A submitted job: its name (Ray submission id = MLflow job) and where it went."""

    name: str
    address: str
    tracking_uri: str
    entrypoint: str
    note: str = ""                   # e.g. "the sqlite store is a path on the head node"


@dataclass
class CancelResult:
    """What `cancel` did."""

    name: str
    ray_status: str                  # final Ray status (STOPPED, or already SUCCEEDED / FAILED)
    stopped: bool                    # True when this call stopped a live job
    closed_runs: list[str] = field(default_factory=list)   # MLflow runs this call ended
    note: str = ""                   # why runs could not be checked, if so


# ---- submit ---------------------------------------------------------------------------------------
@contextlib.contextmanager
def _remote_resources(address: str) -> Iterator[None]:
    """`prepare_job` checks CPUs/GPUs against this machine unless a cluster is named."""
    saved = os.environ.get("RAY_ADDRESS")
    os.environ["RAY_ADDRESS"] = address
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("RAY_ADDRESS", None)
        else:
            os.environ["RAY_ADDRESS"] = saved


def _cluster_storage(storage: str | None) -> str | None:
    """Ray Tune results dir on the head: absolute, ``~/...`` or a URI; relative is refused."""
    if storage is None:
        return None
    if not storage.strip() or not (storage.startswith(("/", "~")) or "://" in storage):
        raise ClusterError(f"Invalid value for '--storage': {storage!r} must be an absolute path on the "
                           "head node (or ~/...): a relative path means nothing there", 2)
    return storage


def _validate(space: str, url: str, options: dict[str, Any]) -> JobSpec:
    """Every option and the space, offline: an empty store, remote resources (nothing contacted)."""
    with tempfile.TemporaryDirectory(prefix="hyperseq-validate-") as tmp, _remote_resources(url):
        return prepare_job(space, **{**options, "tracking_uri": f"sqlite:///{Path(tmp) / 'none.db'}",
                                     "storage": str(Path(tmp) / "none")})


def _ray_job_exists(client: Any, url: str, name: str) -> bool:
    try:
        client.get_job_info(name)
    except RuntimeError as err:
        if "status code 404" in str(err):
            return False
        raise request_error(url, err) from None
    return True


def _free_name(client: Any, url: str, space: str, options: dict[str, Any], uri: str) -> JobSpec:
    """The validated spec with a name free in the MLflow store and on the cluster."""
    given = options.get("name")
    with tempfile.TemporaryDirectory(prefix="hyperseq-validate-") as tmp, _remote_resources(url):
        # storage is checked by the driver, on the head: not against this machine
        local = {**options, "tracking_uri": uri, "storage": str(Path(tmp) / "none")}
        spec = prepare_job(space, **local)
        base = spec.name
        for k in range(2, 100):
            if not _ray_job_exists(client, url, spec.name):
                return spec
            if given is not None:
                raise ClusterError(f"Invalid value for '--name': {given!r} a Ray job of that name already "
                                   f"exists on {url}", 2)
            spec = prepare_job(space, **{**local, "name": f"{base}-r{k}"})
    raise ClusterError(f"no free job name like {base!r} on {url}", 2)


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ClusterError(f"cannot find the {name!r} package to ship to the cluster", 2)
    return Path(list(spec.submodule_search_locations)[0])


def stage(space: str, dest: Path) -> str:
    """Copy the packages (and the space file) into `dest`; return SPACE as the driver sees it."""
    from search_spaces import builtin_names
    for name in PACKAGES:
        shutil.copytree(_package_dir(name), dest / name, ignore=shutil.ignore_patterns(*IGNORED))
    if space in builtin_names():
        return space
    src = Path(space).expanduser().resolve()
    (dest / SPACE_DIR).mkdir()
    shutil.copy2(src, dest / SPACE_DIR / src.name)
    return f"{SPACE_DIR}/{src.name}"


def entrypoint(space_arg: str, spec: JobSpec, storage: str | None) -> str:
    """The driver's shell command: ``python -m controller.cli run ...`` with the validated options."""
    args = ["python", "-m", "controller.cli", "run", space_arg, "--name", spec.name,
            "--tracking-uri", spec.tracking_uri, "--searcher", spec.searcher,
            "--trials", str(spec.trials), "--concurrency", str(spec.concurrency),
            "--epochs", str(spec.epochs), "--scheduler", spec.scheduler or "none",
            "--gpus-per-trial", repr(float(spec.gpus_per_trial)),
            "--cpus-per-trial", repr(float(spec.cpus_per_trial)), "--seed", str(spec.seed),
            "--max-failures", str(spec.max_failures)]
    if storage:
        args += ["--storage", storage]
    if spec.controller_options:
        args += ["--controller-options", format_pairs(spec.controller_options)]
    return shlex.join(args)


def submit(space: str, address: str | None, *, searcher: str = "rnn", trials: int = 20,
           concurrency: int = 2, epochs: int = 3, scheduler: str | None = None,
           gpus_per_trial: float = 0, cpus_per_trial: float = 1, name: str | None = None,
           tracking_uri: str | None = None, seed: int = 0, max_failures: int = 2,
           storage: str | None = None, controller_options: Mapping[str, Any] | str | None = None) -> Submission:
    """Validate, probe both servers, then submit the search as a Ray job; return at once.

    Raises JobError / SpecError (invalid option or space) or ClusterError (exit_code 2:
    usage, 1: a server unreachable or refusing). Nothing is submitted or recorded on error.
    """
    url = resolve_address(address)
    auth_headers()                                       # a missing token is a usage error
    uri = cluster_tracking_uri(tracking_uri or tracking.default_tracking_uri())
    storage = _cluster_storage(storage)
    options = dict(searcher=searcher, trials=trials, concurrency=concurrency, epochs=epochs,
                   scheduler=scheduler, gpus_per_trial=gpus_per_trial, cpus_per_trial=cpus_per_trial,
                   name=name, seed=seed, max_failures=max_failures, controller_options=controller_options)
    _validate(space, url, options)
    check_tracking_server(uri)
    client = connect(url)
    spec = _free_name(client, url, space, options, uri)
    with tempfile.TemporaryDirectory(prefix="hyperseq-submit-") as tmp:
        command = entrypoint(stage(space, Path(tmp)), spec, storage)
        runtime_env = {"working_dir": tmp, "excludes": EXCLUDES, "env_vars": JOB_ENV}
        metadata = {META_JOB: spec.name, META_TRACKING: uri, "hyperseq.space": spec.space.name,
                    "hyperseq.searcher": spec.searcher}
        try:
            client.submit_job(entrypoint=command, submission_id=spec.name, runtime_env=runtime_env,
                              metadata=metadata)
        except Exception as err:                         # noqa: BLE001 - one line, exit 1
            raise request_error(url, err) from None
    note = "" if is_server(uri) else (f"MLflow store {uri} is a path on the head node: use an MLflow server "
                                       "(--tracking-uri http://HOST:5000) unless it shares this filesystem")
    return Submission(spec.name, url, uri, command, note)


# ---- status / logs ---------------------------------------------------------------------------------
def job_info(client: Any, url: str, name: str) -> Any:
    """Ray's `JobDetails` for `name`; ClusterError(exit 2) when the cluster has no such job."""
    try:
        return client.get_job_info(name)
    except RuntimeError as err:
        if "status code 404" in str(err):
            raise ClusterError(f"no job named {name!r} on the Ray cluster at {url}", 2) from None
        raise request_error(url, err) from None


def _time(ms: int | None) -> pd.Timestamp | None:
    return None if ms is None else pd.to_datetime(ms, unit="ms")


def mlflow_summary(uri: str, name: str) -> dict[str, Any]:
    """The job's parent run: status, trials done / requested, best reward (None when unknown)."""
    out: dict[str, Any] = {"status": None, "trials_done": None, "trials": None, "best_reward": None,
                           "run_id": None}
    runs = tracking.job_runs(uri, name)
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
    client = connect(address)
    info = job_info(client, client.get_address(), name)
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
    client = connect(address)
    url = client.get_address()
    job_info(client, url, name)
    try:
        return client.get_job_logs(name)
    except Exception as err:                             # noqa: BLE001
        raise request_error(url, err) from None


def follow_logs(address: str | None, name: str, write: Callable[[str], None]) -> str:
    """Stream the driver's output to `write` until the job ends; return its final Ray status."""
    client = connect(address)
    url = client.get_address()
    job_info(client, url, name)

    async def tail() -> None:
        async for chunk in client.tail_job_logs(name):
            write(chunk)
    try:
        asyncio.run(tail())
    except Exception as err:                             # noqa: BLE001
        raise request_error(url, err) from None
    return str(job_info(client, url, name).status)


# ---- cancel --------------------------------------------------------------------------------------
def _wait_terminal(client: Any, url: str, name: str, timeout: float, poll: float = 0.5) -> str:
    deadline = time.monotonic() + timeout
    while True:
        info = job_info(client, url, name)
        if info.status.is_terminal() or time.monotonic() >= deadline:
            return str(info.status)
        time.sleep(poll)


@contextlib.contextmanager
def _no_url_prints() -> Iterator[None]:
    """MLflow prints "View run ... at URL" to stdout when a server's run ends: not on our stdout."""
    saved = os.environ.get(NO_URL_PRINTS)
    os.environ[NO_URL_PRINTS] = "true"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(NO_URL_PRINTS, None)
        else:
            os.environ[NO_URL_PRINTS] = saved


def close_runs(uri: str, name: str, status: str = "KILLED") -> list[str]:
    """End the job's parent run(s) and trial runs still open; return the run ids ended."""
    with _no_url_prints():
        return _close_runs(uri, name, status)


def _close_runs(uri: str, name: str, status: str) -> list[str]:
    closed = []
    for parent in tracking.job_runs(uri, name):
        for child in tracking.trial_runs(uri, parent.info.run_id):
            if child.info.status in LIVE:
                tracking.set_status(uri, child.info.run_id, status, {TAG_CLOSED_BY: "hyperseq cancel"})
                closed.append(child.info.run_id)
        if parent.info.status in LIVE:
            tracking.set_status(uri, parent.info.run_id, status, {TAG_CLOSED_BY: "hyperseq cancel"})
            closed.append(parent.info.run_id)
    return closed


def cancel(address: str | None, name: str, tracking_uri: str | None = None,
           timeout: float = STOP_WAIT_S + 30) -> CancelResult:
    """Stop the Ray job, wait (at most `timeout` s) until it is terminal, then make sure no
    MLflow run of the job is left RUNNING (KILLED if stopped, FAILED if the job had failed)."""
    client = connect(address)
    url = client.get_address()
    info = job_info(client, url, name)
    stopped = False
    if not info.status.is_terminal():
        try:
            stopped = bool(client.stop_job(name))
        except Exception as err:                         # noqa: BLE001
            raise request_error(url, err) from None
    final = _wait_terminal(client, url, name, timeout)
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
    columns as `tracking_query.list_jobs` (empty when the store has no such job). Returns
    (frame, notes) where notes say what could not be read.
    """
    from .tracking_query import JOB_COLUMNS, list_jobs
    client = connect(address)
    url = client.get_address()
    try:
        ray_jobs = [j for j in client.list_jobs() if (j.metadata or {}).get(META_JOB)]
    except Exception as err:                             # noqa: BLE001
        raise request_error(url, err) from None
    ray_df = pd.DataFrame([{"job": j.metadata[META_JOB], "ray_status": str(j.status),
                            "ray_start": _time(j.start_time),
                            "tracking_uri": j.metadata.get(META_TRACKING)} for j in ray_jobs],
                          columns=["job", "ray_status", "ray_start", "tracking_uri"])
    uri = tracking_uri or tracking.default_tracking_uri()
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
