"""End to end: real local Ray, real sqlite MLflow store, real char_lm children (tiny).

One Ray instance for the module. Each searcher runs a short job over the same small space;
MLflow must then hold 1 parent and N children with params and per-epoch metric histories,
and `hyperseq best JOB --format json` must return N ranked rows.
"""
from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from hyperseq.cli import cli
from hyperseq.jobs import list_jobs, run_search
from search_spaces import load_space
from hyperseq.tracking import tags as T
from hyperseq.tracking.mlflow_store import trial_config
from hyperseq.tracking.store import default_tracking_uri, open_store

TRIALS, EPOCHS = 4, 2
pytestmark = pytest.mark.slow        # tiny char_lm jobs on a Ray cluster
SPACE = """\
name: tiny_char_lm
task: char_lm
decisions:
  - name: cell
    choices: [gru, lstm]
  - name: layers
    choices: [1, 2]
  - repeat: layers
    decisions:
      - name: hidden
        choices: [8, 16]
  - name: lr
    range: [0.003, 0.03]
    steps: 3
    log: true
  # single-choice decisions act as constants: keep the children tiny and fast
  - name: embed
    choices: [8]
  - name: seq_len
    choices: [16]
  - name: batch_size
    choices: [8]
  - name: steps_per_epoch
    choices: [3]
  - name: eval_chars
    choices: [256]
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("job")
    (tmp / "space.yaml").write_text(SPACE)
    return {"uri": f"sqlite:///{tmp / 'mlflow.db'}", "storage": str(tmp / "ray"),
            "space": str(tmp / "space.yaml")}


def _check_job(uri: str, name: str, searcher: str, space_path: str) -> None:
    space = load_space(space_path)
    [parent] = open_store(uri).job_runs(name)
    tags = parent.data.tags
    assert parent.info.status == "FINISHED"
    assert tags[T.TAG_SEARCHER] == searcher and tags[T.TAG_SPACE] == "tiny_char_lm"
    assert tags[T.TAG_TASK] == "char_lm" and tags[T.TAG_KIND] == "job"
    assert tags[T.TAG_STORAGE].endswith(name)
    c = open_store(uri).client
    artifacts = {a.path for a in c.list_artifacts(parent.info.run_id)}
    artifacts |= {a.path for a in c.list_artifacts(parent.info.run_id, "plots")}
    assert {"space.yaml", "best_configs.csv", "plots/best_metric.png"} <= artifacts
    with tempfile.TemporaryDirectory() as tmp:                       # a real image, not empty
        png = Path(c.download_artifacts(parent.info.run_id, "plots/best_metric.png", tmp)).read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 5_000
    assert len(c.get_metric_history(parent.info.run_id, "best_reward")) == TRIALS
    if searcher == "rnn":
        assert "plots/choice_probabilities.png" in artifacts
        assert c.get_metric_history(parent.info.run_id, "controller.baseline")

    children = open_store(uri).trial_runs(parent.info.run_id)
    assert len(children) == TRIALS
    for run in children:
        assert run.info.status == "FINISHED" and run.data.tags[T.TAG_KIND] == "trial"
        config = trial_config(run)
        assert space.validate(config) == config                 # projected, valid config
        assert run.data.params == {k: str(v) for k, v in config.items()}
        for key in ("val_loss", "reward", "train_loss"):
            assert len(c.get_metric_history(run.info.run_id, key)) == EPOCHS, key
        assert 0.0 < run.data.metrics["reward"] <= 1.0


def _best_json(uri: str, name: str) -> list[dict]:
    result = CliRunner().invoke(cli, ["best", name, "--format", "json", "--tracking-uri", uri])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("searcher", ["random", "tpe"])
def test_baseline_job(ray_cluster, store, searcher: str) -> None:
    result = run_search(store["space"], final_top=0, searcher=searcher, trials=TRIALS, concurrency=2,
                        epochs=EPOCHS, tracking_uri=store["uri"], storage=store["storage"], seed=1)
    assert result.status == "FINISHED" and len(result.trials) == TRIALS
    _check_job(store["uri"], result.name, searcher, store["space"])
    rows = _best_json(store["uri"], result.name)
    assert [r["rank"] for r in rows] == list(range(1, TRIALS + 1))
    assert rows[0]["reward"] == pytest.approx(result.best_reward)
    assert load_space(store["space"]).validate(result.best_config) == result.best_config


def test_rnn_job_through_the_cli(ray_cluster, store) -> None:
    runner = CliRunner()
    name = "tiny-rnn"
    result = runner.invoke(cli, ["run", store["space"], "--final-top", "0", "--searcher", "rnn", "--trials", str(TRIALS),
                                 "--epochs", str(EPOCHS), "--concurrency", "2", "--name", name,
                                 "--tracking-uri", store["uri"], "--storage", store["storage"],
                                 "--controller-options", "lr=0.01,elite_size=4"])
    assert result.exit_code == 0, result.output
    assert "top configurations" in result.stdout and name in result.stderr
    _check_job(store["uri"], name, "rnn", store["space"])
    params = open_store(store["uri"]).job_runs(name)[0].data.params
    assert params["controller.lr"] == "0.01" and params["controller.elite_size"] == "4"

    rows = _best_json(store["uri"], name)
    assert [r["rank"] for r in rows] == list(range(1, TRIALS + 1))
    rewards = [r["reward"] for r in rows]
    assert rewards == sorted(rewards, reverse=True)
    assert {"trial_id", "reward", "metric", "cell", "lr"} <= set(rows[0])
    assert rows[0]["metric"] == pytest.approx(min(r["metric"] for r in rows))   # val_loss: min

    csv = runner.invoke(cli, ["best", name, "--top", "2", "--format", "csv", "--tracking-uri", store["uri"]])
    assert csv.exit_code == 0 and len(pd.read_csv(io.StringIO(csv.stdout))) == 2

    again = runner.invoke(cli, ["run", store["space"], "--name", name, "--tracking-uri", store["uri"]])
    assert again.exit_code == 2 and "already exists" in again.stderr


def test_jobs_and_best_across_jobs(ray_cluster, store) -> None:
    jobs = list_jobs(store["uri"])
    assert set(jobs["searcher"]) == {"rnn", "random", "tpe"}
    assert (jobs["status"] == "FINISHED").all() and (jobs["trials_done"] == TRIALS).all()
    table = CliRunner().invoke(cli, ["jobs", "--tracking-uri", store["uri"]])
    assert table.exit_code == 0 and "tiny-rnn" in table.stdout
    rows = json.loads(CliRunner().invoke(cli, ["best", "--all", "--space", "tiny_char_lm", "--top", "0",
                                               "--format", "json", "--tracking-uri", store["uri"]]).stdout)
    assert len(rows) == 3 * TRIALS and rows[0]["reward"] == max(r["reward"] for r in rows)
    none = CliRunner().invoke(cli, ["best", "--all", "--space", "other", "--format", "json",
                                    "--tracking-uri", store["uri"]])
    assert json.loads(none.stdout) == []
