"""Multi-objective and constrained jobs (``--objective NAME:min|max``, ``--constraint NAME<=V``):
bad options exit 2 naming the option and value with nothing written; the options round-trip
through the options tag (resume) and the cluster driver's command line; the searchers are told
the objective vector and constraint values; and the issue's acceptance job runs end to end on
a real local Ray and an sqlite MLflow store, its finalists and answer within the constraint.
"""
from __future__ import annotations

import json
import math
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner
from drivers import usage_error

from hyperseq.cli import cli
from hyperseq.cli.local import run as run_command
from hyperseq.jobs import prepare_job
from hyperseq.jobs.final import TAG_PLAN
from hyperseq.jobs.options import JobOptions
from hyperseq.searchers import create
from hyperseq.searchers.tune import TuneSearcher
from hyperseq.tracking import tags as T
from hyperseq.tracking.mlflow_store import trial_config
from hyperseq.tracking.store import open_store
from search_spaces import load_space

BOUND = 50_000          # char_lm_quick's configs straddle it: 12.6k (1-layer rnn 64) to 225k (2-layer lstm 128)
MO = ["--objective", "val_loss:min", "--objective", "params:min"]
BAD = [
    (["--objective", "val_loss"], ["--objective", "'val_loss'", "NAME:min or NAME:max"]),
    (["--objective", "val_loss:up"], ["--objective", "'val_loss:up'", "min or max"]),
    (["--objective", "val_loss:min", "--objective", "val_loss:max"],
     ["--objective", "val_loss:max", "contradictory directions"]),
    (["--objective", "val_loss:min", "--objective", "val_loss:min"], ["--objective", "named twice"]),
    (["--objective", "accuracy:max"], ["--objective", "'accuracy:max'", "'accuracy'", "char_lm",
                                      "val_loss, val_bpc, params, step_ms"]),
    (["--constraint", "params<50000"], ["--constraint", "'params<50000'", "NAME<=VALUE"]),
    (["--constraint", "params<=lots"], ["--constraint", "'params<=lots'", "not a number"]),
    (["--constraint", "params<=nan"], ["--constraint", "'params<=nan'", "finite"]),
    (["--constraint", "flops<=5"], ["--constraint", "'flops<=5'", "'flops'", "char_lm"]),
    ([*MO, "--scheduler", "asha"], ["--scheduler", "'asha'", "several objectives"]),
    ([*MO, "--scheduler", "hyperband"], ["--scheduler", "'hyperband'"]),
    (["--constraint", "params<=5", "--warm-start", "auto"], ["--warm-start", "'auto'", "single-objective"]),
]


@pytest.mark.parametrize("args,words", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_objective_options_exit_2_and_write_nothing(tmp_path: Path, args: list[str], words: list[str]) -> None:
    result = CliRunner().invoke(cli, ["run", "char_lm_quick", *args, "--tracking-uri",
                                      f"sqlite:///{tmp_path / 'mlflow.db'}", "--storage", str(tmp_path / "ray")])
    usage_error(result, words)
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "ray").exists()


def _spec(tmp_path: Path, **options):
    return prepare_job("char_lm_quick", tracking_uri=f"sqlite:///{tmp_path / 'm.db'}",
                       storage=str(tmp_path / "s"), **options)


def test_options_round_trip_through_the_tag_and_the_driver_command_line(tmp_path: Path) -> None:
    from hyperseq.cluster.submit import entrypoint
    spec = _spec(tmp_path, objective=("val_loss:min", "params:MIN"), constraint=("params <= 5e4",))
    assert spec.options.objective == ("val_loss:min", "params:min")       # normalised
    assert spec.options.constraint == ("params<=50000",)
    assert (spec.metric, spec.mode, spec.scheduler) == ("val_loss", "min", "none")
    saved = json.loads(json.dumps(spec.options.saved()))                    # the hyperseq.options tag
    assert saved["objective"] == ["val_loss:min", "params:min"] and saved["constraint"] == ["params<=50000"]
    assert JobOptions.checked(**saved) == spec.options.replace(name=None, tracking_uri=None, storage=None)
    args = shlex.split(entrypoint("char_lm_quick", spec, None))             # a cluster job's driver
    assert args.count("--objective") == 2 and args.count("--constraint") == 1
    params = run_command.make_context("run", args[4:]).params
    del params["space"]
    assert JobOptions.checked(**params) == spec.options.replace(storage=None)
    assert spec.params()["objective"] == "val_loss:min,params:min"


def test_a_plain_job_is_unchanged(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    assert spec.options.objective is None and spec.options.constraint is None and not spec.several
    assert "objective" not in spec.params() and "constraint" not in spec.params()
    assert "--objective" not in spec.options.command_line()
    assert spec.trial_targets() == {"objectives": (), "constraints": ()} and spec.searcher_targets() == {}
    first = _spec(tmp_path, objective=("val_bpc:min",), epochs=4)       # one objective: it is the metric
    assert (first.metric, first.mode, first.scheduler, first.several) == ("val_bpc", "min", "hyperband", False)


@pytest.mark.parametrize("name", ["tpe", "gp"])
def test_optuna_searchers_get_the_vector_and_constraints_through_the_tune_adapter(name: str) -> None:
    space = load_space("char_lm_quick")
    adapter = TuneSearcher(create(name, space, seed=0, objectives=2, constrained=True), "reward", "max")
    for i in range(4):
        adapter.suggest(f"t{i}")
        adapter.on_trial_complete(f"t{i}", {"reward": 0.1, "objectives": [-2.0 + i, -1000.0 * i],
                                            "constraints": [1000.0 * i - 1500.0]})
    adapter.suggest("crashed")
    adapter.on_trial_complete("crashed", None, error=True)
    study = adapter.inner.study
    assert [t.values for t in study.trials[:4]] == [[-2.0, 0.0], [-1.0, -1000.0], [0.0, -2000.0], [1.0, -3000.0]]
    assert [t.system_attrs["constraints:0"] for t in study.trials[:4]] == [-1500.0, -500.0, 500.0, 1500.0]
    assert study.trials[4].state.name == "FAIL"
    assert adapter.suggest("next") is not None
    again = create(name, space, seed=0, objectives=2, constrained=True)     # a resumed job's searcher
    again.load_state_dict(adapter.inner.state_dict())
    assert [t.values for t in again.study.trials] == [t.values for t in study.trials[:5]]
    assert [t.system_attrs for t in again.study.trials] == [t.system_attrs for t in study.trials[:5]]


def test_a_single_objective_searcher_is_told_a_float() -> None:
    adapter = TuneSearcher(create("tpe", load_space("char_lm_quick"), seed=0), "reward", "max")
    adapter.suggest("t0")
    adapter.on_trial_complete("t0", {"reward": 0.25})
    assert adapter.inner.study.trials[0].values == [0.25] and not adapter.inner.study.trials[0].system_attrs


NOOP = "name: mo_noop\ntask: noop\ndecisions:\n  - {name: a, choices: [1, 2, 3, 4, 5, 6, 7, 8]}\n"


@pytest.mark.slow
def test_a_constrained_job_answers_with_the_best_feasible_final(tmp_path: Path, ray_cluster) -> None:
    """noop scores spread over [0, 1]: a bound in the middle leaves some trials feasible. The
    answer (`JobResult`, and the first row of its table) is the best feasible final."""
    from hyperseq.jobs.run import run_search
    (tmp_path / "s.yaml").write_text(NOOP)
    result = run_search(str(tmp_path / "s.yaml"), objective=("score:min", "step_ms:min"),
                        constraint=("score>=0.5",), searcher="tpe", trials=8, epochs=1, final_top=2,
                        name="mo-noop", tracking_uri=f"sqlite:///{tmp_path / 'm.db'}", storage=str(tmp_path / "r"))
    store = open_store(result.tracking_uri)
    runs = {r.info.run_id: r for r in store.trial_runs(result.parent_run_id)}
    top = runs[result.trials.iloc[0]["run_id"]]
    assert top.data.tags[T.TAG_PHASE] == "final" and top.data.metrics["feasible"] == 1
    assert trial_config(top) == result.best_config and top.data.metrics["best_score"] >= 0.5
    finals = [r for r in runs.values() if r.data.tags.get(T.TAG_PHASE) == "final" and r.data.metrics["feasible"] == 1]
    assert top.data.metrics["best_score"] == min(r.data.metrics["best_score"] for r in finals)  # score:min first
    for run in runs.values():           # judged at the best epoch by the first objective (score:min)
        assert run.data.metrics["feasible"] == float(run.data.metrics["best_score"] >= 0.5)


@pytest.mark.slow
def test_a_job_with_no_feasible_trial_fails_with_one_line(tmp_path: Path, ray_cluster) -> None:
    (tmp_path / "s.yaml").write_text(NOOP)
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    result = CliRunner().invoke(cli, ["run", str(tmp_path / "s.yaml"), "--constraint", "score>=2", "--trials", "3",
                                      "--epochs", "1", "--name", "none-ok", "--tracking-uri", uri,
                                      "--storage", str(tmp_path / "r")])
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("Error: job none-ok failed") and "score>=2" in lines[-1], lines
    [parent] = open_store(uri).job_runs("none-ok")
    assert parent.info.status == "FAILED" and TAG_PLAN not in parent.data.tags       # no final phase


@pytest.mark.slow
def test_the_acceptance_job_runs_end_to_end(tmp_path: Path, ray_cluster) -> None:
    """``hyperseq run char_lm_quick --objective val_loss:min --objective params:min --constraint
    "params<=50000"`` on sqlite, at a tiny budget: the finalists are feasible search configs
    (the task's default, 350k parameters, is retrained beside them and is not), and the answer
    the job records (the first row of its ``best_configs.csv``) is a final within the bound."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = CliRunner().invoke(cli, [
        "run", "char_lm_quick", *MO, "--constraint", f"params<={BOUND}", "--trials", "5", "--epochs", "1",
        "--final-top", "2", "--final-epochs", "1", "--name", "mo", "--tracking-uri", uri,
        "--storage", str(tmp_path / "ray")])
    assert result.exit_code == 0, result.output
    store = open_store(uri)
    [parent] = store.job_runs("mo")
    assert json.loads(parent.data.tags[T.TAG_OPTIONS])["constraint"] == [f"params<={BOUND}"]
    runs = store.trial_runs(parent.info.run_id)
    search = [r for r in runs if r.data.tags.get(T.TAG_PHASE) == "search"]
    assert len(search) == 5 and all(r.info.status == "FINISHED" for r in runs)
    for run in runs:                    # the marker agrees with the metric, on every trial run
        assert run.data.metrics["feasible"] == float(run.data.metrics["params"] <= BOUND), run.data.metrics
    feasible = {json.dumps(trial_config(r), sort_keys=True) for r in search if r.data.metrics["feasible"] == 1}
    finalists = [json.dumps(c, sort_keys=True) for c in json.loads(parent.data.tags[TAG_PLAN])
                 if "hyperseq.default" not in c]
    assert len(finalists) == min(2, len(feasible)) and set(finalists) <= feasible
    answer = store.download_artifact(parent.info.run_id, "best_configs.csv", str(tmp_path))
    first = Path(answer).read_text().splitlines()[1].split(",")
    header = Path(answer).read_text().splitlines()[0].split(",")
    top = store.get_run(first[header.index("run_id")])
    assert top.data.tags[T.TAG_PHASE] == "final" and top.data.metrics["params"] <= BOUND
    assert math.isfinite(top.data.metrics["reward"])
    assert Path(store.download_artifact(parent.info.run_id, "plots/pareto.png", str(tmp_path))).stat().st_size
    front = CliRunner().invoke(cli, ["best", "mo", "--pareto", "--top", "0", "--format", "json", "--tracking-uri", uri])
    assert front.exit_code == 0, front.output
    rows = json.loads(front.stdout)
    assert rows and all(row["feasible"] and row["params"] <= BOUND for row in rows)
    points = [(row["val_loss"], row["params"]) for row in rows]
    for p in points:                    # non-dominated among themselves
        assert not any(q[0] <= p[0] and q[1] <= p[1] and q != p for q in points)
    plain = CliRunner().invoke(cli, ["best", "mo", "--format", "json", "--tracking-uri", uri])
    assert plain.exit_code == 0, plain.output
    assert json.loads(plain.stdout)[0]["run_id"] == top.info.run_id      # plain best opens on the answer
