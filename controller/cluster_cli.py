"""`hyperseq submit / status / logs / cancel`: search jobs on a Ray cluster (Ray's Jobs API).

`register(cli)` adds the commands to the main group. ``submit`` takes exactly ``run``'s
options (copied from the ``run`` command, so defaults, types and errors stay the same) plus
``--address``; the other commands take a job name, the one ``submit`` printed.
``--address`` defaults to ``$RAY_ADDRESS`` (the dashboard URL, ``http://HEAD:8265``).

Exit codes: 0 ok, 2 usage (invalid option, unknown job), 1 a server unreachable or refusing,
130 interrupted. Errors are one line on stderr.
"""
from __future__ import annotations

import copy
import json
import logging
import sys
from typing import Any, Callable

import click

from .cluster_access import ClusterError

STATUS_FIELDS = ("job", "ray_status", "message", "status", "trials_done", "trials", "best_reward",
                 "start_time", "end_time", "tracking_uri", "run_id")


class ClusterFail(click.ClickException):
    """One line on stderr with the error's exit code (the main group prints it)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _quiet() -> None:
    """Ray's job SDK sets its loggers to INFO when imported ("Uploading package ..."): import
    it now, then keep warnings only."""
    import ray.job_submission  # noqa: F401
    for name in ("ray.dashboard.modules.dashboard_sdk", "ray.dashboard.modules.job.sdk"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _fail(err: Exception, space: str | None = None) -> click.ClickException:
    if isinstance(err, ClusterError):
        return ClusterFail(str(err), err.exit_code)
    from .cli import _option_error                       # JobError / SpecError, as `run` words them
    return _option_error(err, space)


ADDRESS = dict(envvar="RAY_ADDRESS", default=None, metavar="URL",
               help="Ray dashboard URL, e.g. http://HEAD:8265 [default: $RAY_ADDRESS].")


def address_option(fn: Callable) -> Callable:
    return click.option("--address", **ADDRESS)(fn)


def tracking_option(fn: Callable) -> Callable:
    return click.option("--tracking-uri", default=None, metavar="URI",
                        help="MLflow store [default: the one the job was submitted with].")(fn)


def _emit_row(row: dict[str, Any], fmt: str) -> None:
    row = {k: row.get(k) for k in STATUS_FIELDS}
    if fmt == "json":
        click.echo(json.dumps({k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}))
        return
    for k, v in row.items():
        if v is None or v == "":
            continue
        if isinstance(v, float):
            v = f"{v:.4g}"
        elif hasattr(v, "strftime"):
            v = v.strftime("%Y-%m-%d %H:%M:%S")
        elif isinstance(v, str) and "\n" in v:                 # Ray's FAILED message carries the logs
            v = v.splitlines()[0] + "  (see `hyperseq logs`)"
        click.echo(f"{k:<13}{v}")


# ---- commands ----------------------------------------------------------------------------------
def _submit(space: str, address: str | None, **options: Any) -> None:
    """Submit SPACE as a Ray job on the cluster; print the job name and return at once."""
    from . import cluster
    _quiet()
    try:
        sub = cluster.submit(space, address, **options)
    except (ClusterError, ValueError) as err:
        raise _fail(err, space) from None
    click.echo(sub.name)
    click.echo(f"submitted {sub.name} to {sub.address} (MLflow: {sub.tracking_uri}); watch it with "
               f"`hyperseq status {sub.name}` or `hyperseq logs {sub.name} --follow`", err=True)
    if sub.note:
        click.echo(f"note: {sub.note}", err=True)


@click.command()
@click.argument("job")
@address_option
@tracking_option
@click.option("--format", "fmt", type=click.Choice(("table", "json")), default="table", show_default=True)
def status(job: str, address: str | None, tracking_uri: str | None, fmt: str) -> None:
    """Ray's status of JOB and its progress in MLflow."""
    from . import cluster
    _quiet()
    try:
        row = cluster.job_status(address, job, tracking_uri)
    except ClusterError as err:
        raise _fail(err) from None
    _emit_row(row, fmt)
    if row["tracking_uri"] and not row["tracking_reachable"]:
        click.echo(f"note: tracking store {row['tracking_uri']} not reachable from here", err=True)


@click.command()
@click.argument("job")
@address_option
@click.option("--follow", "-f", is_flag=True, help="Stream until the job ends.")
def logs(job: str, address: str | None, follow: bool) -> None:
    """The output of JOB's driver (the `hyperseq run` on the head node)."""
    from . import cluster
    _quiet()
    try:
        if follow:
            final = cluster.follow_logs(address, job, lambda text: click.echo(text, nl=False))
            click.echo(f"job {job}: {final}", err=True)
        else:
            click.echo(cluster.job_logs(address, job), nl=False)
    except ClusterError as err:
        raise _fail(err) from None


@click.command()
@click.argument("job")
@address_option
@tracking_option
@click.option("--timeout", type=click.FloatRange(min=1), default=60.0, show_default=True,
              help="Seconds to wait for the job to stop.")
def cancel(job: str, address: str | None, tracking_uri: str | None, timeout: float) -> None:
    """Stop JOB; its MLflow runs end KILLED (closed from here if the driver could not)."""
    from . import cluster
    _quiet()
    try:
        result = cluster.cancel(address, job, tracking_uri, timeout)
    except ClusterError as err:
        raise _fail(err) from None
    if result.stopped:
        click.echo(f"job {job} stopped: {result.ray_status}")
    else:
        click.echo(f"job {job} had already ended: {result.ray_status}")
    if result.closed_runs:
        click.echo(f"closed {len(result.closed_runs)} MLflow run(s) the driver left open", err=True)
    if result.note:
        click.echo(f"note: {result.note}", err=True)


def cluster_jobs(address: str, tracking_uri: str | None) -> Any:
    """`jobs --address`: the joined DataFrame (notes on stderr); one-line errors with exit codes."""
    from . import cluster
    _quiet()
    try:
        df, notes = cluster.jobs_frame(address, tracking_uri)
    except ClusterError as err:
        raise _fail(err) from None
    for note in notes:
        click.echo(f"note: {note}", err=True)
    return df


def submit_command(run: click.Command) -> click.Command:
    """``submit``: ``run``'s argument and options (copied) plus ``--address``."""
    params = [copy.deepcopy(p) for p in run.params] + [click.Option(["--address"], **ADDRESS)]
    return click.Command("submit", callback=_submit, params=params, help=_submit.__doc__,
                         short_help="Submit a search to a Ray cluster.")


def register(cli: click.Group) -> None:
    """Add submit, status, logs and cancel to the main `hyperseq` group."""
    cli.add_command(submit_command(cli.commands["run"]))
    for command in (status, logs, cancel):
        cli.add_command(command)


if __name__ == "__main__":                  # python -m controller.cluster_cli (before cli.py wires it)
    from .cli import cli as _main
    register(_main)
    _main(sys.argv[1:])
