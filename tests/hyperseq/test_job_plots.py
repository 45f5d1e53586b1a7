"""A job's plots: rendered and logged by its MLflow writer process, never by the driver."""
from __future__ import annotations

import logging
import math
import subprocess
import sys
from pathlib import Path

import pytest

from hyperseq.jobs import plots
from hyperseq.tracking.store import open_store

ROOT = Path(__file__).resolve().parents[2]
PNG = b"\x89PNG\r\n\x1a\n"


def _parent(tmp_path: Path) -> tuple[str, str]:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_id, _ = open_store(uri).start_job("plots", {}, {})
    return uri, run_id


def _artifact(uri: str, run_id: str, path: str, tmp_path: Path) -> bytes:
    return Path(open_store(uri).download_artifact(run_id, path, str(tmp_path))).read_bytes()


@pytest.mark.slow
def test_log_job_plots_logs_both_pngs(tmp_path: Path) -> None:
    uri, run_id = _parent(tmp_path)
    history = [(5, {"cell": {"gru": 0.4, "lstm": 0.6}}), (10, {"cell": {"gru": 0.2, "lstm": 0.8}})]
    plots.log_job_plots(uri, run_id, "plots", [0.1, None, 0.3, -math.inf, 0.2], history)
    for path in ("plots/best_metric.png", "plots/choice_probabilities.png"):
        assert _artifact(uri, run_id, path, tmp_path / path.replace("/", "_")).startswith(PNG)


@pytest.mark.slow
def test_a_plot_that_fails_is_skipped_and_the_other_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    uri, run_id = _parent(tmp_path)

    def broken(*args: object) -> None:
        raise ValueError("no axes today")

    monkeypatch.setattr(plots, "choice_probabilities_figure", broken)
    with caplog.at_level(logging.WARNING, logger=plots.__name__):
        plots.log_job_plots(uri, run_id, "plots", [0.5], [(1, {"cell": {"gru": 1.0}})])
    assert "choice_probabilities.png" in caplog.text and "no axes today" in caplog.text
    logged = {a.path for a in open_store(uri).client.list_artifacts(run_id, "plots")}
    assert logged == {"plots/best_metric.png"}


@pytest.mark.slow
def test_the_driver_does_not_import_matplotlib() -> None:
    """The job module (and the plots module it submits from) leave matplotlib to the writer."""
    code = ("import sys, hyperseq.jobs.run, hyperseq.jobs.plots; "
            "sys.exit('matplotlib' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=120).returncode == 0


def test_the_monitor_queues_the_plots_once_at_the_last_completion() -> None:
    """The writer renders them while Tune winds down; the job's own call later adds nothing."""
    from types import SimpleNamespace

    from hyperseq.jobs.monitor import JobMonitor

    class Queue:
        alive = True

        def __init__(self) -> None:
            self.calls: list[tuple] = []

        def submit(self, fn, *args) -> None:
            self.calls.append((fn, args))

    queue = Queue()
    monitor = JobMonitor("sqlite:///x.db", "run", 3, queue, name="job")     # type: ignore[arg-type]
    for reward in (0.1, 0.3):
        monitor.on_trial_complete(0, [], SimpleNamespace(last_result={"reward": reward}))
    assert plots.log_job_plots not in [fn for fn, _ in queue.calls]
    monitor.on_trial_complete(0, [], SimpleNamespace(last_result={"reward": 0.2}))
    monitor.plot()
    [args] = [a for fn, a in queue.calls if fn is plots.log_job_plots]
    assert args == ("sqlite:///x.db", "run", "job", [0.1, 0.3, 0.2], [])
