"""`BackgroundWriter`: MLflow writes in a helper process, in submission order.

A job's driver runs Ray Tune's event loop; MLflow's SQLAlchemy store is CPU-heavy Python.
Writing from a thread of the driver makes the two fight for the GIL and slows Tune's loop
for every trial, so the writes run in a child process (``python -m hyperseq.tracking.writer``)
fed through a pipe by a feeder thread.

- `submit(fn, *args)` queues a call of a module-level function (pickled by reference);
  errors are never raised: the first one is reported back (`failure`) and the helper skips
  the writes after it; the job (`jobs.watch`) then stops cleanly instead of losing trials;
- `flush()` waits until everything submitted so far is done (the helper acknowledges a
  marker on its stdout); `barrier()` places such a marker to `wait` for later, so a caller can
  wait for its own writes and not for what others queued after them (a job's plots);
  `close()` flushes and ends the helper;
- `shared_writer()` is one writer per driver process, started early (its MLflow imports
  overlap Ray's start) and reused by the jobs that process runs;
- a driver that dies without closing it (SIGKILL) loses what it had queued: the helper stops
  once its parent is gone, before a resume of the job reconciles the store;
- a helper that dies while the driver runs (OOM-killed) is a failure like a refused write
  (`died`): the job stops and a resume records what it had not written. It is not replaced
  within the job: a new helper would open a second run for each trial already open;
- MLflow's usage telemetry is off in the helper unless the user chose (``MLFLOW_DISABLE_TELEMETRY``
  or ``DO_NOT_TRACK`` set): it is called on every client call, a large share of the
  helper's CPU for a run's create, log_batch and end.
"""
from __future__ import annotations

import atexit
import itertools
import logging
import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[2]
ACK = b"hyperseq-writer-ack "
FAIL = b"hyperseq-writer-fail "          # a write that failed, in one line (the first is kept)


class BackgroundWriter:
    """Ordered, asynchronous calls executed by a helper process."""

    def __init__(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
        if "MLFLOW_DISABLE_TELEMETRY" not in env and "DO_NOT_TRACK" not in env:
            env["MLFLOW_DISABLE_TELEMETRY"] = "true"
        self._proc = subprocess.Popen([sys.executable, "-m", "hyperseq.tracking.writer"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, env=env,
                                      start_new_session=True)    # Ctrl-C: the driver drains it
        self._queue: queue.Queue = queue.Queue()
        self._markers = itertools.count(1)
        self._acked = 0
        self.failure: str | None = None    # the first write the helper could not make
        self.died: str | None = None       # why the helper ended before `close` (also the failure)
        self._cond = threading.Condition()
        self._closed = False
        self._feeder = threading.Thread(target=self._feed, name="hyperseq-writer-feed", daemon=True)
        self._reader = threading.Thread(target=self._read, name="hyperseq-writer-acks", daemon=True)
        self._feeder.start()
        self._reader.start()

    @property
    def alive(self) -> bool:
        return not self._closed and self._proc.poll() is None

    @property
    def closed(self) -> bool:
        return self._closed

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Queue `fn(*args, **kwargs)` for the helper (after everything submitted before)."""
        if self._closed:
            raise RuntimeError("BackgroundWriter is closed")
        self._queue.put((fn, args, kwargs))

    def flush(self, timeout: float = 300.0) -> bool:
        """Wait until every call submitted so far has run; False on timeout, a dead helper or
        a failed write (`failure`: the store is refusing writes, the rest would wait in vain)."""
        return self.wait(self.barrier(), timeout)

    def barrier(self) -> int:
        """A marker after every call submitted so far, to `wait` for later (calls submitted
        after it need not have run by then)."""
        marker = next(self._markers)
        self._queue.put(("__flush__", marker))
        return marker

    def wait(self, marker: int, timeout: float = 300.0) -> bool:
        """Wait until the calls before `marker` (`barrier`) have run; False as `flush`."""
        if self._proc.poll() is not None:
            return False
        with self._cond:
            return self._cond.wait_for(lambda: self._acked >= marker or self._proc.poll() is not None
                                       or self.failure is not None, timeout) \
                and self._acked >= marker and self.failure is None

    def close(self, timeout: float = 300.0) -> None:
        """Flush, then end the helper (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._feeder.join(timeout)
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("MLflow writer process did not finish in %.0f s; killing it", timeout)
            self._proc.kill()

    def _feed(self) -> None:
        stream = self._proc.stdin
        try:
            while (item := self._queue.get()) is not None:
                try:
                    data = pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)
                except Exception as err:               # noqa: BLE001 - e.g. a lambda
                    log.warning("MLflow write %r cannot be sent: %s", item[0], err)
                    continue
                stream.write(data)
                if self._queue.empty():
                    stream.flush()
        except OSError:                                # the helper died
            self._died()
        finally:
            try:
                stream.close()
            except OSError:
                pass

    def _read(self) -> None:
        for line in self._proc.stdout:
            if line.startswith(FAIL) and self.failure is None:
                with self._cond:
                    self.failure = line[len(FAIL):].decode(errors="replace").strip()
                    self._cond.notify_all()
            if line.startswith(ACK):
                with self._cond:
                    self._acked = int(line[len(ACK):])
                    self._cond.notify_all()
        self._died()                                   # EOF: wake any waiter

    def _died(self) -> None:
        """The helper's pipes closed: unless the driver closed it, it died (`died`, `failure`)."""
        code = None
        if not self._closed:
            try:
                code = self._proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        with self._cond:
            if not self._closed and self.died is None:
                how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit status {code}"
                self.died = f"the MLflow writer process (pid {self._proc.pid}) died ({how})"
                self.failure = self.failure or self.died
            self._cond.notify_all()


_SHARED: BackgroundWriter | None = None
_SHARED_LOCK = threading.Lock()


def shared_writer() -> BackgroundWriter:
    """This process's writer (started on first use, restarted if it died, closed at exit)."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None or not _SHARED.alive:
            _SHARED = BackgroundWriter()
            atexit.register(_SHARED.close)
        return _SHARED


class UsesWriter:
    """Mixin for Tune callbacks that queue MLflow writes through a `BackgroundWriter`.

    Tune pickles its callbacks with the experiment state: live handles (the writer and the
    attributes named in `_transient`) are dropped, and after a restore `writer` falls back
    to this process's shared writer. A writer that died is kept: its `failure` stops the job.
    """

    _writer: BackgroundWriter | None = None
    _transient: tuple[str, ...] = ("_writer",)

    @property
    def writer(self) -> BackgroundWriter:
        """The writer given, or (after Tune unpickled this callback on a restore) the shared one."""
        if self._writer is None or getattr(self._writer, "closed", False):   # (stand-ins have none)
            self._writer = shared_writer()
        return self._writer

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, **{name: None for name in self._transient}}


def _serve(stream: Any, acks: Any) -> None:
    """Helper process: apply pickled calls until EOF; acknowledge flush markers. Once the
    driver is gone (killed: this process was handed to another parent), the rest is dropped: a
    resume reconciles the store with Tune's state, and a late write would undo that."""
    driver, failed = os.getppid(), False
    while True:
        try:
            item = pickle.load(stream)
        except EOFError:
            return
        if os.getppid() != driver:
            log.warning("the driver (pid %d) is gone; dropping its remaining MLflow writes", driver)
            return
        if item[0] == "__flush__":
            acks.write(ACK + str(item[1]).encode() + b"\n")
            acks.flush()
            continue
        fn, args, kwargs = item
        if failed:                                     # the job is stopping; a resume records the rest
            continue
        try:
            fn(*args, **kwargs)
        except Exception as err:                       # noqa: BLE001 - reported, never raised here
            log.debug("MLflow write %s failed: %s", getattr(fn, "__name__", fn), err)
            failed = True
            line = " ".join(f"{type(err).__name__}: {err}".split())[:300]
            acks.write(FAIL + line.encode(errors="replace") + b"\n")
            acks.flush()


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)       # the driver decides when we stop
    logging.basicConfig(level=logging.WARNING, format="hyperseq writer: %(message)s")
    acks = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints go to stderr, not the acks
    import hyperseq.tracking.mlflow_store  # noqa: F401 - the MLflow imports, before the first write
    logging.getLogger("mlflow").setLevel(logging.CRITICAL)   # a failed write is reported to the driver
    _serve(sys.stdin.buffer, acks)
