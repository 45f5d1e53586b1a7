"""`hyperseq` command line: run or resume a search, list jobs, show the best configurations,
open the UI.

Errors in arguments, options or the space spec print one line, ``Error: ...`` naming the
option or spec field and the value, on stderr and exit with status 2 — before Ray starts and
before anything is written to MLflow. An interrupted job exits 130.
"""
from __future__ import annotations

import logging
import subprocess
import sys
from typing import Any

import click

from search_spaces import SpecError

SEARCHER_CHOICES = ("rnn", "random", "tpe")
FORMATS = ("table", "csv", "json")
TABLE_COLUMNS = 8                     # params shown in the rich table beside the fixed columns


class _Fail(click.ClickException):
    """A one-line error with a chosen exit code."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class OneLineErrors(click.Group):
    """Click group whose usage errors are one line on stderr (no usage block), exit 2."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        try:
            return super().main(args, prog_name or "hyperseq", complete_var, standalone_mode=False, **extra)
        except click.ClickException as err:
            click.echo(f"Error: {err.format_message()}", err=True)
            sys.exit(err.exit_code)
        except click.exceptions.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(130)


def _option_error(err: Exception, space: str | None = None) -> _Fail:
    """JobError / SpecError / JobNotFound -> a message naming the option or field."""
    from .options import JobError
    from .tracking_query import JobNotFound
    if isinstance(err, JobError):
        flag = "JOB" if err.param == "job" else "--" + err.param.replace("_", "-")
        return _Fail(f"Invalid value for '{flag}': {err.value!r} {err.reason}")
    if isinstance(err, SpecError):
        where = f" {space}" if space and not str(err).startswith(space) and err.path != "SPACE" else ""
        return _Fail(f"Invalid space{where}: {err}")
    if isinstance(err, JobNotFound):
        return _Fail(str(err))
    return _Fail(str(err))


def _quiet_logs() -> None:
    for name in ("mlflow", "alembic", "ray", "optuna"):
        logging.getLogger(name).setLevel(logging.WARNING)


@click.group(cls=OneLineErrors)
def cli() -> None:
    """AutoML for sequence models: an RNN controller (NAS-RL) writes hyperparameter configs,
    Ray Tune trains them, MLflow records every job and trial."""
    _quiet_logs()


tracking_option = click.option("--tracking-uri", default=None, metavar="URI",
                               help="MLflow store [default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db].")


@cli.command()
@click.argument("space")
@click.option("--searcher", type=click.Choice(SEARCHER_CHOICES), default="rnn", show_default=True)
@click.option("--trials", type=int, default=20, show_default=True, help="Child models to train.")
@click.option("--concurrency", type=int, default=2, show_default=True, help="Trials at once.")
@click.option("--epochs", type=int, default=3, show_default=True, help="Epoch budget per trial.")
@click.option("--scheduler", type=click.Choice(("none", "asha")), default="none", show_default=True)
@click.option("--gpus-per-trial", type=float, default=0.0, show_default=True,
              help="GPU share per trial; 0.25 packs four trials on one GPU.")
@click.option("--cpus-per-trial", type=float, default=1.0, show_default=True)
@click.option("--name", default=None, help="Job name [default: <space>-<searcher>-<timestamp>].")
@tracking_option
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--max-failures", type=int, default=2, show_default=True,
              help="Retries of a trial whose worker crashed.")
@click.option("--storage", default=None, metavar="DIR", help="Ray Tune results [default: ~/ray_results].")
@click.option("--controller-options", default="", metavar="K=V,...",
              help="rnn Controller options, e.g. lr=0.01,elite_size=0 (see ControllerOptions).")
def run(space: str, searcher: str, trials: int, concurrency: int, epochs: int, scheduler: str,
        gpus_per_trial: float, cpus_per_trial: float, name: str | None, tracking_uri: str | None,
        seed: int, max_failures: int, storage: str | None, controller_options: str) -> None:
    """Search SPACE (a built-in name such as char_lm, or a YAML file)."""
    from .jobs import execute, prepare_job
    from .options import JobError
    try:
        spec = prepare_job(space, searcher=searcher, trials=trials, concurrency=concurrency,
                           epochs=epochs, scheduler=scheduler, gpus_per_trial=gpus_per_trial,
                           cpus_per_trial=cpus_per_trial, name=name, tracking_uri=tracking_uri,
                           seed=seed, max_failures=max_failures, storage=storage,
                           controller_options=controller_options)
    except ValueError as err:
        raise _option_error(err, space) from None
    try:
        result = execute(spec, progress=True)
    except JobError as err:                          # cluster too small for one trial
        raise _option_error(err) from None
    except KeyboardInterrupt:
        raise _Fail(f"job {spec.name} interrupted (parent run KILLED)", 130) from None
    _report(result)


@cli.command()
@click.argument("job")
@tracking_option
def resume(job: str, tracking_uri: str | None) -> None:
    """Finish JOB after its driver died or was interrupted: finished trials keep their
    results, interrupted ones run again, the controller continues from its saved state."""
    from .jobs import resume_search
    from .options import JobError
    from .tracking_query import JobNotFound
    try:
        result = resume_search(job, tracking_uri=tracking_uri, progress=True)
    except (JobError, JobNotFound, SpecError) as err:
        raise _option_error(err) from None
    except KeyboardInterrupt:
        raise _Fail(f"job {job} interrupted (parent run KILLED)", 130) from None
    _report(result)


def _report(result: Any) -> None:
    """The top of a job's table on stdout, its status line on stderr; exit 130 if KILLED."""
    _print_table(result.trials.head(10), f"{result.name}: top configurations ({result.metric})")
    click.echo(f"job {result.name}  status {result.status}  parent run {result.parent_run_id}  "
               f"store {result.tracking_uri}", err=True)
    if result.status == "KILLED":
        raise _Fail(f"job {result.name} interrupted (parent run KILLED)", 130)


@cli.command()
@click.argument("job", required=False)
@click.option("--top", type=int, default=10, show_default=True, help="Rows (0 = all).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--all", "all_jobs", is_flag=True, help="Rank trials across jobs.")
@click.option("--space", default=None, help="With --all: only jobs of this space.")
@tracking_option
def best(job: str | None, top: int, fmt: str, all_jobs: bool, space: str | None,
         tracking_uri: str | None) -> None:
    """Top configurations of JOB (or of every job with --all) from MLflow."""
    from .tracking_query import JobNotFound, best_across_jobs, best_configs
    if top < 0:
        raise _Fail(f"Invalid value for '--top': {top!r} must be >= 0")
    if all_jobs == (job is not None):
        raise _Fail("give either JOB or --all")
    if space is not None and not all_jobs:
        raise _Fail("--space only applies with --all")
    try:
        if all_jobs:
            df = best_across_jobs(space, top=top or None, tracking_uri=tracking_uri)
        else:
            df = best_configs(job, top=top or None, tracking_uri=tracking_uri)
    except JobNotFound as err:
        raise _option_error(err) from None
    _emit(df, fmt, f"best configurations: {job or 'all jobs'}")


@cli.command()
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@tracking_option
@click.option("--address", default=None, metavar="URL",
              help="Join with this Ray cluster's jobs (dashboard URL, e.g. http://HEAD:8265) "
                   "[default: $RAY_ADDRESS when it is such a URL].")
def jobs(fmt: str, tracking_uri: str | None, address: str | None) -> None:
    """The jobs recorded in the store, newest first (joined with Ray's view with --address)."""
    import pandas as pd

    from .cluster_access import dashboard_address_from_env
    from .tracking_query import list_jobs
    address = address or dashboard_address_from_env()
    if address:
        from .cluster_cli import cluster_jobs
        df = cluster_jobs(address, tracking_uri)
    else:
        df = list_jobs(tracking_uri)
    if fmt == "table":
        df = df.drop(columns=[c for c in ("run_id", "storage") if c in df.columns])
        if "start_time" in df.columns:
            df["start_time"] = pd.to_datetime(df["start_time"]).dt.strftime("%Y-%m-%d %H:%M:%S")
    _emit(df, fmt, "jobs")


@cli.command()
@tracking_option
@click.option("--port", type=click.IntRange(1, 65535), default=5000, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Bind address; 0.0.0.0 exposes the UI to the network.")
def ui(tracking_uri: str | None, port: int, host: str) -> None:
    """Open the MLflow UI on the job store."""
    from workers.tracking import default_tracking_uri
    uri = tracking_uri or default_tracking_uri()
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", host,
           "--port", str(port), "--workers", "1"]          # one local user: one worker starts fast
    click.echo(f"MLflow UI for {uri} at http://{host}:{port}", err=True)
    try:
        sys.exit(subprocess.call(cmd))
    except KeyboardInterrupt:
        sys.exit(130)


# ---- output ------------------------------------------------------------------------------------
def _emit(df: Any, fmt: str, title: str) -> None:
    """table (rich), csv or json on stdout; csv/json carry nothing else."""
    if fmt == "csv":
        click.echo(df.to_csv(index=False), nl=False)
    elif fmt == "json":
        click.echo(df.to_json(orient="records", date_format="iso"))
    else:
        _print_table(df, title)


def _print_table(df: Any, title: str) -> None:
    from rich.console import Console
    from rich.table import Table
    table = Table(title=title)
    drop = {"run_id", "job", "stopped_early"} if "trial_id" in df.columns else set()
    columns = [c for c in df.columns if c not in drop]
    if "trial_id" in df.columns:
        fixed = columns.index("epochs") + 1
        columns = columns[: fixed + TABLE_COLUMNS]
    for c in columns:
        table.add_column(str(c), overflow="fold")
    for _, row in df.iterrows():
        table.add_row(*(_cell(row[c]) for c in columns))
    Console(width=200 if not sys.stdout.isatty() else None).print(table)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "" if value != value else f"{value:.4g}"
    return "" if value is None else str(value)


# Cluster commands (submit, status, logs, cancel) live in `cluster_cli`, next to Ray's Jobs API.
from .cluster_cli import register as _register_cluster_commands  # noqa: E402

_register_cluster_commands(cli)


def main() -> None:
    """Console-script entry point."""
    cli()


if __name__ == "__main__":
    main()
