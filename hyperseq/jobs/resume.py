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
from . import state
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
    space, metric, mode = check_space(_load_space(store, parent, job, root))
    try:
        options = JobOptions.checked(**json.loads(raw), name=job, tracking_uri=uri, storage=str(root))
    except (TypeError, ValueError) as err:                # JobError is a ValueError too
        raise JobError("job", job, f"its recorded options ({T.TAG_OPTIONS}) are invalid: {err}") from None
    tags = parent.data.tags
    metric, mode = tags.get(T.TAG_METRIC) or metric, tags.get(T.TAG_MODE) or mode
    return JobSpec(options, space, space.task, metric, mode, reward_rule(metric, mode), root), parent


def space_copy(root: Path, job: str) -> Path:
    """Where `execute` writes the job's space before its parent run exists: a driver killed
    before the ``space.yaml`` artifact was logged leaves a job a resume can still rebuild."""
    return root / f".{job}.space.yaml"


def _load_space(store: Any, parent: Any, job: str, root: Path) -> Any:
    """The job's space: its ``space.yaml`` artifact, else the local copy (`space_copy`)."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            return load_space(store.download_artifact(parent.info.run_id, "space.yaml", tmp))
        except Exception as err:                        # noqa: BLE001 - MLflow raises several kinds
            if space_copy(root, job).is_file():
                return load_space(space_copy(root, job))
            raise JobError("job", job, f"its space.yaml artifact cannot be read: {err}") from None


def _check_tune_dir(job: str, tagged: str, root: Path, storage: str | None) -> None:
    """The tagged Tune directory is ``root / job`` and Tune's state there, if any, names `job`
    (none: Tune saved nothing yet, and the resume starts the search afresh)."""
    exp = Path(tagged)
    if exp.resolve() != (root / job).resolve():
        raise JobError("job", job, f"its Tune directory {tagged} (tag {T.TAG_STORAGE}) is not "
                       f"{root / job}: resume reads Tune state only from --storage "
                       f"{storage or DEFAULT_STORAGE}")
    newest = state.newest_state(exp)
    if newest is None:
        return
    names = _experiment_names(newest)
    if names != {job}:
        raise JobError("job", job, f"the Ray Tune experiment state in {exp} names "
                       f"{sorted(names)[:3] or 'no experiment'}, not this job")


def _experiment_names(newest: Path, trials: int = 10) -> set[str]:
    """``experiment_dir_name`` of the first trials in Tune's newest whole experiment state
    (`state.newest_state`: a file a kill cut short is read from the copy the driver kept).

    Tune stores each trial's storage context as a pickle inside the JSON; `pickletools` reads
    its opcodes without executing anything.
    """
    names: set[str] = set()
    try:
        entries = json.loads(newest.read_text())["trial_data"][:trials]
        for entry in entries:
            blob = bytes.fromhex(json.loads(entry[0])["storage"]["value"])
            args = [arg for _, arg, _ in pickletools.genops(blob) if isinstance(arg, str)]
            names |= {args[i + 1] for i, a in enumerate(args[:-1]) if a == "experiment_dir_name"}
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return set()
    return names


def close_interrupted(uri: str, parent_run_id: str, experiment_path: str | None,
                      final_path: str | None = None, space: Any = None) -> list[float | None]:
    """Make the store agree with Tune's last saved state; return the rewards of the search
    trials done.

    Tune's experiment state says which trials are done (TERMINATED or ERROR: not run again);
    the others will run again from the start. So a RUNNING trial run ends KILLED (tag
    ``hyperseq.interrupted``) unless Tune has its trial done (then it is completed from Tune's
    last result: only the close, or the last epoch, was lost), and a FINISHED run of a trial
    Tune will run again (it ended after Tune's last checkpoint) ends KILLED (tag
    ``hyperseq.superseded``): the re-run's run replaces it. A done trial with no run at all (the
    store refused writes) gets one from Tune's last result (tag ``hyperseq.recovered``; params
    projected on `space`). The final phase's runs are judged by its own experiment
    (`final_path`), if it has one. No `experiment_path`: Tune saved nothing, every trial runs again.
    """
    from ray.tune import ExperimentAnalysis

    from ..tracking.recorder import trial_params
    trials = ExperimentAnalysis(experiment_path).trials if experiment_path else []
    finals = ExperimentAnalysis(final_path).trials if final_path else []
    by_id = {t.trial_id: t for t in [*trials, *finals]}
    store = open_store(uri)
    recorded: set[str] = set()
    for run in store.trial_runs(parent_run_id):
        trial_id = run.data.tags.get(T.TAG_TRIAL, "")
        status = by_id[trial_id].status if trial_id in by_id else None
        if run.info.status == "RUNNING" and status in DONE:
            params = {} if run.data.params else trial_params(space, by_id[trial_id].config)
            _complete(store.child(run.info.run_id, params), run.data.metrics.get("epoch", -1), by_id[trial_id])
        elif run.info.status == "RUNNING":
            store.set_status(run.info.run_id, "KILLED", {T.TAG_INTERRUPTED: "true"})
        elif run.info.status in ("FINISHED", "FAILED") and status not in DONE:
            store.set_status(run.info.run_id, "KILLED", {"hyperseq.superseded": "true"})
        if run.info.status != "KILLED" and "hyperseq.retried" not in run.data.tags:
            recorded.add(trial_id)
    parent = store.get_run(parent_run_id)
    for trial in by_id.values():                    # done, and the store never heard of it
        if trial.status in DONE and trial.trial_id not in recorded:
            run = store.open_child(parent.info.experiment_id, parent_run_id, parent.data.tags.get(T.TAG_JOB, ""),
                                   trial.trial_id, trial_params(space, trial.config), {"hyperseq.recovered": "true"})
            _complete(run, -1, trial)
    history: list[float | None] = []
    for t in trials:
        if t.status == "TERMINATED":
            reward = (t.last_result or {}).get("reward")
            history.append(None if reward is None else float(reward))
        elif t.status == "ERROR":
            history.append(None)
    return history


def _outcome(trial: Any) -> tuple[str, dict[str, str]]:
    """The status and tags a done trial's run ends with (as `TrialRecorder` would have)."""
    from ..tracking.recorder import completed_outcome     # (imports Ray Tune: not at prepare time)
    if trial.status == "ERROR":
        return "FAILED", {T.TAG_ERROR: "trial failed (closed by resume)"}
    return completed_outcome(trial.last_result or {})


def _complete(run: Any, logged_epoch: float, trial: Any) -> None:
    """End a done trial's run (a `ChildRunHandle`) from Tune's last result: its last epoch
    logged if the store missed it, then the status `TrialRecorder` would have given."""
    last = trial.last_result or {}
    if "child" in last and logged_epoch < last.get("epoch", 0):
        run.log_epoch(last["child"], int(last.get("epoch", 0)), last.get("child_tags") or {})
    status, tags = _outcome(trial)
    run.finish(status, {**tags, T.TAG_CLOSED_BY: "hyperseq resume"})
