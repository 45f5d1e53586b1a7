"""A driver stopped by SIGTERM or two quick Ctrl-Cs closes every run; a resume of a job whose
driver is alive is refused (real Ray, real sqlite MLflow, noop children that sleep)."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from drivers import driver, mid_search, trial_runs, wait_until

from hyperseq.cli import cli
from hyperseq.tracking.store import open_store

SPACE = "name: sleepy\ntask: noop\ndecisions:\n  - {name: a, choices: [1, 2, 3, 4, 5, 6, 7, 8]}\n" \
        "  - {name: sleep, choices: [1.0]}\n"
TRIALS = 6


def _args(tmp: Path, name: str) -> tuple[str, list[str]]:
    (tmp / "s.yaml").write_text(SPACE)
    uri = f"sqlite:///{tmp / 'm.db'}"
    return uri, [str(tmp / "s.yaml"), "--trials", str(TRIALS), "--concurrency", "2", "--epochs", "2",
                 "--final-top", "0", "--name", name, "--tracking-uri", uri, "--storage", str(tmp / "ray")]


@pytest.mark.slow
@pytest.mark.parametrize("signals", [(signal.SIGTERM,), (signal.SIGINT, signal.SIGINT)],
                         ids=["sigterm", "two-ctrl-c"])
def test_stopping_signals_leave_nothing_running(tmp_path: Path, signals: tuple) -> None:
    uri, args = _args(tmp_path, "stopped")
    with driver(tmp_path, *args) as proc:
        wait_until(proc, mid_search(uri, "stopped", tmp_path / "ray" / "stopped"))
        for sig in signals:
            os.kill(proc.pid, sig)
            time.sleep(0.3)             # two separate presses, not one: part of the scenario, not a wait
        code = proc.wait(120)
    assert code == 130, proc.stderr.read().decode()[-2000:]
    [job] = open_store(uri).job_runs("stopped")
    assert job.info.status == "KILLED"
    statuses = [r.info.status for r in trial_runs(uri, "stopped")]
    assert statuses and "RUNNING" not in statuses and "FINISHED" in statuses
    resumed = CliRunner().invoke(cli, ["resume", "stopped", "--tracking-uri", uri,
                                       "--storage", str(tmp_path / "ray")])
    assert resumed.exit_code == 0, resumed.output
    assert [r.info.status for r in trial_runs(uri, "stopped")].count("FINISHED") == TRIALS


@pytest.mark.slow
def test_resume_of_a_live_job_is_refused(tmp_path: Path) -> None:
    uri, args = _args(tmp_path, "alive")
    with driver(tmp_path, *args) as proc:
        wait_until(proc, mid_search(uri, "alive", tmp_path / "ray" / "alive"))
        t0 = time.monotonic()
        result = CliRunner().invoke(cli, ["resume", "alive", "--tracking-uri", uri,
                                          "--storage", str(tmp_path / "ray")])
        assert result.exit_code == 2 and "still running" in result.stderr, result.output
        # refused at once (the job's lock is held); 30 s only leaves a loaded machine room
        assert len(result.stderr.strip().splitlines()) == 1 and time.monotonic() - t0 < 30
        assert proc.wait(180) == 0
    [job] = open_store(uri).job_runs("alive")
    runs = trial_runs(uri, "alive")
    assert job.info.status == "FINISHED" and len(runs) == TRIALS
    assert all(r.info.status == "FINISHED" for r in runs)
