"""Warm start: a new job's searcher learns from the trials of earlier jobs of the same space
before its first proposal (`--warm-start JOB[,JOB...]` or `auto`).

The rnn controller is pre-trained on them off-policy; TPE gets them as completed trials
(`add_trial`), so a comparison stays fair; random search ignores them (`Searcher.warm_start`).
Only search-phase trials that finished with a reward count.
"""
from __future__ import annotations

import math
from typing import Any

from ..tracking import tags as T
from ..tracking.mlflow_store import trial_config
from ..tracking.store import open_store
from .options import JobError

AUTO = "auto"


def resolve(value: str | None, space: str, uri: str) -> str | None:
    """The jobs to learn from, checked: each exists in the store and searched `space`.

    ``auto``: every FINISHED job of that space (None when there is none).
    """
    if not value:
        return None
    store = open_store(uri)
    if value == AUTO:
        jobs = [r.data.tags.get(T.TAG_JOB) for r in store.job_runs()
                if r.data.tags.get(T.TAG_SPACE) == space and r.info.status == "FINISHED"]
        return ",".join(sorted(j for j in jobs if j)) or None
    for job in value.split(","):
        runs = store.job_runs(job)
        if not runs:
            raise JobError("warm_start", job, f"no job of that name in {uri}")
        other = runs[0].data.tags.get(T.TAG_SPACE)
        if other != space:
            raise JobError("warm_start", job, f"searched space {other!r}, not {space!r}")
    return value


def history(jobs: str | None, uri: str) -> tuple[list[dict[str, Any]], list[float]]:
    """(configs, rewards) of the finished search trials of `jobs`, in the order they started."""
    store, rows = open_store(uri), []
    for job in (jobs or "").split(",") if jobs else []:
        for parent in store.job_runs(job):
            for run in store.trial_runs(parent.info.run_id):
                reward = run.data.metrics.get("reward")
                if run.data.tags.get(T.TAG_PHASE, "search") != "search" or reward is None \
                        or not math.isfinite(reward) or run.info.status not in ("FINISHED", "FAILED"):
                    continue
                rows.append((run.info.start_time, trial_config(run), float(reward)))
    rows.sort(key=lambda r: r[0])
    return [c for _, c, _ in rows], [r for _, _, r in rows]
