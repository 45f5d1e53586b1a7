"""A multi-objective job's Pareto front from a real sqlite MLflow store: the query
(`best_configs(..., pareto=True)`), ``hyperseq best --pareto`` and the job's Pareto plot.

The store is written through the project's own tracking calls (a parent run with the
``hyperseq.options`` tag, trial runs with per-epoch metrics as the trainable reports them), with
a known front: val_loss:min and params:min under params<=50000 and step_ms<=50.
"""
from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

from hyperseq.cli import cli
from hyperseq.jobs.objectives import Objective
from hyperseq.tracking import tags as T
from hyperseq.tracking.front import epoch_values
from hyperseq.tracking.query import best_configs
from hyperseq.tracking.store import open_store

PNG = b"\x89PNG\r\n\x1a\n"
OPTIONS = {"objective": ["val_loss:min", "params:min"], "constraint": ["params<=50000", "step_ms<=50"]}
# trial id -> per-epoch (val_loss, params, step_ms); the best val_loss epoch is each trial's point
TRIALS: dict[str, list[tuple[float, float, float]]] = {
    "t1": [(2.0, 20000, 10), (2.3, 20000, 30)],      # front (fewest params); best epoch is not the last
    "t2": [(1.7, 40000, 20), (1.5, 40000, 20)],      # front (lowest feasible val_loss)
    "t3": [(1.8, 30000, 20)],                        # front
    "t4": [(1.9, 35000, 20)],                        # dominated by t3
    "t5": [(1.0, 10000, 80)],                        # dominates all, but step_ms > 50: infeasible
    "t6": [(0.9, 60000, 20)],                        # params > 50000: infeasible
}
FRONT = ["t2", "t3", "t1"]                           # best first by val_loss


def _trial(uri: str, exp: str, parent: str, job: str, tid: str, epochs: list[tuple[float, ...]],
           phase: str = "search", status: str = "FINISHED") -> None:
    """A trial run as the recorder writes it: step = epoch, with best_<metric> and best_epoch."""
    run = open_store(uri).open_child(exp, parent, job, tid, {"lr": 0.01 * len(tid), "cell": "gru"},
                                     tags={T.TAG_PHASE: phase})
    best: tuple[int, float] | None = None
    for epoch, (loss, params, step_ms) in enumerate(epochs, 1):
        if best is None or loss < best[1]:
            best = (epoch, loss)
        run.log_epoch({"epoch": epoch, "val_loss": loss, "params": params, "step_ms": step_ms,
                       "reward": 1 / (1 + best[1]), "best_val_loss": best[1], "best_epoch": best[0]}, step=epoch)
    run.finish(status)


def _job(uri: str, name: str, options: dict[str, Any], trials: dict[str, list]) -> str:
    parent, exp = open_store(uri).start_job(name, {T.TAG_METRIC: "val_loss", T.TAG_MODE: "min",
                                                   T.TAG_OPTIONS: json.dumps(options)}, {"trials": len(trials)})
    for tid, epochs in trials.items():
        _trial(uri, exp, parent, name, tid, epochs)
    return parent


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """The `TRIALS` job ("mo"), plus runs that must not count: a final-phase run and a failed
    run that would both dominate, and a trial without params (no point)."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('front') / 'mlflow.db'}"
    parent = _job(uri, "mo", OPTIONS, TRIALS)
    exp = open_store(uri).get_run(parent).info.experiment_id
    _trial(uri, exp, parent, "mo", "t3", [(0.5, 30000, 20)], phase="final")
    _trial(uri, exp, parent, "mo", "t7", [(0.5, 1000, 5)], status="FAILED")
    run = open_store(uri).open_child(exp, parent, "mo", "t8", {"lr": 0.5})
    run.log_epoch({"epoch": 1, "val_loss": 0.1, "step_ms": 1.0, "best_val_loss": 0.1, "best_epoch": 1}, step=1)
    run.finish("FINISHED")
    _job(uri, "single", {"objective": []}, TRIALS)        # one objective (the task metric), no constraint
    return uri, parent


def test_the_front_is_the_feasible_non_dominated_search_trials(store: tuple[str, str]) -> None:
    uri, _ = store
    df = best_configs("mo", top=None, tracking_uri=uri, pareto=True)
    assert list(df["trial_id"]) == FRONT and list(df["rank"]) == [1, 2, 3]
    assert list(df.columns[:7]) == ["rank", "trial_id", "phase", "val_loss", "params", "step_ms", "feasible"]
    assert set(df["phase"]) == {"search"} and df["feasible"].all()
    t1 = df.set_index("trial_id").loc["t1"]
    assert (t1["val_loss"], t1["params"], t1["step_ms"]) == (2.0, 20000, 10)    # at its best epoch
    assert {"lr", "cell", "reward", "metric", "status"} <= set(df.columns)
    assert df.attrs["objectives"] == ["val_loss:min", "params:min"] and df.attrs["front_size"] == 3
    top = best_configs("mo", top=2, tracking_uri=uri, pareto=True)
    assert list(top["trial_id"]) == FRONT[:2] and top.attrs["front_size"] == 3


def test_each_metric_is_read_at_the_best_epoch_by_the_first_objective(store: tuple[str, str]) -> None:
    uri, parent = store
    [t1] = [r for r in open_store(uri).trial_runs(parent) if r.info.run_name == "t1"]
    # first objective step_ms: epoch 1 (10 ms), where val_loss was 2.0 (its last value is 2.3)
    got = epoch_values(open_store(uri), t1, [Objective("step_ms", "min"), Objective("val_loss", "min")], [], "val_loss")
    assert got == {"step_ms": 10.0, "val_loss": 2.0}
    got = epoch_values(open_store(uri), t1, [Objective("step_ms", "max"), Objective("val_loss", "min")], [], "val_loss")
    assert got == {"step_ms": 30.0, "val_loss": 2.3}


def test_a_single_objective_front_is_the_best_trial(store: tuple[str, str]) -> None:
    uri, _ = store
    df = best_configs("single", tracking_uri=uri, pareto=True)
    assert list(df["trial_id"]) == ["t6"] and df.attrs["objectives"] == ["val_loss:min"]
    assert df.loc[0, "val_loss"] == best_configs("single", top=1, tracking_uri=uri).loc[0, "metric"]
    assert df.attrs["constraints"] == []


def test_best_pareto_json_and_csv(store: tuple[str, str]) -> None:
    uri, _ = store
    runner = CliRunner()
    done = runner.invoke(cli, ["best", "mo", "--pareto", "--format", "json", "--tracking-uri", uri])
    assert done.exit_code == 0, done.output
    rows = json.loads(done.stdout)
    assert [r["trial_id"] for r in rows] == FRONT and all(r["feasible"] is True for r in rows)
    assert [(r["val_loss"], r["params"]) for r in rows] == [(1.5, 40000), (1.8, 30000), (2.0, 20000)]
    done = runner.invoke(cli, ["best", "mo", "--pareto", "--format", "csv", "--top", "2", "--tracking-uri", uri])
    assert done.exit_code == 0, done.output
    csv = pd.read_csv(io.StringIO(done.stdout))
    assert list(csv["trial_id"]) == FRONT[:2] and "feasible" in csv.columns
    assert "showing 2 of the front's 3 trials" in done.stderr


def test_best_pareto_table_and_single_objective_note(store: tuple[str, str]) -> None:
    uri, _ = store
    done = CliRunner().invoke(cli, ["best", "mo", "--pareto", "--tracking-uri", uri])
    assert done.exit_code == 0, done.output
    assert "Pareto front: mo (val_loss:min, params:min; params<=50000, step_ms<=50)" in done.stdout
    assert all(t in done.stdout for t in FRONT) and "t5" not in done.stdout and "feasible" in done.stdout
    assert "40000" in done.stdout                                     # a count keeps its digits
    done = CliRunner().invoke(cli, ["best", "single", "--pareto", "--format", "json", "--tracking-uri", uri])
    assert done.exit_code == 0 and [r["trial_id"] for r in json.loads(done.stdout)] == ["t6"]
    assert "one objective (val_loss:min)" in done.stderr


def test_best_pareto_usage_errors(store: tuple[str, str]) -> None:
    uri, _ = store
    done = CliRunner().invoke(cli, ["best", "--all", "--pareto", "--tracking-uri", uri])
    assert done.exit_code == 2 and "--pareto" in done.stderr
    done = CliRunner().invoke(cli, ["best", "nojob", "--pareto", "--tracking-uri", uri])
    assert done.exit_code == 2 and "nojob" in done.stderr


@pytest.mark.slow
def test_the_pareto_plot_is_logged_to_the_parent(store: tuple[str, str], tmp_path: Path) -> None:
    from hyperseq.jobs.pareto_plot import log_pareto_plot
    uri, parent = store
    log_pareto_plot(uri, parent, "mo")
    data = Path(open_store(uri).download_artifact(parent, "plots/pareto.png", str(tmp_path))).read_bytes()
    assert data.startswith(PNG) and len(data) > 1000
    single = open_store(uri).job_runs("single")[0].info.run_id
    log_pareto_plot(uri, single, "single")                      # one objective: no front to draw
    assert not open_store(uri).client.list_artifacts(single, "plots")


def test_a_plot_that_fails_to_render_is_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The job's writer goes on: a warning, no artifact, no exception."""
    import logging

    from hyperseq.jobs import pareto_plot
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    parent = _job(uri, "mo-broken", OPTIONS, {"t1": TRIALS["t1"]})

    def broken(*args: object) -> None:
        raise ValueError("no axes today")

    monkeypatch.setattr(pareto_plot, "pareto_figure", broken)
    with caplog.at_level(logging.WARNING, logger=pareto_plot.__name__):
        pareto_plot.log_pareto_plot(uri, parent, "mo-broken")
    assert "plots/pareto.png" in caplog.text and "no axes today" in caplog.text
    assert not open_store(uri).client.list_artifacts(parent, "plots")


def test_the_front_figure_draws_every_trial_and_the_front(store: tuple[str, str]) -> None:
    from hyperseq.jobs.pareto_plot import pareto_figure
    from hyperseq.tracking.front import search_points
    uri, parent = store
    objectives, constraints, points = search_points(uri, parent=open_store(uri).get_run(parent))
    fig = pareto_figure(points, objectives, constraints, "mo")
    ax = fig.axes[0]
    assert ax.get_xlabel().startswith("val_loss") and ax.get_ylabel().startswith("params")
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(label.startswith("front (3)") for label in labels)
    assert any(label.startswith("infeasible (2)") for label in labels)
    assert math.isclose(min(ax.get_xlim()), 0.9, abs_tol=0.2)         # the infeasible points are drawn
