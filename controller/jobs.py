"""Run a search job: Ray Tune + a searcher (rnn | random | tpe) + MLflow, and read results.

    from controller.jobs import run_search, best_configs, list_jobs
    result = run_search("char_lm", searcher="rnn", trials=20, concurrency=2, epochs=3)
    print(result.best_reward, result.best_config)
    best_configs(result.name, top=5)          # pandas DataFrame from MLflow

A job is one MLflow parent run (tags ``hyperseq.*``; params = options; artifacts: the space
YAML, the ranked trial table, plots; curves by trials completed) and one child run per trial,
recorded from the workers' per-epoch reports (`workers.recorder`). Validation
(`options.prepare_job`) happens before Ray starts and before any MLflow write. The parent run
ends FINISHED on success, FAILED on an exception and KILLED on Ctrl-C (Tune stops the trials
gracefully, keeps its state for `Tuner.restore`; the result then has status KILLED).

`resume_search(job)` finishes a job whose driver died (or was interrupted): it reuses the
parent run, closes the interrupted trials' runs (KILLED, tag ``hyperseq.interrupted``) and
continues with `Tuner.restore` from the Tune experiment directory recorded in the parent's
``hyperseq.storage`` tag; completed trials keep their results, the controller continues from
its checkpointed state (`ControllerSearcher.save`), interrupted trials run again.

Side effect: the driver sets ``RAY_AIR_NEW_OUTPUT=0`` (unless set) so that Tune's console
output stays quiet at ``verbose=0``; progress is hyperseq's own (rich, on stderr).
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pandas as pd

from workers import tracking

from .options import JobError, JobSpec, prepare_job
from .resume import close_interrupted, prepare_resume
from .tracking_query import best_across_jobs, best_configs, list_jobs

log = logging.getLogger(__name__)

__all__ = ["JobError", "JobResult", "JobSpec", "best_across_jobs", "best_configs", "execute",
           "list_jobs", "prepare_job", "resume_search", "run_search"]

# Tune saves its experiment state (trials, searcher checkpoint) at most every this many
# seconds ("auto" starts at 10 s). After a driver crash, a trial that ended within this window
# of the crash is run again; a short period keeps that window small at ~ms per save.
CHECKPOINT_S = "1"


@dataclass
class JobResult:
    """What a finished job returns (the trial table is also in MLflow)."""

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


def run_search(space: Any, searcher: str = "rnn", trials: int = 20, concurrency: int = 2,
               epochs: int = 3, scheduler: str | None = None, gpus_per_trial: float = 0,
               name: str | None = None, tracking_uri: str | None = None, seed: int = 0,
               cpus_per_trial: float = 1, max_failures: int = 2, storage: str | Path | None = None,
               controller_options: dict[str, Any] | None = None, progress: bool = False,
               callbacks: list | None = None) -> JobResult:
    """Validate, then run a search job to completion. See `prepare_job` for the options."""
    spec = prepare_job(space, searcher=searcher, trials=trials, concurrency=concurrency,
                       epochs=epochs, scheduler=scheduler, gpus_per_trial=gpus_per_trial,
                       cpus_per_trial=cpus_per_trial, name=name, tracking_uri=tracking_uri,
                       seed=seed, max_failures=max_failures, storage=storage,
                       controller_options=controller_options)
    return execute(spec, progress=progress, callbacks=callbacks)


# ---- Ray ----------------------------------------------------------------------------------------
def local_ray_options(num_cpus: int | None = None) -> dict[str, Any]:
    """`ray.init` keywords for a quiet local Ray whose workers can import this checkout."""
    root = str(Path(__file__).resolve().parent.parent)
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    return {"num_cpus": num_cpus or os.cpu_count(), "include_dashboard": False,
            "log_to_driver": False, "logging_level": logging.WARNING,
            "runtime_env": {"env_vars": {"PYTHONPATH": path}}}


@contextlib.contextmanager
def ray_session(num_cpus: int | None = None) -> Iterator[bool]:
    """Use a running Ray, connect to `$RAY_ADDRESS`, or start a local one (shut down after)."""
    import ray
    if ray.is_initialized():
        yield False
        return
    if os.environ.get("RAY_ADDRESS"):
        ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=False, logging_level=logging.WARNING)
    else:
        ray.init(**local_ray_options(num_cpus))
    try:
        yield True
    finally:
        ray.shutdown()


def check_cluster(spec: JobSpec) -> None:
    """A trial must fit on the cluster, else Tune would wait forever."""
    import ray
    have = ray.cluster_resources()
    if spec.gpus_per_trial > have.get("GPU", 0):
        raise JobError("gpus_per_trial", spec.gpus_per_trial,
                       f"is more than the {have.get('GPU', 0):g} GPU(s) of the Ray cluster")
    if spec.cpus_per_trial > have.get("CPU", 0):
        raise JobError("cpus_per_trial", spec.cpus_per_trial,
                       f"is more than the {have.get('CPU', 0):g} CPU(s) of the Ray cluster")


@contextlib.contextmanager
def _tune_env() -> Iterator[None]:
    """Environment switches Tune reads when `fit` starts, set for that call only.

    - no CSV/JSON/TensorBoard result files per trial: MLflow is the record of every trial, and
      those loggers cost Tune's event loop ~15-20 ms per trial (`benchmarks/overhead.py`).
      Tune's experiment state (what `Tuner.restore` needs) is still written;
    - experiment state saved every `CHECKPOINT_S` seconds (unless the user set
      ``TUNE_GLOBAL_CHECKPOINT_S``), so a resume re-runs as few finished trials as possible.
    """
    values = {"TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
              "TUNE_GLOBAL_CHECKPOINT_S": os.environ.get("TUNE_GLOBAL_CHECKPOINT_S", CHECKPOINT_S)}
    before = {k: os.environ.get(k) for k in values}
    # ... and Tune's end-of-run analysis then warns once per trial that it found no result file.
    analysis = logging.getLogger("ray.tune.analysis.experiment_analysis")
    level = analysis.level
    os.environ.update(values)
    analysis.setLevel(logging.ERROR)
    try:
        yield
    finally:
        analysis.setLevel(level)
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _quiet_tune() -> None:
    """Tune's legacy reporter at verbosity 0 prints nothing; keep only warnings."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    logging.getLogger("ray.tune").setLevel(logging.WARNING)


@contextlib.contextmanager
def _progress(total: int, enabled: bool, label: str) -> Iterator[Callable[[int, float | None], None] | None]:
    """A rich progress bar on stderr (trials done / total, best so far)."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("best reward {task.fields[best]}"), TimeElapsedColumn(),
                   console=Console(stderr=True))
    task = bar.add_task(label, total=total, best="-")
    with bar:
        yield lambda done, best: bar.update(task, completed=done,
                                            best="-" if best is None else f"{best:.4g}")


# ---- the job --------------------------------------------------------------------------------------
def _tuner(spec: JobSpec, setup: Any, callbacks: list) -> tuple[Any, Any]:
    """A fresh `tune.Tuner` for the job, and its search algorithm."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from workers.trainable import make_trainable
    from .searcher import build_search
    search_alg, param_space = build_search(spec.searcher, spec.space, spec.concurrency,
                                           spec.seed, controller_options=spec.controller_options)
    scheduler = None
    if spec.scheduler == "asha":
        scheduler = ASHAScheduler(time_attr="training_iteration", metric="reward", mode="max",
                                  max_t=spec.epochs, grace_period=1, reduction_factor=3)
    return search_alg, tune.Tuner(
        make_trainable(setup, spec.cpus_per_trial, spec.gpus_per_trial),
        param_space=param_space,
        tune_config=tune.TuneConfig(search_alg=search_alg, scheduler=scheduler,
                                    num_samples=spec.trials, reuse_actors=True),
        run_config=tune.RunConfig(name=spec.name, storage_path=str(spec.storage), verbose=0,
                                  callbacks=callbacks,
                                  failure_config=tune.FailureConfig(max_failures=spec.max_failures)))


def _restored_tuner(spec: JobSpec, experiment_path: str, setup: Any,
                    callbacks: list) -> tuple[Any, Any]:
    """`Tuner.restore` of the job's Tune experiment, with this process's callbacks.

    Unfinished trials run again from the start (function trainables keep no checkpoint);
    errored trials stay errored (they used up their retries). The searcher's state comes back
    from Tune's searcher checkpoint when `fit` starts. `Tuner.restore` takes no `RunConfig`:
    the callbacks pickled with the experiment have lost their writer and controller handles, so
    they are replaced by fresh ones on the restored run config.
    """
    from ray import tune
    from workers.trainable import make_trainable
    tuner = tune.Tuner.restore(experiment_path,
                               trainable=make_trainable(setup, spec.cpus_per_trial, spec.gpus_per_trial),
                               resume_unfinished=True, resume_errored=False, restart_errored=False)
    internal = tuner._local_tuner                       # no public setter for either
    internal.get_run_config().callbacks = callbacks
    return internal._tune_config.search_alg, tuner


def _params(spec: JobSpec) -> dict[str, Any]:
    keys = ("searcher", "trials", "concurrency", "epochs", "gpus_per_trial", "cpus_per_trial",
            "seed", "max_failures", "metric", "mode", "task")   # shown in the UI
    params = {k: getattr(spec, k) for k in keys}
    params.update(scheduler=spec.scheduler or "none", space=spec.space.name,
                  reward_rule=spec.rule.describe(),
                  **{f"controller.{k}": v for k, v in spec.controller_options.items()})
    return params


def _options(spec: JobSpec) -> str:
    """The options `options.prepare_resume` needs, typed, as JSON (the TAG_OPTIONS tag)."""
    return json.dumps({"searcher": spec.searcher, "trials": spec.trials, "concurrency": spec.concurrency,
                       "epochs": spec.epochs, "scheduler": spec.scheduler,
                       "gpus_per_trial": spec.gpus_per_trial, "cpus_per_trial": spec.cpus_per_trial,
                       "seed": spec.seed, "max_failures": spec.max_failures,
                       "controller_options": dict(spec.controller_options)}, sort_keys=True)


def _log_artifacts(spec: JobSpec, run_id: str, table: pd.DataFrame, monitor: Any) -> None:
    import matplotlib.pyplot as plt
    from . import plots
    c = tracking.client(spec.tracking_uri)
    c.log_text(run_id, table.to_csv(index=False), "best_configs.csv")
    fig = plots.best_so_far_figure(monitor.rewards, f"{spec.name}: best reward vs trials")
    c.log_figure(run_id, fig, "plots/best_reward.png")
    plt.close(fig)
    if monitor.prob_history:
        fig = plots.choice_probabilities_figure(monitor.prob_history, f"{spec.name}: choice probabilities")
        c.log_figure(run_id, fig, "plots/choice_probabilities.png")
        plt.close(fig)


def execute(spec: JobSpec, progress: bool = False, callbacks: list | None = None) -> JobResult:
    """Run a validated job (see the module docstring for what is recorded where).

    `callbacks`: extra Ray Tune callbacks (e.g. timing probes), run after the job's own.
    """
    from workers.writer import shared_writer
    _quiet_tune()
    writer = shared_writer()            # start its MLflow imports now, alongside Ray's start
    with ray_session() as _:
        check_cluster(spec)
        experiment_path = str(spec.storage / spec.name)
        tags = {tracking.TAG_SEARCHER: spec.searcher, tracking.TAG_SPACE: spec.space.name,
                tracking.TAG_TASK: spec.task, tracking.TAG_METRIC: spec.metric,
                tracking.TAG_MODE: spec.mode, tracking.TAG_REWARD_RULE: spec.rule.describe(),
                tracking.TAG_STORAGE: experiment_path, tracking.TAG_OPTIONS: _options(spec)}
        parent, exp_id = tracking.start_job_run(spec.tracking_uri, spec.name, tags, _params(spec))

        def fresh(setup: Any, cbs: list) -> tuple[Any, Any]:
            tracking.client(spec.tracking_uri).log_text(parent, spec.space.to_yaml(), "space.yaml")
            return _tuner(spec, setup, cbs)

        return _drive(spec, parent, exp_id, writer, experiment_path, progress, callbacks, fresh, [])


def resume_search(job: str, tracking_uri: str | None = None, progress: bool = False,
                  callbacks: list | None = None) -> JobResult:
    """Finish job `job` after its driver died or was interrupted (see the module docstring).

    Raises JobError / JobNotFound (ValueError / LookupError) before Ray starts for an unknown
    job, a FINISHED one, or one without Tune state to restore.
    """
    from workers.writer import shared_writer
    spec, parent, experiment_path = prepare_resume(job, tracking_uri)
    _quiet_tune()
    writer = shared_writer()
    # Tune's analysis of the restored experiment warns per trial that it has no result files.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    with ray_session() as _:
        check_cluster(spec)
        history = close_interrupted(spec.tracking_uri, parent.info.run_id, experiment_path)
        tracking.reopen(spec.tracking_uri, parent.info.run_id)
        return _drive(spec, parent.info.run_id, parent.info.experiment_id, writer, experiment_path,
                      progress, callbacks,
                      lambda setup, cbs: _restored_tuner(spec, experiment_path, setup, cbs), history)


def _drive(spec: JobSpec, parent: str, exp_id: str, writer: Any, experiment_path: str,
           progress: bool, callbacks: list | None, make_tuner: Callable[[Any, list], tuple[Any, Any]],
           history: list[float | None]) -> JobResult:
    """Fit the tuner `make_tuner(setup, callbacks)` builds; end the parent run; the result.

    `history`: rewards of the trials that finished before (a resumed job), in order.
    """
    from .monitor import JobMonitor
    from .searcher import controller_of
    from workers.recorder import Target, TrialRecorder
    from workers.trainable import TrialSetup
    status = "FAILED"
    try:
        setup = TrialSetup(spec.space, spec.task, spec.metric, spec.mode, spec.epochs, spec.seed)
        recorder = TrialRecorder(Target(spec.tracking_uri, exp_id, parent, spec.name), spec.space, writer)
        with _progress(spec.trials, progress, spec.name) as on_progress:
            monitor = JobMonitor(spec.tracking_uri, parent, spec.trials, writer, None, on_progress,
                                 history=history)
            search_alg, tuner = make_tuner(setup, [recorder, monitor, *(callbacks or [])])
            monitor.controller = controller_of(search_alg)
            with _tune_env():
                tuner.fit()
        monitor.flush()
        if not writer.flush():
            log.warning("some MLflow writes of job %s may be missing", spec.name)
        table = best_configs(spec.name, top=None, tracking_uri=spec.tracking_uri)
        _log_artifacts(spec, parent, table, monitor)
        status = "FINISHED" if monitor.completed >= spec.trials else "KILLED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        writer.flush()
        tracking.set_status(spec.tracking_uri, parent, status)
    best = table.iloc[0] if len(table) and pd.notna(table.iloc[0]["reward"]) else None
    best_config = None
    if best is not None:
        best_config = tracking.trial_config(tracking.client(spec.tracking_uri).get_run(best["run_id"]))
    return JobResult(spec.name, parent, exp_id, spec.tracking_uri, experiment_path, status,
                     best_config, None if best is None else float(best["reward"]), table, spec.metric)
