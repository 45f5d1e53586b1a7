"""Tabular benchmark: a table of trained char_lm configs, and searchers replayed against it.

A table row is one configuration of a space with the metric its full training reached; a
replay asks a searcher for configs and looks their metric up instead of training. The searchers
are the registry's (`hyperseq.searchers`), told the reward of each looked-up metric:

    searcher = SEARCHERS["rnn"](table.space, seed);  replay(table, searcher, trials)
"""
from __future__ import annotations

import csv
import functools
import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from hyperseq import searchers
from search_spaces import SearchSpace
from workers.rewards import reward_rule

DATA = Path(__file__).resolve().parent / "data"
TABLE = DATA / "char_lm_table.csv"
SPACE = DATA / "char_lm_table.yaml"


def config_key(space: SearchSpace, config: Mapping[str, Any]) -> tuple[int, ...]:
    return tuple(space.encode(config))


@dataclass
class Table:
    space: SearchSpace
    metric: dict[tuple[int, ...], float]        # token sequence -> metric (inf = diverged)
    header: dict[str, Any]                       # how the table was made

    @classmethod
    def load(cls, path: Path = TABLE, space_path: Path = SPACE) -> "Table":
        space = SearchSpace.from_yaml(space_path)
        header = json.loads(path.with_suffix(".json").read_text())
        metric: dict[tuple[int, ...], float] = {}
        with path.open() as f:
            for row in csv.DictReader(f):
                cfg = {s.key: _parse(row[s.key], s.choices) for s in space.slots if row.get(s.key, "") != ""}
                metric[config_key(space, cfg)] = float(row[space.metric])
        return cls(space, metric, header)

    @property
    def best(self) -> float:
        values = self.metric.values()
        return min(values) if self.space.mode == "min" else max(values)

    def top_fraction(self, frac: float) -> float:
        """The metric value a config must reach to be in the table's top `frac`."""
        ordered = sorted(self.metric.values(), reverse=self.space.mode == "max")
        return ordered[max(0, math.ceil(frac * len(ordered)) - 1)]

    def lookup(self, config: Mapping[str, Any]) -> float:
        return self.metric[config_key(self.space, config)]


def _parse(text: str, choices: tuple) -> Any:
    for c in choices:
        if str(c) == text:
            return c
    raise ValueError(f"table value {text!r} is not one of {list(choices)}")


class TableSearcher:
    """A registry searcher (`hyperseq.searchers`, the same objects jobs use) on a table: told
    the table's metric, it tells the searcher the reward the workers would have reported."""

    def __init__(self, name: str, space: SearchSpace, seed: int, **options: Any) -> None:
        self.inner = searchers.create(name, space, seed=seed, **options)
        self.rule = reward_rule(space.metric, space.mode)

    def ask(self) -> dict[str, Any]:
        return self.inner.ask()

    def tell(self, config: dict[str, Any], metric: float | None) -> None:
        self.inner.tell(config, None if metric is None else self.rule(metric))

    def warm_start(self, configs: list[dict[str, Any]], metrics: list[float]) -> None:
        """Earlier trials, as a job's `--warm-start` hands them over."""
        self.inner.warm_start(configs, [self.rule(m) for m in metrics])


def history(table: "Table", seed: int, trials: int) -> tuple[list[dict[str, Any]], list[float]]:
    """The first `trials` (config, metric) pairs of a random search with `seed`: a warm start."""
    searcher = SEARCHERS["random"](table.space, seed)
    configs = [searcher.ask() for _ in range(trials)]
    return configs, [table.lookup(c) for c in configs]


SEARCHERS: dict[str, Callable[..., TableSearcher]] = {
    name: functools.partial(TableSearcher, name) for name in searchers.names()}


def replay(table: Table, searcher: TableSearcher, trials: int) -> list[float]:
    """Best-so-far metric after each trial (each ask costs a trial, repeats included)."""
    sign = 1 if table.space.mode == "min" else -1
    best, curve = math.inf, []
    for _ in range(trials):
        cfg = searcher.ask()
        value = table.lookup(cfg)
        searcher.tell(cfg, value)
        if math.isfinite(value):
            best = min(best, sign * value)
        curve.append(sign * best)
    return curve


def summarize(table: Table, curves: list[list[float]], budgets: list[int]) -> dict[str, Any]:
    """Regret quartiles at each budget and trials to reach the table's top 1%."""
    sign = 1 if table.space.mode == "min" else -1
    out: dict[str, Any] = {}
    for b in budgets:
        regrets = sorted(sign * (c[b - 1] - table.best) for c in curves)
        q = statistics.quantiles(regrets, n=4) if len(regrets) > 1 else regrets * 3
        out[b] = {"median": statistics.median(regrets), "q1": q[0], "q3": q[2]}
    target = table.top_fraction(0.01)
    hits = [next((i + 1 for i, v in enumerate(c) if sign * v <= sign * target), None) for c in curves]
    reached = sorted(h for h in hits if h is not None)
    out["top1pct_target"] = target
    out["top1pct_reached"] = f"{len(reached)}/{len(curves)}"
    # median over seeds, counting a seed that never got there as "more than the budget"
    hits_sorted = sorted(h if h is not None else math.inf for h in hits)
    out["top1pct_median_trials"] = hits_sorted[len(hits_sorted) // 2]
    return out


def exact_random(table: Table, budgets: list[int], horizon: int) -> dict[str, Any]:
    """What `summarize` would report for uniform random search over infinitely many seeds:
    the best of n uniform draws (with replacement, as RandomSearcher) has P(best <= x) =
    1 - (1 - F(x))^n, F the table's metric CDF. No sampling noise: the reference line."""
    sign = 1 if table.space.mode == "min" else -1
    values = sorted(sign * v for v in table.metric.values())           # best first
    size = len(values)

    def quantile(n: int, q: float) -> float:
        for i, v in enumerate(values):
            if 1 - (1 - (i + 1) / size) ** n >= q:
                return v - values[0]
        return math.inf

    out: dict[str, Any] = {b: {"median": quantile(b, 0.5), "q1": quantile(b, 0.25), "q3": quantile(b, 0.75)}
                           for b in budgets}
    target = table.top_fraction(0.01)
    p = sum(sign * v <= sign * target for v in table.metric.values()) / size
    out["top1pct_target"] = target
    out["top1pct_reached"] = f"p={1 - (1 - p) ** horizon:.2f}"
    out["top1pct_median_trials"] = math.ceil(math.log(0.5) / math.log(1 - p))
    return out
