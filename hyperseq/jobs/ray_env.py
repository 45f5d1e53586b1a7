"""The Ray a job runs on, and the Tune settings it runs with.

Side effect: the driver sets ``RAY_AIR_NEW_OUTPUT=0`` (unless set) so that Tune's console
output stays quiet at ``verbose=0``; progress is hyperseq's own (rich, on stderr).
"""
from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Any, Iterator

from ..envvars import temp_env
from .spec import JobError, JobSpec

ROOT = Path(__file__).resolve().parents[2]       # the checkout: search_spaces/, tasks/, ...
# Tune saves its experiment state (trials, searcher checkpoint) at most every this many
# seconds ("auto" starts at 10 s). After a driver crash, a trial that ended within this window
# of the crash is run again; a short period keeps that window small at ~ms per save.
CHECKPOINT_S = "1"
ANALYSIS_LOGGER = "ray.tune.analysis.experiment_analysis"


def local_ray_options(num_cpus: int | None = None) -> dict[str, Any]:
    """`ray.init` keywords for a quiet local Ray whose workers can import this checkout."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
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
def tune_env() -> Iterator[None]:
    """Environment switches Tune reads when `fit` starts, set for that call only.

    - no CSV/JSON/TensorBoard result files per trial: MLflow is the record of every trial, and
      those loggers cost Tune's event loop time per trial (`benchmarks/overhead.py`). Tune's
      experiment state (what `Tuner.restore` needs) is still written;
    - experiment state saved every `CHECKPOINT_S` seconds (unless the user set
      ``TUNE_GLOBAL_CHECKPOINT_S``), so a resume re-runs as few finished trials as possible.
    """
    values = {"TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
              "TUNE_GLOBAL_CHECKPOINT_S": os.environ.get("TUNE_GLOBAL_CHECKPOINT_S", CHECKPOINT_S)}
    # ... and Tune's end-of-run analysis then warns once per trial that it found no result file.
    analysis = logging.getLogger(ANALYSIS_LOGGER)
    level = analysis.level
    analysis.setLevel(logging.ERROR)
    try:
        with temp_env(values):
            yield
    finally:
        analysis.setLevel(level)


def quiet_tune() -> None:
    """Tune's legacy reporter at verbosity 0 prints nothing; keep only warnings."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    logging.getLogger("ray.tune").setLevel(logging.WARNING)
