"""Jobs against a real MLflow server on a real PostgreSQL (`tests/servers.py`): the README's
quick start and a second job at once, then a SIGKILLed driver and `hyperseq resume`.

Each driver is a `hyperseq run` subprocess with its own local Ray under its own
``RAY_TMPDIR`` (killed by that directory at the end, whatever state the test left it in);
`best` / `jobs` / `resume` run in-process through click's CliRunner. Every case ends with
exact run counts by status in the store: one FINISHED run per trial, nothing RUNNING.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections import Counter
from dataclasses import fields
from pathlib import Path
from typing import Any, Iterator

import pytest
from click.testing import CliRunner

from hyperseq.cli import cli
from hyperseq.cluster.control import mlflow_summary
from hyperseq.jobs.options import JobOptions
from hyperseq.tracking import tags as T
from hyperseq.tracking.store import open_store
from drivers import noop_space, running_for_a_while, wait_until
from waiting import all_gone, state_kept_since, wait_for, writer_helpers
from servers import BIN, Tracking, clean_env, kill_mentioning, mlflow_postgres  # noqa: F401 (fixture)

# no final phase in the noop jobs (where this checkout has one): the search is what they test
NO_FINAL = ["--final-top", "0"] if "final_top" in {f.name for f in fields(JobOptions)} else []
JOB_TIMEOUT = 420            # s: char_lm_quick, 8 trials, beside a second job, on 2 shared cores


class Driver:
    """A `hyperseq run` subprocess in `cwd`, with HOME and its local Ray's temp dir there."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        cwd.mkdir(parents=True, exist_ok=True)
        self.ray_tmp = tempfile.mkdtemp(prefix="hsr", dir="/tmp")      # short: Ray's socket paths
        self.log = cwd / "driver.log"
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(
                [str(BIN / "hyperseq"), "run", *args], cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                env=clean_env(HOME=str(cwd), RAY_TMPDIR=self.ray_tmp), start_new_session=True)

    def wait(self, timeout: float = JOB_TIMEOUT) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"driver still running after {timeout} s:\n{self.output()}") from None

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def kill(self) -> None:
        """SIGKILL the driver and its group (its local Ray), then anything left in its temp dir."""
        for kill in (lambda: os.kill(self.proc.pid, signal.SIGKILL),
                     lambda: os.killpg(self.proc.pid, signal.SIGKILL)):
            try:
                kill()
            except ProcessLookupError:
                pass
        self.proc.wait(30)
        kill_mentioning(self.ray_tmp)
        shutil.rmtree(self.ray_tmp, ignore_errors=True)


@pytest.fixture
def drivers() -> Iterator[list[Driver]]:
    """Drivers a test starts; none outlives it."""
    started: list[Driver] = []
    yield started
    for driver in started:
        driver.kill()


def _hyperseq(*args: str) -> Any:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, (args, result.output)
    return result


def _counts(uri: str, job: str) -> tuple[Any, Counter, list[Any]]:
    """The job's parent run, its trial runs' statuses counted, and the trial runs."""
    [parent] = open_store(uri).job_runs(job)
    runs = open_store(uri).trial_runs(parent.info.run_id)
    return parent, Counter(r.info.status for r in runs), runs


def _max_overlap(runs: list[Any]) -> int:
    """Most trial runs open at one time (their start and end times, as the driver's writer
    recorded them: a lagging writer makes this a lower bound)."""
    events = sorted([(r.info.start_time, 1) for r in runs] + [(r.info.end_time, -1) for r in runs])
    most = now = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most


def _phase(run: Any) -> str:
    return run.data.tags.get("hyperseq.phase", "search")


def _check_done(uri: str, job: str, trials: int) -> list[Any]:
    """FINISHED parent, exactly `trials` FINISHED search runs (one per trial), every final-phase
    run (if the job has one) FINISHED, nothing else; `best`, `jobs` and the status summary
    agree. Returns the search runs."""
    parent, counts, runs = _counts(uri, job)
    search = [r for r in runs if _phase(r) == "search"]
    final = [r for r in runs if _phase(r) != "search"]
    assert parent.info.status == "FINISHED" and counts == {"FINISHED": len(runs)}, counts
    assert len(search) == trials and len({r.data.tags[T.TAG_TRIAL] for r in search}) == trials
    assert len(final) <= int(parent.data.params.get("final_top", 0)) + 1       # + the task's default
    best = json.loads(_hyperseq("best", job, "--top", "0", "--format", "json", "--tracking-uri", uri).stdout)
    assert len(best) == len(runs) and [r["rank"] for r in best] == list(range(1, len(runs) + 1))
    assert {r["status"] for r in best} == {"FINISHED"} and {r["job"] for r in best} == {job}
    assert sum(r.get("phase", "search") == "search" for r in best) == trials
    jobs = json.loads(_hyperseq("jobs", "--format", "json", "--tracking-uri", uri).stdout)
    [row] = [j for j in jobs if j["job"] == job]
    assert row["status"] == "FINISHED" and row["trials_done"] == trials == row["trials"]
    summary = mlflow_summary(uri, job)                      # what `hyperseq status` shows from MLflow
    assert summary["status"] == "FINISHED" and summary["trials_done"] == trials == summary["trials"]
    return search


@pytest.mark.slow
def test_quick_start_and_a_second_job_at_once(mlflow_postgres: Tracking, drivers: list[Driver]) -> None:
    """The README's first search (exact command) beside a noop job of 4 concurrent trials."""
    uri, tmp = mlflow_postgres.uri, mlflow_postgres.tmp
    (tmp / "noop.yaml").write_text(noop_space("pg_noop", 2.0))
    t0 = time.monotonic()
    drivers.append(Driver(["char_lm_quick", "--trials", "8", "--concurrency", "4", "--tracking-uri", uri],
                          tmp / "quick"))
    drivers.append(Driver([str(tmp / "noop.yaml"), "--name", "beside", "--searcher", "random",
                           "--trials", "8", "--concurrency", "4", "--cpus-per-trial", "0.5",
                           "--epochs", "2", "--tracking-uri", uri, "--storage", str(tmp / "beside"), *NO_FINAL],
                          tmp / "beside"))
    seen_running = False                       # `status` while it runs: the parent is RUNNING
    while drivers[1].proc.poll() is None and time.monotonic() - t0 < JOB_TIMEOUT:
        summary = mlflow_summary(uri, "beside")
        seen_running |= summary["status"] == "RUNNING" and summary["trials"] == 8
        time.sleep(1)
    codes = [d.wait() for d in drivers]
    took = time.monotonic() - t0
    assert codes == [0, 0], "\n\n".join(d.output() for d in drivers)
    assert seen_running

    jobs = json.loads(_hyperseq("jobs", "--format", "json", "--tracking-uri", uri).stdout)
    assert len(jobs) == 2 and len({j["job"] for j in jobs}) == 2           # each job listed once
    [quick] = [j["job"] for j in jobs if j["job"] != "beside"]
    assert quick.startswith("char_lm_quick-rnn-")
    quick_runs = _check_done(uri, quick, 8)
    beside_runs = _check_done(uri, "beside", 8)
    # trials at once: up to 4 (0.5 CPU each on 2 CPUs; the limiter's cap); fewer where worker
    # start-up on a loaded machine staggers them more than a trial lasts
    assert 2 <= _max_overlap(beside_runs) <= 4 and _max_overlap(quick_runs) <= 4
    _, quick_counts, _ = _counts(uri, quick)
    print(f"two jobs at once took {took:.1f} s; trials at once: quick {_max_overlap(quick_runs)}, "
          f"beside {_max_overlap(beside_runs)}; quick job's runs: {dict(quick_counts)} (search 8 + final)")


def _wait_mid_search(uri: str, job: str, driver: Driver, timeout: float = 180) -> str:
    """Poll the server until >= 2 trials FINISHED and >= 1 RUNNING; return the parent run id."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert driver.proc.poll() is None, driver.output()
        if open_store(uri).job_runs(job):
            parent, counts, _ = _counts(uri, job)
            if counts["FINISHED"] >= 2 and counts["RUNNING"]:
                return parent.info.run_id
        time.sleep(0.3)
    raise AssertionError(f"the search never reached a mid-search state:\n{driver.output()}")


@pytest.mark.slow
def test_sigkilled_driver_resumes_on_postgres(mlflow_postgres: Tracking, drivers: list[Driver]) -> None:
    uri, tmp = mlflow_postgres.uri, mlflow_postgres.tmp
    trials, epochs = 6, 2
    (tmp / "sleepy.yaml").write_text(noop_space("pg_noop", 1.5))
    drivers.append(Driver([str(tmp / "sleepy.yaml"), "--name", "crashy", "--trials", str(trials),
                           "--concurrency", "2", "--epochs", str(epochs), "--seed", "3",
                           "--tracking-uri", uri, "--storage", str(tmp / "crashy"), *NO_FINAL], tmp / "crashy"))
    parent = _wait_mid_search(uri, "crashy", drivers[0])
    _, _, runs = _counts(uri, "crashy")
    done_before = {r.data.tags[T.TAG_TRIAL]: r.info.run_id for r in runs if r.info.status == "FINISHED"}
    seen = time.time()                           # Tune saves `done_before` after this
    wait_until(drivers[0].proc, lambda: state_kept_since(tmp / "crashy" / "crashy", seen))
    wait_until(drivers[0].proc, lambda: running_for_a_while(_counts(uri, "crashy")[2]))
    writers = writer_helpers(drivers[0].proc.pid)
    assert writers, "found no MLflow writer helper of the driver to wait for"
    drivers[0].kill()
    wait_for(lambda: all_gone(writers), 30, what="the killed driver's MLflow writer helper to exit")
    _, at_crash, crash_runs = _counts(uri, "crashy")
    assert at_crash["RUNNING"] >= 1 and 2 <= at_crash["FINISHED"] < trials, at_crash
    running = {r.info.run_id for r in crash_runs if r.info.status == "RUNNING"}
    assert mlflow_summary(uri, "crashy")["status"] == "RUNNING"

    t0 = time.monotonic()
    storage = ["--storage", str(tmp / "crashy")] if any(   # where the run put Tune's state
        p.name == "storage" for p in cli.commands["resume"].params) else []
    result = CliRunner().invoke(cli, ["resume", "crashy", "--tracking-uri", uri, *storage])
    assert result.exit_code == 0, result.output
    print(f"resume took {time.monotonic() - t0:.1f} s; at the crash: {dict(at_crash)}")

    job, counts, runs = _counts(uri, "crashy")
    assert job.info.run_id == parent and job.info.status == "FINISHED"
    interrupted = [r for r in runs if r.info.status == "KILLED"]
    assert counts == {"FINISHED": trials, "KILLED": len(interrupted)}, counts
    for run in (r for r in runs if r.info.run_id in running):   # each ends KILLED, or FINISHED
        assert run.data.tags.get(T.TAG_INTERRUPTED) == "true" or (  # if Tune had its trial done
            run.info.status == "FINISHED" and run.data.tags.get(T.TAG_CLOSED_BY) == "hyperseq resume"), run
    assert all(r.data.tags.get(T.TAG_INTERRUPTED) == "true"                 # running at the crash,
               or r.data.tags.get("hyperseq.superseded") == "true"           # or ended < 1 s before
               for r in interrupted)
    finished = {r.data.tags[T.TAG_TRIAL]: r.info.run_id for r in runs if r.info.status == "FINISHED"}
    assert len(finished) == trials and done_before.items() <= finished.items()   # kept, not re-run
    [row] = [j for j in json.loads(_hyperseq("jobs", "--format", "json", "--tracking-uri", uri).stdout)
             if j["job"] == "crashy"]
    assert row["status"] == "FINISHED" and row["trials_done"] == trials
    best = json.loads(_hyperseq("best", "crashy", "--top", "0", "--format", "json", "--tracking-uri", uri).stdout)
    assert len(best) == trials and {r["status"] for r in best} == {"FINISHED"}   # one row per trial
