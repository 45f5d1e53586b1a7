"""What the commands print: tables (rich), csv or json on stdout; notes on stderr."""
from __future__ import annotations

import json
import sys
from typing import Any

import click

FORMATS = ("table", "csv", "json")
TABLE_COLUMNS = 8                     # params shown in the rich table beside the fixed columns
STATUS_FIELDS = ("job", "ray_status", "message", "status", "trials_done", "trials", "best_reward",
                 "start_time", "end_time", "tracking_uri", "run_id")


def emit(df: Any, fmt: str, title: str) -> None:
    """table (rich), csv or json on stdout; csv/json carry nothing else."""
    if fmt == "csv":
        click.echo(df.to_csv(index=False), nl=False)
    elif fmt == "json":
        click.echo(df.to_json(orient="records", date_format="iso"))
    else:
        print_table(df, title)


def print_table(df: Any, title: str, metric: str | None = None) -> None:
    """A rich table. A trial table speaks in its task metric: the ``metric`` column is headed
    with the metric's name (`metric`, else ``df.attrs["metric"]``) and comes before ``reward``,
    which stays as the searchers' view of the same number. Of its params, the first
    `TABLE_COLUMNS` that vary between the searched rows (the default row aside) are shown, then
    fixed ones if there is room."""
    from rich.console import Console
    from rich.table import Table
    table = Table(title=title)
    drop = {"run_id", "job", "stopped_early", "trained_units"} if "trial_id" in df.columns else set()
    columns = [c for c in df.columns if c not in drop]
    if "trial_id" in df.columns:                       # params that vary first: what was searched
        from ..tracking.query import TRIAL_COLUMNS
        fixed = [*TRIAL_COLUMNS, *df.attrs.get("front_columns", ())]      # a front's objectives too
        searched = df[~df["default"].astype(bool)] if "default" in df.columns else df   # not the task's defaults
        params = sorted((c for c in columns if c not in fixed),
                        key=lambda c: searched[c].astype(str).nunique() <= 1)
        columns = [c for c in columns if c in fixed] + params[:TABLE_COLUMNS]
        if "metric" in columns and "reward" in columns:
            columns.remove("metric")
            columns.insert(columns.index("reward"), "metric")
    metric = metric or getattr(df, "attrs", {}).get("metric")
    if metric in columns and "metric" in columns:      # a front's objective column says it by name
        columns.remove("metric")
    headers = {"metric": metric} if metric and "trial_id" in df.columns and metric not in df.columns else {}
    for c in columns:
        table.add_column(str(headers.get(c, c)), overflow="fold")
    for _, row in df.iterrows():
        table.add_row(*(_cell(row[c]) for c in columns))
    Console(width=200 if not sys.stdout.isatty() else None).print(table)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:       # a count (params): every digit
            return str(int(value))
        return "" if value != value else f"{value:.4g}"
    return "" if value is None else str(value)


def front_title(job: str, df: Any) -> str:
    """The title of JOB's Pareto front table (its objectives and constraints); what a reader
    should know about the rows (one objective, none feasible, cut by --top) goes to stderr."""
    objectives, constraints = df.attrs.get("objectives", []), df.attrs.get("constraints", [])
    size = df.attrs.get("front_size", len(df))
    if len(objectives) == 1:
        click.echo(f"note: job {job} has one objective ({objectives[0]}): its front is its best "
                   "feasible search trial", err=True)
    if size == 0:
        click.echo(f"note: job {job} has no feasible search trial with every objective recorded", err=True)
    elif len(df) < size:
        click.echo(f"note: showing {len(df)} of the front's {size} trials (--top 0 for all)", err=True)
    return f"Pareto front: {job} ({', '.join(objectives)}{'; ' if constraints else ''}{', '.join(constraints)})"


def emit_row(row: dict[str, Any], fmt: str) -> None:
    """One job's status: ``key value`` lines, or one JSON object."""
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


def report(result: Any) -> None:
    """The top of a job's table on stdout, its status line on stderr."""
    mode = getattr(result.trials, "attrs", {}).get("mode")
    better = {"min": ", lower is better", "max": ", higher is better"}.get(mode, "")
    print_table(result.trials.head(10), f"{result.name}: top configurations ({result.metric}{better})",
                result.metric)
    click.echo(f"job {result.name}  status {result.status}  parent run {result.parent_run_id}  "
               f"store {result.tracking_uri}", err=True)
