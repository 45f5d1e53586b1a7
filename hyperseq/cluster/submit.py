"""Submitting a search job to a cluster, recorded in a shared tracking store.

    from hyperseq.cluster import submit
    sub = submit.submit("space.yaml", "http://HEAD:8265", trials=50,
                        tracking_uri="http://HOST:5000")        # returns at once

A submitted job is the ordinary ``hyperseq run`` executed as the job's driver on the head
node: its working directory carries the packages (and the space file), so the cluster runs
this checkout's code; the nodes need only the dependencies. The job name is both the engine's
job id and the tracking store's job name, so every command takes it. Everything is validated
before anything is contacted (the same `prepare_job` as `run`), then the tracking server and
the job server are probed with short timeouts, and only then is the job submitted: a failure
leaves no cluster job and no tracking run behind. Stopping: the driver gets SIGINT (as Ctrl-C:
Tune stops the trials, the parent run ends KILLED) and ``RAY_JOB_STOP_WAIT_TIME_S`` to finish
before Ray kills it; `control.cancel` then closes any run the driver could not.
"""
from __future__ import annotations

import importlib.util
import shlex
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..envvars import temp_env
from ..jobs.spec import JobSpec, prepare_job
from ..tracking.store import default_tracking_uri, is_server
from .access import ClusterError, auth_headers, check_tracking_server, cluster_tracking_uri, resolve_address
from .engine import Engine, connect

PACKAGES = ("search_spaces", "controller", "workers", "tasks", "hyperseq")
IGNORED = ("__pycache__", "*.pyc", "*.db", "*.db-journal", "mlruns", "mlartifacts", "ray_results",
           ".hyperseq", ".venv", ".git")
EXCLUDES = [*IGNORED, "benchmarks/data"]        # runtime_env excludes (gitignore syntax)
SPACE_DIR = "_space"                             # where a space file goes in the working_dir
META_JOB = "hyperseq.job"                        # job metadata keys
META_TRACKING = "hyperseq.tracking_uri"
STOP_WAIT_S = 30                                 # driver's grace period after SIGINT
JOB_ENV = {"RAY_JOB_STOP_SIGNAL": "SIGINT",      # stop = Ctrl-C for `hyperseq run`
           "RAY_JOB_STOP_WAIT_TIME_S": str(STOP_WAIT_S),
           "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}   # no "View run at" per trial in logs


@dataclass(frozen=True)
class Submission:
    """A submitted job: its name (cluster job id = tracking job) and where it went."""

    name: str
    address: str
    tracking_uri: str
    entrypoint: str
    note: str = ""                   # e.g. "the sqlite store is a path on the head node"


def _remote_resources(address: str) -> Any:
    """`prepare_job` checks CPUs/GPUs against this machine unless a cluster is named."""
    return temp_env({"RAY_ADDRESS": address})


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


def _free_name(engine: Engine, space: str, options: dict[str, Any], uri: str) -> JobSpec:
    """The validated spec with a name free in the tracking store and on the cluster."""
    given = options.get("name")
    with tempfile.TemporaryDirectory(prefix="hyperseq-validate-") as tmp, _remote_resources(engine.address):
        # storage is checked by the driver, on the head: not against this machine
        local = {**options, "tracking_uri": uri, "storage": str(Path(tmp) / "none")}
        spec = prepare_job(space, **local)
        base = spec.name
        for k in range(2, 100):
            if not engine.exists(spec.name):
                return spec
            if given is not None:
                raise ClusterError(f"Invalid value for '--name': {given!r} a cluster job of that name "
                                   f"already exists on {engine.address}", 2)
            spec = prepare_job(space, **{**local, "name": f"{base}-r{k}"})
    raise ClusterError(f"no free job name like {base!r} on {engine.address}", 2)


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
    """The driver's shell command: ``python -m hyperseq.cli run ...`` with the validated options
    (every option of the table, as `run` would take it)."""
    options = spec.options.replace(storage=storage)
    return shlex.join(["python", "-m", "hyperseq.cli", "run", space_arg, *options.command_line()])


def submit(space: str, address: str | None, **options: Any) -> Submission:
    """Validate, probe both servers, then submit the search as a cluster job; return at once.

    `options` are `JobOptions` fields. Raises JobError / SpecError (invalid option or space) or
    ClusterError (exit_code 2: usage, 1: a server unreachable or refusing). Nothing is
    submitted or recorded on error.
    """
    url = resolve_address(address)
    auth_headers()                                       # a missing token is a usage error
    uri = cluster_tracking_uri(options.pop("tracking_uri", None) or default_tracking_uri())
    storage = _cluster_storage(options.pop("storage", None))
    _validate(space, url, options)
    check_tracking_server(uri)
    engine = connect(url)
    spec = _free_name(engine, space, options, uri)
    with tempfile.TemporaryDirectory(prefix="hyperseq-submit-") as tmp:
        command = entrypoint(stage(space, Path(tmp)), spec, storage)
        runtime_env = {"working_dir": tmp, "excludes": EXCLUDES, "env_vars": JOB_ENV}
        metadata = {META_JOB: spec.name, META_TRACKING: uri, "hyperseq.space": spec.space.name,
                    "hyperseq.searcher": spec.searcher}
        engine.submit(spec.name, command, runtime_env, metadata)
    note = "" if is_server(uri) else (f"MLflow store {uri} is a path on the head node: use an MLflow server "
                                       "(--tracking-uri http://HOST:5000) unless it shares this filesystem")
    return Submission(spec.name, engine.address, uri, command, note)
