"""A `hyperseq run` driver as a real subprocess, for tests that signal or kill it."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

from hyperseq.tracking.store import open_store

ROOT = Path(__file__).resolve().parents[1]


def noop_space(name: str, sleep: float) -> str:
    """A space of eight noop configs whose children sleep `sleep` s per epoch."""
    return (f"name: {name}\ntask: noop\ndecisions:\n  - {{name: a, choices: [1, 2, 3, 4]}}\n"
            f"  - {{name: b, choices: [x, y]}}\n  - {{name: sleep, choices: [{sleep}]}}\n")


@contextlib.contextmanager
def driver(tmp: Path, *args: str, command: str = "run") -> Iterator[subprocess.Popen]:
    """``python -m hyperseq.cli COMMAND ARGS`` in its own process group (killed with it after)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen([sys.executable, "-m", "hyperseq.cli", command, *args], cwd=tmp, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        with contextlib.suppress(ProcessLookupError):     # the local Ray it started
            os.killpg(proc.pid, signal.SIGKILL)


def trial_runs(uri: str, job: str) -> list:
    """The job's trial runs ([] before the driver has created the store and the job)."""
    store = open_store(uri)
    if not store.exists():
        return []
    jobs = store.job_runs(job)
    return store.trial_runs(jobs[0].info.run_id) if jobs else []


def resume_finishes(uri: str, storage: Path, job: str, trials: int) -> list:
    """``hyperseq resume JOB`` exits 0 and leaves the job FINISHED with each of its `trials`
    search trials finished exactly once and no run left RUNNING; returns the trial runs."""
    from click.testing import CliRunner

    from hyperseq.cli import cli
    from hyperseq.tracking.tags import TAG_TRIAL
    resumed = CliRunner().invoke(cli, ["resume", job, "--tracking-uri", uri, "--storage", str(storage)])
    assert resumed.exit_code == 0, resumed.output
    [parent] = open_store(uri).job_runs(job)
    runs = trial_runs(uri, job)
    finished = [r.data.tags[TAG_TRIAL] for r in runs if r.info.status == "FINISHED"]
    assert parent.info.status == "FINISHED" and len(finished) == trials == len(set(finished))
    assert {r.info.status for r in runs} <= {"FINISHED", "KILLED"}, [(r.info.status, r.data.tags) for r in runs]
    return runs


def wait_until(proc: subprocess.Popen, ready: Callable[[], bool], timeout: float = 180) -> None:
    """Poll `ready()` until it holds; fail if the driver exits first or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "driver exited"
        if ready():
            return
        time.sleep(0.3)
    raise AssertionError("the driver never reached the state waited for")


def running_for_a_while(runs: list, started_within_s: float = 2.0) -> bool:
    """A RUNNING trial run that started less than `started_within_s` ago: killed now, the
    driver leaves it RUNNING (its noop child sleeps longer than that). A trial's run appears
    once the trial has run `recorder.OPEN_AFTER_S` (1 s), so poll for this just before a kill."""
    now_ms = time.time() * 1000
    return any(r.info.status == "RUNNING" and now_ms - r.info.start_time < started_within_s * 1000
               for r in runs)


def mid_search(uri: str, job: str, experiment: Path) -> Callable[[], bool]:
    """>= 1 trial FINISHED and >= 1 RUNNING (read only once Tune's directory exists: the driver
    has created the store by then; reading a sqlite store being created corrupts it)."""
    def ready() -> bool:
        if not experiment.exists():
            return False
        status = [r.info.status for r in trial_runs(uri, job)]
        return "FINISHED" in status and "RUNNING" in status
    return ready


def usage_error(result, words: list[str]) -> str:
    """A click result that is one ``Error:`` line on stderr holding every word, exit 2 and
    nothing on stdout; returns that line."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert result.stdout == ""
    return lines[0]
