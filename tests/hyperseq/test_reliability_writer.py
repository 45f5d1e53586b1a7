"""The MLflow writer helper process dies mid-job (as when OOM-killed): the job stops in one line,
exit 1, with no second run for any trial, and `hyperseq resume` finishes it with exactly one
FINISHED run per trial and nothing left RUNNING (real Ray, real sqlite MLflow, noop children
that sleep; the helper is killed with SIGKILL)."""
from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from drivers import driver, mid_search, resume_finishes, trial_runs, wait_until

from hyperseq.tracking import tags as T
from hyperseq.tracking.store import open_store

SPACE = "name: sleepy\ntask: noop\ndecisions:\n  - {name: a, choices: [1, 2, 3, 4, 5, 6, 7, 8]}\n" \
        "  - {name: sleep, choices: [1.0]}\n"
TRIALS = 8


def _writer_of(driver_pid: int) -> int:
    """The pid of the driver's writer helper (``python -m hyperseq.tracking.writer``)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == driver_pid and b"hyperseq.tracking.writer" in cmdline:
            return int(entry)
    raise AssertionError(f"driver {driver_pid} has no writer process")


@pytest.mark.slow
def test_a_writer_killed_mid_job_stops_the_job_and_resume_repairs_it(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(SPACE)
    uri, storage = f"sqlite:///{tmp_path / 'm.db'}", tmp_path / "ray"
    args = [str(tmp_path / "s.yaml"), "--trials", str(TRIALS), "--concurrency", "2", "--epochs", "2",
            "--final-top", "0", "--name", "oom", "--tracking-uri", uri, "--storage", str(storage)]
    with driver(tmp_path, *args) as proc:
        wait_until(proc, mid_search(uri, "oom", storage / "oom"))         # a trial's run is open
        os.kill(_writer_of(proc.pid), signal.SIGKILL)
        code = proc.wait(120)
        err = proc.stderr.read().decode()
    lines = err.strip().splitlines()
    assert code == 1, err[-3000:]
    assert "Traceback" not in err and lines[-1].startswith("Error: the MLflow writer process"), err[-3000:]
    for words in ("died (killed by signal 9)", "job oom stopped", "hyperseq resume oom"):
        assert words in lines[-1], (words, lines[-1])
    [job] = open_store(uri).job_runs("oom")
    assert job.info.status == "RUNNING"                 # not FINISHED: a resume repairs it
    before = trial_runs(uri, "oom")
    assert len({r.data.tags[T.TAG_TRIAL] for r in before}) == len(before)      # no trial run twice

    runs = resume_finishes(uri, storage, "oom", TRIALS)
    assert all(r.info.end_time >= r.info.start_time for r in runs)
