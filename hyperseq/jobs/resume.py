"""Resuming a job after its driver died: validation, and closing the interrupted trials' runs.

What a resume needs is recorded when the job starts (`run.execute`): the parent run's
``hyperseq.storage`` tag (the Ray Tune experiment directory, which holds Tune's trial states
and the searcher checkpoint), its ``hyperseq.options`` tag (the options, typed JSON) and its
``space.yaml`` artifact. `prepare_resume` rebuilds the `JobSpec` from those, before Ray starts
and without writing anything. `close_interrupted` then reconciles MLflow with Tune's last
experiment checkpoint, so that each trial ends with exactly one FINISHED run.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from search_spaces import load_space
from workers.rewards import reward_rule

from ..tracking import tags as T
from ..tracking.query import JobNotFound
from ..tracking.store import default_tracking_uri, open_store
from .options import JobError, JobOptions, check_name
from .spec import JobSpec, check_space

DONE = ("TERMINATED", "ERROR")          # Tune trial states that will not run again


def prepare_resume(job: str, tracking_uri: str | None = None) -> tuple[JobSpec, Any]:
    """(spec, parent run) of a job that can be resumed.

    JobError (param ``job``) for a bad name, a FINISHED job or missing state; JobNotFound for
    a job not in the store. Reads the store, never creates it.
    """
    check_name("job", job)
    uri = tracking_uri or default_tracking_uri()
    store = open_store(uri)
    runs = store.job_runs(job)
    if not runs:
        raise JobNotFound(f"no job named {job!r} in {uri}")
    parent = runs[0]
    if parent.info.status == "FINISHED":
        raise JobError("job", job, f"is already FINISHED in {uri}: nothing to resume")
    raw, path = parent.data.tags.get(T.TAG_OPTIONS), parent.data.tags.get(T.TAG_STORAGE)
    if not raw or not path:
        raise JobError("job", job, "was recorded without its options or Tune storage path; "
                       "it cannot be resumed")
    from ray import tune
    if not tune.Tuner.can_restore(path):
        raise JobError("job", job, f"has no Ray Tune experiment state at {path}")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = store.download_artifact(parent.info.run_id, "space.yaml", tmp)
        except Exception as err:                        # noqa: BLE001 - MLflow raises several kinds
            raise JobError("job", job, f"its space.yaml artifact cannot be read: {err}") from None
        space, metric, mode = check_space(load_space(local))
    options = JobOptions.checked(**json.loads(raw), name=job, tracking_uri=uri,
                                 storage=str(Path(path).parent))
    tags = parent.data.tags
    metric, mode = tags.get(T.TAG_METRIC) or metric, tags.get(T.TAG_MODE) or mode
    return JobSpec(options, space, space.task, metric, mode, reward_rule(metric, mode), Path(path).parent), parent


def close_interrupted(uri: str, parent_run_id: str, experiment_path: str) -> list[float | None]:
    """End the trial runs a crash left open; return the rewards of the trials already done.

    Tune's experiment state says which trials are done (TERMINATED or ERROR: not run again);
    the others will run again from the start. So a RUNNING trial run ends KILLED (tag
    ``hyperseq.interrupted``) unless Tune has its trial done (then FINISHED: only the close was
    lost), and a FINISHED run of a trial Tune will run again (it ended after Tune's last
    checkpoint) ends KILLED (tag ``hyperseq.superseded``): the re-run's run replaces it.
    """
    from ray.tune import ExperimentAnalysis
    trials = ExperimentAnalysis(experiment_path).trials
    status = {t.trial_id: t.status for t in trials}
    store = open_store(uri)
    for run in store.trial_runs(parent_run_id):
        trial_id = run.data.tags.get(T.TAG_TRIAL, "")
        done = status.get(trial_id) == "TERMINATED"
        if run.info.status == "RUNNING":
            tags = {} if done else {T.TAG_INTERRUPTED: "true"}
            store.set_status(run.info.run_id, "FINISHED" if done else "KILLED", tags)
        elif run.info.status == "FINISHED" and status.get(trial_id) not in DONE:
            store.set_status(run.info.run_id, "KILLED", {"hyperseq.superseded": "true"})
    history: list[float | None] = []
    for t in trials:
        if t.status == "TERMINATED":
            reward = (t.last_result or {}).get("reward")
            history.append(None if reward is None else float(reward))
        elif t.status == "ERROR":
            history.append(None)
    return history
