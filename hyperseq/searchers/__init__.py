"""Searchers: what to try next, behind one ask/tell protocol (`base.Searcher`).

`SEARCHERS` is the registry (name -> "module:class", imported lazily as Ray Tune's
``tune/search/__init__.py`` does). Jobs wrap a searcher in the Ray Tune adapter
(`tune.TuneSearcher`); the benchmarks replay the same objects against stored tables. A new
searcher is one module with a `Searcher` subclass and one line here; the contract suite in
``tests/contracts/`` then runs over it.
"""
from __future__ import annotations

import importlib
from typing import Any

from search_spaces import SearchSpace

from .base import Searcher

SEARCHERS = {
    "rnn": "hyperseq.searchers.rnn:RNNSearcher",          # the LSTM controller (REINFORCE)
    "random": "hyperseq.searchers.random:RandomSearcher",  # uniform over the space
    "tpe": "hyperseq.searchers.tpe:TPESearcher",           # Optuna's TPE
    "gp": "hyperseq.searchers.tpe:GPSearcher",             # Optuna's Gaussian-process BO
}


def names() -> tuple[str, ...]:
    return tuple(SEARCHERS)


def searcher_class(name: str) -> type[Searcher]:
    if name not in SEARCHERS:
        raise ValueError(f"unknown searcher {name!r}; choose one of {', '.join(SEARCHERS)}")
    module, cls = SEARCHERS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def create(name: str, space: SearchSpace, seed: int = 0, **options: Any) -> Searcher:
    """A fresh searcher by registry name."""
    return searcher_class(name)(space, seed=seed, **options)


__all__ = ["SEARCHERS", "Searcher", "create", "names", "searcher_class"]
