"""The tabular replay machinery (benchmarks/tabular.py) in reduced form: fewer seeds and
trials than BENCHMARKS.md; asserts correctness of the replay, not a speed or a winner."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from benchmarks.tabular import SEARCHERS, Table, replay, summarize

DATA = Path(__file__).resolve().parents[2] / "benchmarks" / "data"


@pytest.fixture(scope="module")
def table() -> Table:
    return Table.load()


def test_table_covers_its_space(table):
    assert len(table.metric) == table.space.size() >= 300
    finite = [v for v in table.metric.values() if math.isfinite(v)]
    assert len(finite) > 0.9 * len(table.metric)
    # real training: the best configs are far better than the unigram model (~3.35 nats/char)
    assert table.best < 2.3 and max(finite) > table.best + 0.3


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "gp" else n  # minutes
                                  for n in sorted(SEARCHERS)])
def test_replay_each_searcher(table, name):
    curves = [replay(table, SEARCHERS[name](table.space, seed), 40) for seed in range(3)]
    for curve in curves:
        assert len(curve) == 40
        assert all(b <= a for a, b in zip(curve, curve[1:])), "best-so-far must not get worse"
        assert curve[-1] >= table.best
    s = summarize(table, curves, [10, 40])
    assert 0 <= s[40]["median"] <= s[10]["median"]
    assert s["top1pct_target"] >= table.best


def test_exact_random_matches_sampling(table):
    """The closed form for uniform random search agrees with many sampled seeds."""
    import random
    import statistics

    from benchmarks.tabular import exact_random
    values = list(table.metric.values())
    rng = random.Random(0)
    for n in (10, 50):
        sampled = statistics.median(min(rng.choice(values) for _ in range(n)) - table.best
                                    for _ in range(3000))
        exact = exact_random(table, [n], n)[n]["median"]
        assert abs(exact - sampled) < 0.01, (n, exact, sampled)
        assert exact_random(table, [n], n)[n]["q1"] <= exact <= exact_random(table, [n], n)[n]["q3"]


def test_tune_controller_reports_extra_baseline_rows(tmp_path):
    """`--baselines` adds Optuna rows (TPE multivariate + group) beside the controller's."""
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "benchmarks/tune_controller.py", "--table", "pointer_net_1epoch_table",
                           "--seeds", "1", "--budgets", "5", "15", "--no-baselines", "--baselines", "tpe_mv",
                           "--jobs", "1"], cwd=root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {line.split(" | ")[0].lstrip("| "): line for line in proc.stdout.splitlines() if line.startswith("| ")}
    assert {"rnn (defaults)", "tpe_mv", "random (exact)"} <= set(rows)
    assert "`tpe_mv`: tpe {'multivariate': True, 'group': True}" in proc.stdout


def test_rank_sum_ranks_rows_per_cell_with_shared_ties():
    """The tuning split's one number: ranks per cell, summed; ties share their mean rank."""
    from benchmarks.tune_controller import rank_sum
    cell = lambda r25, trials: {25: {"median": r25}, "top1pct_median_trials": trials}  # noqa: E731
    summaries = {"p1": {"a": cell(0.0, 10), "b": cell(0.1, 10), "c": cell(0.2, math.inf)},
                 "p2": {"a": cell(0.3, 40), "b": cell(0.0, 20), "c": cell(0.0, 30)}}
    assert rank_sum(summaries, [25]) == {"a": 1 + 1.5 + 3 + 3, "b": 2 + 1.5 + 1.5 + 1, "c": 3 + 3 + 1.5 + 2}


@pytest.mark.parametrize("name", sorted(p.stem for p in DATA.glob("*_table.yaml")))
def test_every_stored_table_is_complete(name):
    """BENCHMARKS.md replays these: each holds exactly one row per config of its space."""
    table = Table.load(DATA / f"{name}.csv", DATA / f"{name}.yaml")
    assert len(table.metric) == table.space.size()
    assert sum(1 for _ in (DATA / f"{name}.csv").open()) == table.space.size() + 1   # no duplicate rows
