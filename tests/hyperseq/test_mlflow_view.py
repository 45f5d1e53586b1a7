"""What a user sees of a job: the MLflow experiment opens on its runs, `hyperseq ui` names the
runs page, plots and tables speak in the task's metric, the choice figure draws no panel for a
fixed decision, and the final phase's default row shows the task's default values."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from hyperseq.cli import cli
from hyperseq.cli import local as cli_local
from hyperseq.cli.output import print_table
from hyperseq.jobs import plots
from hyperseq.tracking import tags as T
from hyperseq.tracking.query import best_configs
from hyperseq.tracking.store import open_store
from tasks import get_task
from workers.rewards import reward_rule


def _uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


# ---- the experiment opens on its runs ------------------------------------------------------------
def test_a_new_experiment_carries_the_experiment_kind_tag(tmp_path: Path) -> None:
    store = open_store(_uri(tmp_path))
    exp_id = store.ensure()
    exp = store.client.get_experiment(exp_id)
    assert exp.tags[T.EXPERIMENT_KIND_TAG] == "custom_model_development"
    assert T.EXPERIMENT_KIND_TAG == "mlflow.experimentKind"


def test_an_experiment_made_without_the_tag_gets_it_and_a_chosen_kind_stays(tmp_path: Path) -> None:
    store = open_store(_uri(tmp_path))
    client = store.client
    exp_id = client.create_experiment(T.EXPERIMENT)             # as an older hyperseq made it
    assert T.EXPERIMENT_KIND_TAG not in client.get_experiment(exp_id).tags
    assert store.ensure() == exp_id
    assert client.get_experiment(exp_id).tags[T.EXPERIMENT_KIND_TAG] == T.EXPERIMENT_KIND
    client.set_experiment_tag(exp_id, T.EXPERIMENT_KIND_TAG, "genai_development")   # a user's choice
    store.ensure()
    assert client.get_experiment(exp_id).tags[T.EXPERIMENT_KIND_TAG] == "genai_development"


def test_ui_prints_the_runs_page_of_the_experiment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The store is real; only the blocking server is left out (`_serve` records its command).
    Before any job there is no experiment: the front page, and no store is created."""
    uri = _uri(tmp_path)
    served: list[list[str]] = []
    monkeypatch.setattr(cli_local, "_serve", lambda cmd: served.append(cmd) or 0)
    result = CliRunner().invoke(cli, ["ui", "--tracking-uri", uri, "--port", "5123"])
    assert result.exit_code == 0, result.output
    assert "at http://127.0.0.1:5123\n" in result.output and not (tmp_path / "mlflow.db").exists()
    exp_id = open_store(uri).ensure()
    result = CliRunner().invoke(cli, ["ui", "--tracking-uri", uri, "--port", "5123"])
    assert result.exit_code == 0, result.output
    assert f"at http://127.0.0.1:5123/#/experiments/{exp_id}/runs\n" in result.output
    assert len(served) == 2


@pytest.mark.parametrize("host, url", [("127.0.0.1", "http://127.0.0.1:5000/#/experiments/7/runs"),
                                       ("0.0.0.0", "http://127.0.0.1:5000/#/experiments/7/runs"),
                                       ("::1", "http://[::1]:5000/#/experiments/7/runs"),
                                       ("myhost", "http://myhost:5000/#/experiments/7/runs")])
def test_ui_url_is_one_a_browser_on_this_machine_opens(host: str, url: str) -> None:
    assert cli_local.ui_url(host, 5000, "7") == url


# ---- plots in the task's metric -------------------------------------------------------------------
def test_metric_values_invert_every_reward_rule() -> None:
    for metric, mode, values in (("val_loss", "min", [2.3, 0.7, 1.1]), ("val_exact_match", "max", [0.1, 0.9]),
                                 ("val_error", "min", [0.4, 3.0])):
        rule = reward_rule(metric, mode)
        got = plots.metric_values([rule(v) for v in values] + [None], rule)
        assert got[:-1] == pytest.approx(values) and got[-1] is None
    assert plots.metric_values([0.0], reward_rule("val_loss", "min")) == [None]   # a diverged child


def test_the_best_plot_speaks_in_the_metric_and_its_direction() -> None:
    fig = plots.best_so_far_figure([2.0, None, 1.5, 1.8, 1.2], "job", metric="val_loss", mode="min")
    try:
        ax = fig.axes[0]
        assert "val_loss" in ax.get_ylabel() and "reward" not in ax.get_ylabel()
        [step] = [line for line in ax.get_lines() if line.get_label() == "best so far"]
        assert list(step.get_ydata()) == [2.0, 2.0, 1.5, 1.5, 1.2]          # lowest so far
    finally:
        plots.png(fig)
    with pytest.raises(ValueError, match="mode"):
        plots.best_so_far_figure([1.0], metric="m", mode="up")


def test_a_job_plot_is_drawn_in_the_parent_runs_metric(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    uri = _uri(tmp_path)
    run_id, _ = open_store(uri).start_job("view", {T.TAG_METRIC: "val_loss", T.TAG_MODE: "min"}, {})
    drawn: list[tuple] = []
    real = plots.best_so_far_figure

    def spy(values, title="", metric="reward", mode="max"):
        drawn.append((list(values), metric, mode))
        return real(values, title, metric=metric, mode=mode)

    monkeypatch.setattr(plots, "best_so_far_figure", spy)
    plots.log_job_plots(uri, run_id, "view", [math.exp(-2.0), None, math.exp(-1.0)], [])
    [(values, metric, mode)] = drawn
    assert (metric, mode) == ("val_loss", "min") and values[0] == pytest.approx(2.0) and values[1] is None
    logged = {a.path for a in open_store(uri).client.list_artifacts(run_id, "plots")}
    assert logged == {"plots/best_metric.png"}


# ---- no panel for a decision with a single choice -------------------------------------------------
def test_the_choice_figure_has_no_axes_for_single_choice_decisions() -> None:
    history = [(n, {"cell": {"gru": 0.4 + d, "lstm": 0.6 - d}, "embed": {"32": 1.0},
                    "lr": {"0.001": 0.5, "0.01": 0.5}, "seq_len": {"64": 1.0}}) for n, d in ((4, 0.0), (8, 0.1))]
    fig = plots.choice_probabilities_figure(history)
    try:
        shown = [ax.get_title() for ax in fig.axes if ax.axison]
        assert shown == ["cell", "lr"]
    finally:
        plots.png(fig)


# ---- tables: the metric by name, the default row with values --------------------------------------
def _job_with_a_default_row(uri: str) -> None:
    store = open_store(uri)
    parent, exp_id = store.start_job("view", {T.TAG_METRIC: "val_loss", T.TAG_MODE: "min",
                                              T.TAG_TASK: "char_lm"}, {})
    for trial, config, loss, tags in (
            ("t1", {"cell": "gru", "layers": 1, "hidden_1": 64, "lr": 0.01}, 1.9, {T.TAG_PHASE: "final"}),
            ("t2", {}, 2.1, {T.TAG_PHASE: "final", T.TAG_DEFAULT: "true"}),
            ("t3", {"cell": "rnn", "layers": 2, "hidden_1": 64, "hidden_2": 128, "lr": 0.001}, 2.4, {})):
        child = store.open_child(exp_id, parent, "view", trial, config, tags)
        child.log_epoch({"val_loss": loss, "best_val_loss": loss, "reward": math.exp(-loss), "epoch": 1}, 1)
        child.finish("FINISHED")


def test_the_default_row_shows_the_task_default_values(tmp_path: Path) -> None:
    uri = _uri(tmp_path)
    _job_with_a_default_row(uri)
    df = best_configs("view", tracking_uri=uri)
    [row] = df[df["default"]].to_dict("records")
    defaults = get_task("char_lm").defaults
    assert (row["cell"], row["layers"], row["hidden_1"], row["lr"]) == (
        defaults["cell"], defaults["layers"], defaults["hidden"], defaults["lr"])
    assert row["hidden_2"] != row["hidden_2"]             # one layer by default: no second layer (NaN)
    assert df.attrs == {"metric": "val_loss", "mode": "min"}


def test_the_trial_table_heads_the_metric_column_with_its_name(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture) -> None:
    uri = _uri(tmp_path)
    _job_with_a_default_row(uri)
    print_table(best_configs("view", tracking_uri=uri), "view")
    header = next(line for line in capsys.readouterr().out.splitlines() if "trial_id" in line)
    cells = [c.strip() for c in header.strip("┃│ ").replace("┃", "│").split("│")]
    assert "metric" not in cells and cells.index("val_loss") < cells.index("reward")
    result = CliRunner().invoke(cli, ["best", "view", "--tracking-uri", uri])
    assert result.exit_code == 0, result.output
    default_line = next(line for line in result.output.splitlines() if "t2" in line)
    assert str(get_task("char_lm").defaults["cell"]) in default_line


def test_the_jobs_table_gives_each_jobs_best_in_its_metric(tmp_path: Path) -> None:
    from hyperseq.tracking.query import list_jobs
    uri = _uri(tmp_path)
    store = open_store(uri)
    for name, metric, mode, reward in (("lm", "val_loss", "min", math.exp(-1.25)),
                                       ("dates", "val_exact_match", "max", 0.75)):
        parent, _ = store.start_job(name, {T.TAG_METRIC: metric, T.TAG_MODE: mode}, {})
        store.log_metric_steps(parent, [({"best_reward": reward}, 1)])
    jobs = list_jobs(uri).set_index("job")
    assert jobs.loc["lm", "best"] == pytest.approx(1.25) and jobs.loc["dates", "best"] == pytest.approx(0.75)
    assert list(jobs.columns).index("best") == list(jobs.columns).index("metric") + 1


def test_the_trial_table_shows_the_params_that_vary_before_fixed_ones(capsys: pytest.CaptureFixture) -> None:
    import pandas as pd
    rows = [{"rank": i + 1, "trial_id": f"t{i}", "phase": "search", "reward": 0.1 * i, "metric": 2.0 - i,
             "status": "FINISHED", "epochs": 3, "a_fixed": 16, **{f"p{k}": i * k for k in range(1, 9)}}
            for i in range(3)]
    print_table(pd.DataFrame(rows), "t")
    header = next(line for line in capsys.readouterr().out.splitlines() if "trial_id" in line)
    assert "p8" in header and "a_fixed" not in header


def test_the_default_run_is_recorded_with_the_values_it_trains_with() -> None:
    """Its MLflow params (and config tag) show the task's defaults on the space's keys, so the
    MLflow runs table has no blank row either; other final-phase configs are recorded as given."""
    from search_spaces import load_space

    from hyperseq.tracking.recorder import trial_params
    space = load_space("char_lm_quick")
    defaults = get_task("char_lm").defaults
    params = trial_params(space, {"final": {T.TAG_DEFAULT: True}})
    assert params["cell"] == defaults["cell"] and params["lr"] == defaults["lr"]
    assert params["hidden_1"] == defaults["hidden"] and "hidden_2" not in params
    assert set(params) <= set(space.keys)
    assert trial_params(space, {"final": {"cell": "gru", T.TAG_DEFAULT: False}}) == {"cell": "gru"}
