"""A job's name is unique in its store, also between drivers that start the same name at once.

`spec.prepare_job` refuses a name already in the store, but two drivers started together (same
store, different ``--storage``) both pass that check before either has a parent run. So each
driver creates its parent run and then looks for others of the same name: the run first in
(start time, run id) order keeps the name; a driver whose run is not first deletes its own and
stops with the same one-line error as `prepare_job`'s, before any trial. Every driver agrees on
which run is first; a store that can (a local sqlite file) serialises the create-and-look of
this machine's drivers, so a run can never be created behind one already checked.
"""
from __future__ import annotations

from typing import Any, Mapping

from .options import JobError
from .resume import space_copy


def start_parent(store: Any, spec: Any, tags: Mapping[str, str]) -> tuple[str, str]:
    """The job's parent run (run id, experiment id); JobError (param ``name``) when another
    driver's run of the same name came first (this driver's run is deleted)."""
    with store.creating_job():
        run_id, exp_id = store.start_job(spec.name, tags, spec.params())
        runs = store.job_runs(spec.name)
    mine = next((r for r in runs if r.info.run_id == run_id), None) or store.get_run(run_id)
    first = min([*runs, mine], key=lambda r: (r.info.start_time, r.info.run_id))
    if first.info.run_id != run_id:
        store.delete_run(run_id)
        space_copy(spec.storage, spec.name).unlink(missing_ok=True)
        raise JobError("name", spec.name, f"a job of that name already exists in {spec.tracking_uri} "
                       f"(another driver started it at the same time, parent run {first.info.run_id})")
    return run_id, exp_id
