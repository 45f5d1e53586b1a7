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
import pickletools
import tempfile
from pathlib import Path
from typing import Any

from search_spaces import load_space
from workers.rewards import reward_rule

from ..tracking import tags as T
from ..tracking.query import JobNotFound
from ..tracking.store import default_tracking_uri, open_store
from .options import JobError, JobOptions, check_name
from .spec import DEFAULT_STORAGE, JobSpec, check_space, check_storage

DONE = ("TERMINATED", "ERROR")          # Tune trial states that will not run again


def prepare_resume(job: str, tracking_uri: str | None = None,
                   storage: str | None = None) -> tuple[JobSpec, Any]:
    """(spec, parent run) of a job that can be resumed.

    Tune's state is read only from ``storage / job`` (`storage` default ~/ray_results): the
    parent run's ``hyperseq.storage`` tag must name that directory, and Tune's experiment state
    there must name the job, before `Tuner.restore` unpickles anything from it. Anyone who can
    write tags to the tracking store could otherwise point a resume at files they wrote.
    JobError (param ``job``) for a bad name, a FINISHED job or missing or foreign state;
    JobNotFound for a job not in the store. Reads the store, never creates it.
    """
    check_name("job", job)
    uri = tracking_uri or default_tracking_uri()
    root = check_storage(storage)
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
    _check_tune_dir(job, path, root, storage)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = store.download_artifact(parent.info.run_id, "space.yaml", tmp)
        except Exception as err:                        # noqa: BLE001 - MLflow raises several kinds
            raise JobError("job", job, f"its space.yaml artifact cannot be read: {err}") from None
        space, metric, mode = check_space(load_space(local))
    try:
        options = JobOptions.checked(**json.loads(raw), name=job, tracking_uri=uri, storage=str(root))
    except (TypeError, ValueError) as err:                # JobError is a ValueError too
        raise JobError("job", job, f"its recorded options ({T.TAG_OPTIONS}) are invalid: {err}") from None
    tags = parent.data.tags
    metric, mode = tags.get(T.TAG_METRIC) or metric, tags.get(T.TAG_MODE) or mode
    return JobSpec(options, space, space.task, metric, mode, reward_rule(metric, mode), root), parent


def _check_tune_dir(job: str, tagged: str, root: Path, storage: str | None) -> None:
    """The tagged Tune directory is ``root / job`` and Tune's state there names `job`."""
    exp = Path(tagged)
    if not (exp / "tuner.pkl").is_file():
        raise JobError("job", job, f"has no Ray Tune experiment state at {tagged}")
    if exp.resolve() != (root / job).resolve():
        raise JobError("job", job, f"its Tune directory {tagged} (tag {T.TAG_STORAGE}) is not "
                       f"{root / job}: resume reads Tune state only from --storage "
                       f"{storage or DEFAULT_STORAGE}")
    names = _experiment_names(exp)
    if names != {job}:
        raise JobError("job", job, f"the Ray Tune experiment state in {exp} names "
                       f"{sorted(names)[:3] or 'no experiment'}, not this job")


def _experiment_names(exp: Path, trials: int = 10) -> set[str]:
    """``experiment_dir_name`` of the first trials in Tune's newest experiment state.

    Tune stores each trial's storage context as a pickle inside the JSON; `pickletools` reads
    its opcodes without executing anything.
    """
    states = sorted(exp.glob("experiment_state-*.json"))
    names: set[str] = set()
    try:
        entries = json.loads(states[-1].read_text())["trial_data"][:trials] if states else []
        for entry in entries:
            blob = bytes.fromhex(json.loads(entry[0])["storage"]["value"])
            args = [arg for _, arg, _ in pickletools.genops(blob) if isinstance(arg, str)]
            names |= {args[i + 1] for i, a in enumerate(args[:-1]) if a == "experiment_dir_name"}
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return set()
    return names


def close_interrupted(uri: str, parent_run_id: str, experiment_path: str,
                      final_path: str | None = None) -> list[float | None]:
    """End the trial runs a crash left open; return the rewards of the search trials done.

    Tune's experiment state says which trials are done (TERMINATED or ERROR: not run again);
    the others will run again from the start. So a RUNNING trial run ends KILLED (tag
    ``hyperseq.interrupted``) unless Tune has its trial done (then FINISHED: only the close was
    lost), and a FINISHED run of a trial Tune will run again (it ended after Tune's last
    checkpoint) ends KILLED (tag ``hyperseq.superseded``): the re-run's run replaces it. The
    final phase's runs are judged by its own experiment (`final_path`), if it has one.
    """
    from ray import tune
    from ray.tune import ExperimentAnalysis
    trials = ExperimentAnalysis(experiment_path).trials
    status = {t.trial_id: t.status for t in trials}
    if final_path and tune.Tuner.can_restore(final_path):
        status.update({t.trial_id: t.status for t in ExperimentAnalysis(final_path).trials})
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
