"""``hyperseq run / resume / best / jobs / ui``: search locally (or on `$RAY_ADDRESS`'s Ray),
query the store, open the UI.

Errors in arguments, options or the space spec print one line, ``Error: ...`` naming the
option or spec field and the value, on stderr and exit with status 2 — before Ray starts and
before anything is written to the store. An interrupted job exits 130.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

import click

from .errors import Fail, option_error
from .options import job_options
from .output import FORMATS, emit, front_title, report

TRACKING_HELP = "MLflow store [default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db]."
tracking_option = click.option("--tracking-uri", default=None, metavar="URI", help=TRACKING_HELP)


def _finish(result: Any) -> None:
    report(result)
    if result.status == "KILLED":
        raise Fail(f"job {result.name} interrupted (parent run KILLED)", 130)


def _run(space: str, **options: Any) -> None:
    """Search SPACE (a built-in name such as char_lm, or a YAML file)."""
    from ..jobs.options import JobError
    from ..jobs.run import execute
    from ..jobs.spec import prepare_job
    try:
        spec = prepare_job(space, **options)
    except ValueError as err:
        raise option_error(err, space) from None
    try:
        result = execute(spec, progress=True)
    except JobError as err:                          # cluster too small for one trial
        raise option_error(err) from None
    except KeyboardInterrupt:
        raise Fail(f"job {spec.name} interrupted (parent run KILLED)", 130) from None
    _finish(result)


run = click.Command("run", callback=_run, help=_run.__doc__, short_help="Run a search job.",
                    params=[click.Argument(["space"]), *job_options()])


@click.command()
@click.argument("job")
@tracking_option
@click.option("--storage", default=None, metavar="DIR",
              help="Ray Tune results root the job ran with [default: ~/ray_results]; Tune state "
                   "is read only from DIR/JOB.")
def resume(job: str, tracking_uri: str | None, storage: str | None) -> None:
    """Finish JOB after its driver died or was interrupted: finished trials keep their
    results, interrupted ones run again, the controller continues from its saved state."""
    from search_spaces import SpecError

    from ..jobs.options import JobError
    from ..jobs.resume import prepare_resume
    from ..tracking.query import JobNotFound
    try:
        spec, parent = prepare_resume(job, tracking_uri, storage)   # every check, before Ray is imported
        from ..jobs.run import resume_prepared
        result = resume_prepared(spec, parent, progress=True)
    except (JobError, JobNotFound, SpecError) as err:
        raise option_error(err) from None
    except KeyboardInterrupt:
        raise Fail(f"job {job} interrupted (parent run KILLED)", 130) from None
    _finish(result)


@click.command()
@click.argument("job", required=False)
@click.option("--top", type=int, default=10, show_default=True, help="Rows (0 = all).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--all", "all_jobs", is_flag=True, help="Rank trials across jobs.")
@click.option("--space", default=None, help="With --all: only jobs of this space.")
@click.option("--pareto", is_flag=True,
              help="JOB's Pareto front: its feasible non-dominated search trials, best first by "
                   "the first objective (one objective: its best trial).")
@tracking_option
def best(job: str | None, top: int, fmt: str, all_jobs: bool, space: str | None, pareto: bool,
         tracking_uri: str | None) -> None:
    """Top configurations of JOB (or of every job with --all) from MLflow."""
    from ..tracking.query import JobNotFound, best_across_jobs, best_configs
    if top < 0:
        raise Fail(f"Invalid value for '--top': {top!r} must be >= 0")
    if all_jobs == (job is not None):
        raise Fail("give either JOB or --all")
    if space is not None and not all_jobs:
        raise Fail("--space only applies with --all")
    if pareto and all_jobs:
        raise Fail("--pareto applies to one JOB, not --all (jobs may have other objectives)")
    try:
        if all_jobs:
            df = best_across_jobs(space, top=top or None, tracking_uri=tracking_uri)
        else:
            df = best_configs(job, top=top or None, tracking_uri=tracking_uri, pareto=pareto)
    except JobNotFound as err:
        raise option_error(err) from None
    emit(df, fmt, front_title(job, df) if pareto else f"best configurations: {job or 'all jobs'}")


@click.command()
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@tracking_option
@click.option("--address", default=None, metavar="URL",
              help="Join with this Ray cluster's jobs (dashboard URL, e.g. http://HEAD:8265) "
                   "[default: $RAY_ADDRESS when it is such a URL].")
def jobs(fmt: str, tracking_uri: str | None, address: str | None) -> None:
    """The jobs recorded in the store, newest first (joined with Ray's view with --address)."""
    import pandas as pd

    from ..cluster.access import dashboard_address_from_env
    from ..tracking.query import list_jobs
    address = address or dashboard_address_from_env()
    if address:
        from .cluster import cluster_jobs
        df = cluster_jobs(address, tracking_uri)
    else:
        df = list_jobs(tracking_uri)
    if fmt == "table":
        df = df.drop(columns=[c for c in ("run_id", "storage") if c in df.columns])
        if "start_time" in df.columns:
            df["start_time"] = pd.to_datetime(df["start_time"]).dt.strftime("%Y-%m-%d %H:%M:%S")
    emit(df, fmt, "jobs")


@click.command()
@tracking_option
@click.option("--port", type=click.IntRange(1, 65535), default=5000, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Bind address; 0.0.0.0 exposes the UI to the network.")
def ui(tracking_uri: str | None, port: int, host: str) -> None:
    """Open the MLflow UI on the job store; prints the address of the jobs' runs table."""
    from ..tracking.store import default_tracking_uri
    uri = tracking_uri or default_tracking_uri()
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", host,
           "--port", str(port), "--workers", "1"]          # one local user: one worker starts fast
    click.echo(f"MLflow UI for {uri} at {ui_url(host, port, _experiment_id(uri))}", err=True)
    sys.exit(_serve(cmd))


def ui_url(host: str, port: int, experiment_id: str | None = None) -> str:
    """The UI's address for a browser: the experiment's runs table (MLflow's route
    ``#/experiments/<id>/runs``), or the UI's front page when there is no experiment yet. A
    wildcard bind address (0.0.0.0, ::) is reached on this machine as 127.0.0.1."""
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"                                  # an IPv6 literal
    base = f"http://{host}:{port}"
    return f"{base}/#/experiments/{experiment_id}/runs" if experiment_id else base


def _experiment_id(uri: str) -> str | None:
    """The job experiment's id in the store at `uri`; None when there is no store or
    experiment yet (nothing is created), or the store cannot be read: the address is a
    convenience, and the UI itself reports what is wrong with its store."""
    from ..tracking.store import local_path, open_store
    path = local_path(uri)
    if path is not None and not path.exists():
        return None
    try:
        return open_store(uri).experiment_id()
    except Exception as err:                     # noqa: BLE001 - see the docstring
        click.echo(f"note: no experiment id from {uri}: {err}", err=True)
        return None


def _serve(cmd: list[str]) -> int:
    """Run `cmd` in its own process group and stop the whole group (mlflow, its uvicorn and
    workers) when this process gets SIGTERM, SIGINT or SIGHUP; the exit status."""
    proc = subprocess.Popen(cmd, start_new_session=True)

    def stop(signum: int, _frame: Any) -> None:
        _stop_group(proc)
        sys.exit(130 if signum == signal.SIGINT else 128 + signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)
    try:
        return proc.wait()
    finally:
        _stop_group(proc)                                  # also when mlflow exits first


def _stop_group(proc: subprocess.Popen, grace_s: float = 5.0) -> None:
    """SIGTERM the process group `proc` leads, then SIGKILL what is left after `grace_s`."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 1.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return
            proc.poll()
            time.sleep(0.1)


COMMANDS = (run, resume, best, jobs, ui)
