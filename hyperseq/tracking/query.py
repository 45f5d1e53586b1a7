"""Jobs and their best configurations from the tracking store, as pandas DataFrames.

Raw access is the `Store`; this module only shapes runs into tables: one row per trial
(rank, trial_id, reward, metric, params...) or per job (status, trials, best). A trial table
names its task metric and mode in ``df.attrs`` ("metric", "mode") when its jobs share one,
so a printed table can head the ``metric`` column with the metric's name. A job's Pareto
front (`pareto_configs`) is a trial table of its front's rows, its points from `front`.
"""
from __future__ import annotations

import math
from typing import Any

import pandas as pd

from .front import recorded_objectives, search_points
from .mlflow_store import trial_config
from .store import default_tracking_uri, open_store
from .tags import (TAG_DEFAULT, TAG_JOB, TAG_METRIC, TAG_MODE, TAG_PHASE, TAG_SEARCHER, TAG_SPACE,
                   TAG_STOPPED, TAG_STORAGE, TAG_TASK, TAG_TRIAL)

TRIAL_COLUMNS = ["rank", "trial_id", "phase", "reward", "metric", "status", "epochs", "stopped_early",
                 "default", "train_seconds", "trained_units", "job", "run_id"]
JOB_COLUMNS = ["job", "status", "searcher", "space", "task", "metric", "best", "trials_done", "trials",
               "best_reward", "start_time", "run_id", "storage"]


class JobNotFound(LookupError):
    """No job of that name in the store."""


def _uri(tracking_uri: str | None) -> str:
    return tracking_uri or default_tracking_uri()


def _latest(run: Any, key: str) -> float:
    value = run.data.metrics.get(key)
    return float(value) if value is not None else math.nan


def job_run(job: str, tracking_uri: str | None = None) -> Any:
    """The parent run of `job`; JobNotFound names the store when there is none."""
    uri = _uri(tracking_uri)
    runs = open_store(uri).job_runs(job)
    if not runs:
        raise JobNotFound(f"no job named {job!r} in {uri}")
    return runs[0]


def _trial_rows(uri: str, parent: Any, runs: list[Any] | None = None) -> list[dict[str, Any]]:
    """One row per trial run of `parent` (or per run of `runs`, some of them)."""
    metric = parent.data.tags.get(TAG_METRIC, "")
    job = parent.data.tags.get(TAG_JOB, "")
    constrained = bool(recorded_objectives(parent)[1])   # its trials log `feasible`; unmarked = not
    rows = []
    for run in open_store(uri).trial_runs(parent.info.run_id) if runs is None else runs:
        value = _latest(run, f"best_{metric}")
        rows.append({
            "trial_id": run.data.tags.get(TAG_TRIAL, run.info.run_name),
            "reward": _latest(run, "reward"),
            "metric": value if not math.isnan(value) else _latest(run, metric),
            "status": run.info.status,
            "epochs": _latest(run, "epoch"),
            "stopped_early": run.data.tags.get(TAG_STOPPED) == "true",
            "phase": run.data.tags.get(TAG_PHASE, "search"),
            "default": run.data.tags.get(TAG_DEFAULT) == "true",
            "train_seconds": _latest(run, "train_seconds"),
            "trained_units": _latest(run, "trained_units"),
            "job": job, "run_id": run.info.run_id,
            "_config": trial_config(run), "_task": parent.data.tags.get(TAG_TASK),
            "_metric": (metric, parent.data.tags.get(TAG_MODE)),
            "_feasible": _latest(run, "feasible") == 1 if constrained else True,
        })
    return rows


def task_defaults(task: str | None, columns: list[str]) -> dict[str, Any]:
    """The task's default value of each config column: what the final phase's default run
    (config ``{}``) trained with. A per-layer column ``name_k`` takes ``name``'s default up to
    the default depth (``layers``). {} for an unknown task."""
    import re

    from tasks import TASKS, get_task
    if task not in TASKS:
        return {}
    t = get_task(task)
    defaults = t.defaults
    if not columns:
        return {k: v for k, v in defaults.items() if v is not None}
    out = {}
    for column in columns:
        layer = re.fullmatch(r"(\w+)_([1-9][0-9]*)", column)
        if column in defaults:
            out[column] = defaults[column]
        elif layer and layer.group(1) in t.per_layer and int(layer.group(2)) <= int(defaults.get("layers", 1)):
            out[column] = defaults[layer.group(1)]
    return out


def _rank(rows: list[dict[str, Any]], top: int | None) -> pd.DataFrame:
    """Feasible trials first (a constrained job's answer must respect its constraints), then
    final-phase trials (a job's answer is its full-budget winner), then best reward first
    (failed trials last); one row per trial, params as columns."""
    if not rows:
        return pd.DataFrame(columns=TRIAL_COLUMNS)
    df = pd.DataFrame(rows).sort_values("reward", ascending=False, na_position="last", kind="stable")
    df = df.sort_values("phase", key=lambda phase: phase != "final", kind="stable")
    df = df.sort_values("_feasible", ascending=False, kind="stable")
    df = df.drop_duplicates(["job", "trial_id"])       # a retried trial keeps its best run
    return _table(df.head(top) if top else df)


def _table(df: pd.DataFrame, extra: list[str] | None = None) -> pd.DataFrame:
    """Ranked rows (in order) as the trial table: rank, TRIAL_COLUMNS (after trial_id and
    phase, the `extra` columns), then one column per param."""
    columns = TRIAL_COLUMNS[:3] + list(extra or []) + [c for c in TRIAL_COLUMNS[3:] if c not in (extra or ())]
    configs = pd.DataFrame(list(df.pop("_config")), index=df.index, dtype=object)
    configs = configs[[c for c in configs.columns if c not in columns]]
    for i in df.index[df["default"].to_numpy(bool)]:                  # config {}: every key at the task's default
        for key, value in task_defaults(df.at[i, "_task"], list(configs.columns)).items():
            if key not in configs.columns or pd.isna(configs.at[i, key]):
                configs.loc[i, key] = value
    metrics = set(df.pop("_metric"))
    df.insert(0, "rank", range(1, len(df) + 1))
    out = pd.concat([df[columns], configs], axis=1).reset_index(drop=True)
    if len(metrics) == 1:
        out.attrs["metric"], out.attrs["mode"] = metrics.pop()
    return out


def best_configs(job: str, top: int | None = 10, tracking_uri: str | None = None,
                 pareto: bool = False) -> pd.DataFrame:
    """Top `top` configurations of a job by reward: rank, trial_id, reward, metric, ..., params.

    With `pareto`, the job's Pareto front instead (`pareto_configs`): its feasible
    non-dominated search trials, best first by the first objective, with a column per
    objective and constrained metric and ``feasible``; a job with one objective gives its best
    feasible trial."""
    uri = _uri(tracking_uri)
    parent = job_run(job, uri)
    if pareto:
        return pareto_configs(uri, parent, top)
    return _rank(_trial_rows(uri, parent), top)


def pareto_configs(uri: str, parent: Any, top: int | None = None) -> pd.DataFrame:
    """The Pareto front of a job (`front.search_points`: its search trials, each objective at
    the trial's best epoch by the first): one row per feasible non-dominated trial, best first
    by the first objective, `top` of them (None: all). After trial_id and phase come the
    objective columns (named by their metrics, in their own direction), the constraint metrics
    and ``feasible``. ``df.attrs``: "objectives" and "constraints" (as given to the job),
    "front_size" (the whole front's, before `top`) and "front_columns" (those columns). A job
    with one objective has a front of its best feasible trial (several on a tie)."""
    objectives, constraints, points = search_points(uri, parent)
    front = sorted((p for p in points if p.on_front), key=lambda p: p.point or [])
    rows = _trial_rows(uri, parent, [p.run for p in front])
    names = list(dict.fromkeys([o.name for o in objectives] + [c.name for c in constraints]))
    for row, p in zip(rows, front):
        row.update({name: p.values.get(name, math.nan) for name in names}, feasible=p.feasible)
    if rows:
        out = _table(pd.DataFrame(rows).head(top or len(rows)), names + ["feasible"])
    else:
        out = pd.DataFrame(columns=TRIAL_COLUMNS[:3] + names + ["feasible"] + TRIAL_COLUMNS[3:])
    out.attrs.update(objectives=[str(o) for o in objectives], constraints=[str(c) for c in constraints],
                     front_size=len(front), front_columns=names + ["feasible"])
    return out


def best_across_jobs(space: str | None = None, top: int | None = 10,
                     tracking_uri: str | None = None) -> pd.DataFrame:
    """Top configurations over every job (of one space, if given)."""
    uri = _uri(tracking_uri)
    rows: list[dict[str, Any]] = []
    for parent in open_store(uri).job_runs():
        if space is None or parent.data.tags.get(TAG_SPACE) == space:
            rows += _trial_rows(uri, parent)
    return _rank(rows, top)


def list_jobs(tracking_uri: str | None = None) -> pd.DataFrame:
    """One row per job, newest first: status, trials completed / requested, the best trial's
    metric value (``best``, in the task metric named by ``metric``) and its reward."""
    from workers.rewards import reward_rule
    uri = _uri(tracking_uri)
    rows = []
    for run in open_store(uri).job_runs():
        tags, params = run.data.tags, run.data.params
        metric, mode, best = tags.get(TAG_METRIC), tags.get(TAG_MODE), _latest(run, "best_reward")
        rows.append({
            "job": tags.get(TAG_JOB), "status": run.info.status,
            "searcher": tags.get(TAG_SEARCHER), "space": tags.get(TAG_SPACE),
            "task": tags.get(TAG_TASK), "metric": metric,
            "best": reward_rule(metric, mode).metric_of(best) if metric and mode in ("min", "max") else None,
            "trials_done": int(run.data.metrics.get("trials_completed", 0)),
            "trials": int(params["trials"]) if params.get("trials", "").isdigit() else None,
            "best_reward": best,
            "start_time": pd.to_datetime(run.info.start_time, unit="ms"),
            "run_id": run.info.run_id, "storage": tags.get(TAG_STORAGE),
        })
    return pd.DataFrame(rows, columns=JOB_COLUMNS)
