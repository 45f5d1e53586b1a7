"""The tabular replay machinery (benchmarks/tabular.py) in reduced form: fewer seeds and
trials than BENCHMARKS.md; asserts correctness of the replay, not a speed or a winner."""
from __future__ import annotations

import math

import pytest

from benchmarks.tabular import SEARCHERS, Table, replay, summarize


@pytest.fixture(scope="module")
def table() -> Table:
    return Table.load()


def test_table_covers_its_space(table):
    assert len(table.metric) == table.space.size() >= 300
    finite = [v for v in table.metric.values() if math.isfinite(v)]
    assert len(finite) > 0.9 * len(table.metric)
    # real training: the best configs are far better than the unigram model (~3.35 nats/char)
    assert table.best < 2.3 and max(finite) > table.best + 0.3


@pytest.mark.parametrize("name", sorted(SEARCHERS))
def test_replay_each_searcher(table, name):
    curves = [replay(table, SEARCHERS[name](table.space, seed), 40) for seed in range(3)]
    for curve in curves:
        assert len(curve) == 40
        assert all(b <= a for a, b in zip(curve, curve[1:])), "best-so-far must not get worse"
        assert curve[-1] >= table.best
    s = summarize(table, curves, [10, 40])
    assert 0 <= s[40]["median"] <= s[10]["median"]
    assert s["top1pct_target"] >= table.best
