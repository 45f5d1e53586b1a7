"""``hyperseq submit / status / logs / cancel``: search jobs on a Ray cluster.

``submit`` takes exactly ``run``'s options (both generated from the job option table) plus
``--address``; the other commands take a job name, the one ``submit`` printed. ``--address``
defaults to ``$RAY_ADDRESS`` (the dashboard URL, ``http://HEAD:8265``). Exit codes: 0 ok,
2 usage (invalid option, unknown job), 1 a server unreachable or refusing, 130 interrupted.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

import click

from .errors import option_error
from .options import job_options
from .output import emit_row

ADDRESS = dict(envvar="RAY_ADDRESS", default=None, metavar="URL",
               help="Ray dashboard URL, e.g. http://HEAD:8265 [default: $RAY_ADDRESS].")


def _quiet() -> None:
    """Ray's job SDK sets its loggers to INFO when imported ("Uploading package ..."): import
    it now, then keep warnings only."""
    import ray.job_submission  # noqa: F401
    for name in ("ray.dashboard.modules.dashboard_sdk", "ray.dashboard.modules.job.sdk"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _call(fn: Callable[..., Any], *args: Any, space: str | None = None) -> Any:
    """Run a cluster operation; its errors become one line with their exit code."""
    from ..cluster.access import ClusterError
    _quiet()
    try:
        return fn(*args)
    except (ClusterError, ValueError) as err:
        raise option_error(err, space) from None


def address_option(fn: Callable) -> Callable:
    return click.option("--address", **ADDRESS)(fn)


def tracking_option(fn: Callable) -> Callable:
    return click.option("--tracking-uri", default=None, metavar="URI",
                        help="MLflow store [default: the one the job was submitted with].")(fn)


def _submit(space: str, address: str | None, **options: Any) -> None:
    """Submit SPACE as a Ray job on the cluster; print the job name and return at once."""
    from ..cluster import submit
    sub = _call(lambda: submit.submit(space, address, **options), space=space)
    click.echo(sub.name)
    click.echo(f"submitted {sub.name} to {sub.address} (MLflow: {sub.tracking_uri}); watch it with "
               f"`hyperseq status {sub.name}` or `hyperseq logs {sub.name} --follow`", err=True)
    if sub.note:
        click.echo(f"note: {sub.note}", err=True)


submit = click.Command("submit", callback=_submit, help=_submit.__doc__,
                       short_help="Submit a search to a Ray cluster.",
                       params=[click.Argument(["space"]), *job_options(), click.Option(["--address"], **ADDRESS)])


@click.command()
@click.argument("job")
@address_option
@tracking_option
@click.option("--format", "fmt", type=click.Choice(("table", "json")), default="table", show_default=True)
def status(job: str, address: str | None, tracking_uri: str | None, fmt: str) -> None:
    """Ray's status of JOB and its progress in MLflow."""
    from ..cluster import control
    row = _call(control.job_status, address, job, tracking_uri)
    emit_row(row, fmt)
    if row["tracking_uri"] and not row["tracking_reachable"]:
        click.echo(f"note: tracking store {row['tracking_uri']} not reachable from here", err=True)


@click.command()
@click.argument("job")
@address_option
@click.option("--follow", "-f", is_flag=True, help="Stream until the job ends.")
def logs(job: str, address: str | None, follow: bool) -> None:
    """The output of JOB's driver (the `hyperseq run` on the head node)."""
    from ..cluster import control
    if follow:
        final = _call(control.follow_logs, address, job, lambda text: click.echo(text, nl=False))
        click.echo(f"job {job}: {final}", err=True)
    else:
        click.echo(_call(control.job_logs, address, job), nl=False)


@click.command()
@click.argument("job")
@address_option
@tracking_option
@click.option("--timeout", type=click.FloatRange(min=1), default=60.0, show_default=True,
              help="Seconds to wait for the job to stop.")
def cancel(job: str, address: str | None, tracking_uri: str | None, timeout: float) -> None:
    """Stop JOB; its MLflow runs end KILLED (closed from here if the driver could not)."""
    from ..cluster import control
    result = _call(control.cancel, address, job, tracking_uri, timeout)
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
    from ..cluster import control
    df, notes = _call(control.jobs_frame, address, tracking_uri)
    for note in notes:
        click.echo(f"note: {note}", err=True)
    return df


COMMANDS = (submit, status, logs, cancel)
