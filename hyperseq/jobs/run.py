"""Run a search job: Ray Tune + a searcher from the registry + the tracking store.

A job is one parent run (tags ``hyperseq.*``; params = options; artifacts: the space YAML,
the ranked trial table, plots; curves by trials completed) and one child run per trial,
recorded from the workers' per-epoch reports (`hyperseq.tracking.recorder`). Validation
(`spec.prepare_job`) happens before Ray starts and before any write. The parent run ends
FINISHED on success, FAILED on an exception or when every search trial failed (`JobFailed`:
no answer, and no final phase), and KILLED on Ctrl-C (Tune stops the trials
gracefully and keeps its state for `Tuner.restore`; the result then has status KILLED).

`resume_search(job)` finishes a job whose driver died (or was interrupted): it reuses the
parent run, closes the interrupted trials' runs and continues with `Tuner.restore`; completed
trials keep their results, the searcher continues from its checkpointed state, interrupted
trials run again.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from .. import schedulers, searchers
from ..schedulers.rungs import RungRanks
from ..searchers.tune import TuneSearcher, live_searcher
from ..tracking import tags as T
from ..tracking.mlflow_store import trial_config
from ..tracking.query import best_configs
from ..tracking.store import StoreError, open_store
from . import disk, final, pareto_plot, plots, state, unique, warm
from .state import StateKeeper
from .watch import StoreWatch
from .heap import settle_heap
from .hooks import Forward, active
from .lock import job_lock
from .monitor import progress_bar
from .options import JobFailed
from .ray_env import ANALYSIS_LOGGER, actors_together, check_cluster, quiet_tune, ray_session, reuse_actors, tune_env
from .resume import close_interrupted, prepare_resume, space_copy
from .spec import JobSpec, prepare_job

RNN_MAX_OVERHEAD = 0.05  # the rnn controller's share of a job's wall time (see make_searcher)

log = logging.getLogger(__name__)


@dataclass
class JobResult:
    """What a finished job returns (the trial table is also in the store)."""

    name: str
    parent_run_id: str
    experiment_id: str
    tracking_uri: str
    storage_path: str           # Ray Tune experiment directory (for Tuner.restore)
    status: str                 # FINISHED | KILLED
    best_config: dict[str, Any] | None
    best_reward: float | None
    trials: pd.DataFrame        # ranked, as `best_configs(name, top=None)`
    metric: str


def run_search(space: Any, progress: bool = False, callbacks: list | None = None,
               **options: Any) -> JobResult:
    """Validate, then run a search job to completion; `options` are `JobOptions` fields."""
    return execute(prepare_job(space, **options), progress=progress, callbacks=callbacks)


# ---- Tune ---------------------------------------------------------------------------------------
def make_searcher(spec: JobSpec) -> searchers.Searcher:
    """The job's searcher; the rnn's compute is bounded to RNN_MAX_OVERHEAD of the job's wall
    time (`RNNSearcher.max_overhead`: no effect unless trials finish faster than it learns)."""
    if spec.searcher != "rnn":
        return searchers.create(spec.searcher, spec.space, seed=spec.seed, **spec.searcher_targets())
    return searchers.create("rnn", spec.space, seed=spec.seed, max_overhead=RNN_MAX_OVERHEAD,
                            **spec.controller_options, **spec.searcher_targets())


def _tuner(spec: JobSpec, searcher: searchers.Searcher, trainable: Any) -> Any:
    """A fresh `tune.Tuner` for the job."""
    from ray import tune
    from ray.tune.search import ConcurrencyLimiter
    rungs = None if spec.scheduler in (None, "none") else RungRanks(spec.epochs)
    search_alg = ConcurrencyLimiter(TuneSearcher(searcher, metric="reward", mode="max", label=spec.name,
                                                 rungs=rungs), max_concurrent=spec.concurrency)
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(search_alg=search_alg, scheduler=schedulers.create(spec.scheduler, spec.epochs),
                                    num_samples=spec.trials, reuse_actors=reuse_actors()),
        run_config=tune.RunConfig(name=spec.name, storage_path=str(spec.storage), verbose=0,
                                  callbacks=[Forward(spec.name)],
                                  failure_config=tune.FailureConfig(max_failures=spec.max_failures)))


def _restored_tuner(spec: JobSpec, searcher: searchers.Searcher, trainable: Any) -> Any:
    """`Tuner.restore` of the job's experiment. Unfinished trials run again from the start
    (function trainables keep no checkpoint); errored trials stay errored (they used up their
    retries). The searcher's state comes back from Tune's searcher checkpoint into `searcher`
    (`live_searcher`); Tune's pickled `Forward` reaches this process's callbacks (`hooks`)."""
    from ray import tune
    return tune.Tuner.restore(spec.experiment_path, trainable=trainable, resume_unfinished=True,
                              resume_errored=False, restart_errored=False)


# ---- the job --------------------------------------------------------------------------------------
def execute(spec: JobSpec, progress: bool = False, callbacks: list | None = None) -> JobResult:
    """Run a validated job (see the module docstring for what is recorded where).

    `callbacks`: extra Ray Tune callbacks (e.g. timing probes), run after the job's own.
    """
    from ..tracking.writer import shared_writer
    quiet_tune()
    writer = shared_writer()            # start its MLflow imports now, alongside Ray's start
    writer.submit(plots.ready)          # ... and matplotlib's, for the plots at the end
    with disk.storage_errors(spec), ray_session(), job_lock(spec.storage, spec.name):
        check_cluster(spec)
        tags = {T.TAG_SEARCHER: spec.searcher, T.TAG_SPACE: spec.space.name, T.TAG_TASK: spec.task,
                T.TAG_METRIC: spec.metric, T.TAG_MODE: spec.mode, T.TAG_REWARD_RULE: spec.rule.describe(),
                T.TAG_STORAGE: spec.experiment_path,
                T.TAG_OPTIONS: json.dumps(spec.options.saved(), sort_keys=True)}
        store = open_store(spec.tracking_uri)
        space_copy(spec.storage, spec.name).write_text(spec.space.to_yaml())
        parent, exp_id = unique.start_parent(store, spec, tags)
        store.log_text(parent, spec.space.to_yaml(), "space.yaml")
        return _drive(spec, parent, exp_id, writer, progress, callbacks, _tuner, [])


def resume_search(job: str, tracking_uri: str | None = None, progress: bool = False,
                  callbacks: list | None = None, storage: str | None = None) -> JobResult:
    """Finish job `job` after its driver died or was interrupted (see the module docstring).

    Raises JobError / JobNotFound (ValueError / LookupError) before Ray starts for an unknown
    job, a FINISHED one, one whose driver still runs, or one without Tune state to restore
    under `storage` (the Ray Tune root the job ran with; default ~/ray_results).
    """
    spec, parent = prepare_resume(job, tracking_uri, storage)
    return resume_prepared(spec, parent, progress=progress, callbacks=callbacks)


def resume_prepared(spec: JobSpec, parent: Any, progress: bool = False,
                    callbacks: list | None = None) -> JobResult:
    """Finish a job `resume.prepare_resume` checked (as `execute` runs a prepared spec)."""
    from ..tracking.writer import shared_writer
    quiet_tune()
    writer = shared_writer()
    writer.submit(plots.ready)
    # Tune's analysis of the restored experiment warns per trial that it has no result files.
    logging.getLogger(ANALYSIS_LOGGER).setLevel(logging.ERROR)
    with disk.storage_errors(spec), job_lock(spec.storage, spec.name), ray_session():
        check_cluster(spec)
        restorable = state.recover(Path(spec.experiment_path))      # else Tune saved nothing yet
        final_saved = state.recover(Path(final.final_path(spec)))
        history = close_interrupted(spec.tracking_uri, parent.info.run_id,
                                    spec.experiment_path if restorable else None,
                                    final.final_path(spec) if final_saved else None, spec.space)
        open_store(spec.tracking_uri).reopen(parent.info.run_id)
        return _drive(spec, parent.info.run_id, parent.info.experiment_id, writer, progress,
                      callbacks, _restored_tuner if restorable else _tuner, history)


def _drive(spec: JobSpec, parent: str, exp_id: str, writer: Any, progress: bool,
           callbacks: list | None, make_tuner: Callable[..., Any], history: list[float | None]) -> JobResult:
    """The search (`make_tuner(spec, searcher, trainable)`), then the final phase; end the
    parent run. `history`: rewards of the trials that finished before (a resumed job). A store
    that stops taking writes stops the job (`StoreWatch`): StoreError, and nothing more written."""
    status: str | None = "FAILED"
    watch = StoreWatch(spec.tracking_uri, writer)
    try:
        monitor, searcher, written = _search(spec, parent, exp_id, writer, progress,
                                             [watch, *(callbacks or [])], make_tuner, history)
        watch.check(spec.name, spec.experiment_path)
        searched = monitor.completed >= spec.trials or searcher.exhausted
        if searched:
            _check_answered(spec, parent, monitor, writer, written)
        status = "FINISHED" if searched else "KILLED"
        if status == "FINISHED" and spec.final_top > 0:
            status = _final_phase(spec, parent, exp_id, writer, progress, [watch, *(callbacks or [])])
            watch.check(spec.name, final.final_path(spec))
            written = writer.barrier()
        flushed = writer.wait(written)                 # the trial runs (the plots may still render)
        watch.check(spec.name, spec.experiment_path)
        monitor.plot()                     # (already queued at the last completion, unless cut short)
        writer.submit(pareto_plot.log_pareto_plot, spec.tracking_uri, parent, spec.name)   # (2+ objectives)
        table = best_configs(spec.name, None, spec.tracking_uri)          # feasible first, finals first
        open_store(spec.tracking_uri).log_text(parent, table.to_csv(index=False), "best_configs.csv")
        flushed = writer.flush() and flushed
        watch.check(spec.name, spec.experiment_path)
        if not flushed:
            log.warning("some MLflow writes of job %s may be missing", spec.name)
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    except StoreError:
        status = None
        raise
    finally:
        if status is not None:
            writer.flush()
            if status != "FINISHED":
                _close_live_runs(spec, parent)
            open_store(spec.tracking_uri).set_status(parent, status)
    return _result(spec, parent, exp_id, status, table)


def _check_answered(spec: JobSpec, parent: str, monitor: Any, writer: Any, written: int) -> None:
    """JobFailed (the parent run then ends FAILED) when no search trial has a result: every
    one crashed out of its retries. The final phase would otherwise rank only the untested
    default and call it the answer. A diverged trial has a (floor) result and counts."""
    if any(reward is not None for reward in monitor.rewards):
        if spec.constraints:
            writer.wait(written)                       # the trial runs' feasibility markers
        return final.check_feasible(spec, parent)      # a constrained job: JobFailed if none is
    writer.wait(written)                               # the failed trials' runs and their errors
    errors = sorted((run.info.start_time, run.data.tags[T.TAG_ERROR])
                    for run in open_store(spec.tracking_uri).trial_runs(parent)
                    if run.data.tags.get(T.TAG_PHASE) != "final" and run.data.tags.get(T.TAG_ERROR))
    first = errors[0][1] if errors else "none recorded"
    what = f"all {monitor.completed} search trials failed" if monitor.completed else "no search trial ran"
    raise JobFailed(f"job {spec.name} failed: {what}, so it has no answer (parent run FAILED); "
                    f"first error: {first}")


def _close_live_runs(spec: JobSpec, parent: str) -> None:
    """Trial runs an abrupt stop left open (a second Ctrl-C skips Tune's own clean-up) end
    KILLED, tagged interrupted: a resume runs those trials again."""
    store = open_store(spec.tracking_uri)
    for run in store.trial_runs(parent):
        if run.info.status in T.LIVE:
            store.set_status(run.info.run_id, "KILLED", {T.TAG_INTERRUPTED: "true"})


def _search(spec: JobSpec, parent: str, exp_id: str, writer: Any, progress: bool, callbacks: list | None,
            make_tuner: Callable[..., Any], history: list[float | None]) -> tuple[Any, Any, int]:
    """Fit the search experiment; return its `JobMonitor` (trials completed, curves), the
    searcher (`exhausted` when it ran out of configurations to propose) and the writer's
    marker after the trial runs (`TrialRecorder.written`)."""
    from workers.gather import released
    from workers.trainable import TrialSetup, make_trainable
    from ..tracking.recorder import Target, TrialRecorder
    from .monitor import JobMonitor
    searcher = make_searcher(spec)
    if spec.warm_start and not history:
        searcher.warm_start(*warm.history(spec.warm_start, spec.tracking_uri))
    key, size = actors_together(spec, "search", min(spec.trials - len(history), spec.space.size()))
    setup = TrialSetup(spec.space, spec.task, spec.metric, spec.mode, spec.epochs, spec.seed,
                       gather_key=key, gather_size=size, **spec.trial_targets())
    recorder = TrialRecorder(Target(spec.tracking_uri, exp_id, parent, spec.name), spec.space, writer)
    with progress_bar(spec.trials, progress, spec.name) as on_progress:
        monitor = JobMonitor(spec.tracking_uri, parent, spec.trials, writer, searcher.controller,
                             on_progress, history=history, name=spec.name)
        tuner = make_tuner(spec, searcher, make_trainable(setup, spec.cpus_per_trial, spec.gpus_per_trial))
        settle_heap()                                  # imports done: out of the full collections
        with tune_env(), live_searcher(spec.name, searcher), released(key), \
                active(spec.name, [recorder, monitor, StateKeeper(spec.experiment_path), *(callbacks or [])]):
            try:
                tuner.fit()
            finally:
                recorder.close()                       # the trials it still holds, if Tune raised
    monitor.close()
    return monitor, searcher, recorder.written()


def _final_phase(spec: JobSpec, parent: str, exp_id: str, writer: Any, progress: bool,
                 callbacks: list | None) -> str:
    """Retrain the plan (`final.plan`) at the final budget; FINISHED, or KILLED if cut short."""
    from workers.gather import released
    from workers.trainable import TrialSetup, make_trainable
    from ..tracking.recorder import Target, TrialRecorder
    writer.flush()                                   # the plan reads the search's runs
    configs = final.plan(spec, parent)
    key, size = actors_together(spec, "final", len(configs))
    setup = TrialSetup(spec.space, spec.task, spec.metric, spec.mode, spec.final_epochs, spec.seed,
                       phase="final", gather_key=key, gather_size=size, **spec.trial_targets())
    recorder = TrialRecorder(Target(spec.tracking_uri, exp_id, parent, spec.name), spec.space, writer)
    label = f"{spec.name}.final"
    with progress_bar(len(configs), progress, f"{spec.name} (final phase)") as on_progress:
        counter = final.Counter(on_progress)
        tuner = final.tuner(spec, configs, make_trainable(setup, spec.cpus_per_trial, spec.gpus_per_trial),
                            [Forward(label)])
        with tune_env(), released(key), active(label, [recorder, counter, StateKeeper(final.final_path(spec)),
                                                       *(callbacks or [])]):
            try:
                grid = tuner.fit()
            finally:
                recorder.close()
    done = sum(r.metrics.get("trial_done", False) or r.error is not None for r in grid)
    return "FINISHED" if done >= len(configs) else "KILLED"


def _result(spec: JobSpec, parent: str, exp_id: str, status: str, table: pd.DataFrame) -> JobResult:
    best = final.answer(spec, parent, table)          # a constrained job's: the best feasible
    config = None if best is None else trial_config(open_store(spec.tracking_uri).get_run(best["run_id"]))
    return JobResult(spec.name, parent, exp_id, spec.tracking_uri, spec.experiment_path, status, config,
                     None if best is None else float(best["reward"]), table, spec.metric)
