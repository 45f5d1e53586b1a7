"""The Ray a job runs on, and the Tune settings it runs with.

Side effect: the driver sets ``RAY_AIR_NEW_OUTPUT=0`` (unless set) so that Tune's console
output stays quiet at ``verbose=0``; progress is hyperseq's own (rich, on stderr).
"""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import stat
import sys
import threading
import uuid
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlparse

from ..envvars import temp_env
from .options import Unavailable
from .spec import JobError, JobSpec

ROOT = Path(__file__).resolve().parents[2]       # the checkout: search_spaces/, tasks/, ...
# Tune saves its experiment state (trials, searcher checkpoint) at most every this many
# seconds ("auto" starts at 10 s). After a driver crash, a trial that ended within this window
# of the crash is run again; a short period keeps that window small at ~ms per save.
CHECKPOINT_S = "1"
ANALYSIS_LOGGER = "ray.tune.analysis.experiment_analysis"
GCS_PROBE_S = 5.0               # seconds to open a TCP connection to $RAY_ADDRESS's GCS


def local_ray_options(num_cpus: int | None = None) -> dict[str, Any]:
    """`ray.init` keywords for a quiet local Ray whose workers can import this checkout."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return {"num_cpus": num_cpus or os.cpu_count(), "include_dashboard": False,
            "log_to_driver": False, "logging_level": logging.WARNING,
            "runtime_env": {"env_vars": {"PYTHONPATH": path}}}


def gcs_address() -> str | None:
    """`$RAY_ADDRESS` as a cluster to join (``HOST:PORT``, ``ray://...``, ``auto``), or None.

    Unavailable, in one line and within seconds, for a dashboard URL (``http://HEAD:8265`` is
    what `submit` takes; `ray.init` would fail with a long traceback) and for a GCS address
    nothing listens on (`ray.init` would retry for minutes). Neither is used as a local Ray:
    a job meant for a cluster must not quietly run on this machine.
    """
    value = os.environ.get("RAY_ADDRESS", "").strip()
    if not value or value in ("auto", "local"):
        return value or None
    parsed = urlparse(value if "://" in value else f"gcs://{value}")
    if parsed.scheme in ("http", "https"):
        raise Unavailable(f"RAY_ADDRESS={value} is a Ray dashboard URL (for `hyperseq submit`); `run` "
                          "joins a cluster by its GCS address (HEAD:6379): set that, or unset "
                          "RAY_ADDRESS for a local Ray", 2)
    try:
        host, port = parsed.hostname, parsed.port
    except ValueError:
        host = port = None
    if not host or not port:
        raise Unavailable(f"RAY_ADDRESS={value} is not a Ray GCS address HOST:PORT (e.g. HEAD:6379)", 2)
    try:
        socket.create_connection((host, port), timeout=GCS_PROBE_S).close()
    except OSError as err:
        why = "connection refused" if isinstance(err, ConnectionRefusedError) else (
            f"no answer within {GCS_PROBE_S:g} s" if isinstance(err, TimeoutError) else str(err) or type(err).__name__)
        raise Unavailable(f"cannot reach the Ray cluster at RAY_ADDRESS={value}: {why}") from None
    return value


def private_token() -> None:
    """Ray writes its auth token (``~/.ray/auth_token`` or ``$RAY_AUTH_TOKEN_PATH``) readable by
    everyone; a token lets its holder run code on the cluster, so make it owner-only."""
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH", "").strip() or Path.home() / ".ray" / "auth_token")
    try:
        if path.expanduser().is_file() and path.expanduser().stat().st_mode & 0o077:
            path.expanduser().chmod(stat.S_IRUSR | stat.S_IWUSR)
    except OSError as err:                           # not ours to change: say so, go on
        logging.getLogger(__name__).warning("could not make %s private: %s", path, err)


@contextlib.contextmanager
def ray_session(num_cpus: int | None = None) -> Iterator[bool]:
    """Use a running Ray, connect to `$RAY_ADDRESS` (checked first: `gcs_address`), or start a
    local one (shut down after; its auth token file made owner-only)."""
    running = sys.modules.get("ray")
    if running is not None and running.is_initialized():
        yield False
        return
    address = gcs_address()                          # before Ray's import: fail in seconds
    import ray
    if address:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
    else:
        private_token()
        ray.init(**local_ray_options(num_cpus))
        private_token()
    before = sigterm_as_sigint()
    try:
        yield True
    finally:
        if before is not None:
            signal.signal(signal.SIGTERM, before)
        ray.shutdown()


def sigterm_as_sigint() -> Any:
    """SIGTERM (a process manager stopping the driver) stops the job as Ctrl-C does: Tune stops
    the trials and every run is closed, instead of the process dying mid-write. Installed after
    `ray.init` (which sets its own SIGTERM handler), in the main thread only; returns the
    handler it replaced (None when it installed nothing)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, lambda signum, frame: os.kill(os.getpid(), signal.SIGINT))


def reuse_actors() -> bool:
    """Tune's `reuse_actors` for this Ray: on one node it cuts per-trial overhead; on several it
    keeps trials off a node whose actors start slowly (an idle actor here is handed to a trial
    whose own actor is still starting there), so it is off."""
    import ray
    return sum(1 for node in ray.nodes() if node.get("Alive")) <= 1


def actors_together(spec: JobSpec, phase: str, trials: int) -> tuple[str, int]:
    """(key, size): the trial actors of an experiment of the job (`phase`) start together
    (`workers.gather`) under a new key, `size` of them: its concurrency, capped by the trials it
    runs and by what the cluster holds at once; 1 (no wait) without actor reuse, where Tune
    never hands one trial's actor to another."""
    import ray
    key = f"{spec.name}/{phase}/{uuid.uuid4().hex[:12]}"
    if not reuse_actors():
        return key, 1
    have = ray.cluster_resources()
    fits = have.get("CPU", 0) // spec.cpus_per_trial
    if spec.gpus_per_trial:
        fits = min(fits, have.get("GPU", 0) // spec.gpus_per_trial)
    return key, max(1, int(min(spec.concurrency, trials, fits)))


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
