"""Schedulers: when to stop a trial early (what to try is the searchers' business).

`SCHEDULERS` is the registry: name -> "module:function" building a Ray Tune `TrialScheduler`
for a job (``None`` = run every trial to its budget). Every scheduler acts on the trials'
``reward`` (maximised) with ``training_iteration`` (epochs) as time. A new scheduler is one
function and one line here.
"""
from __future__ import annotations

import importlib
from typing import Any

SCHEDULERS = {
    "none": None,                                   # every trial runs its full epoch budget
    "asha": "hyperseq.schedulers.asha:make",        # asynchronous successive halving
}


def names() -> tuple[str, ...]:
    return tuple(SCHEDULERS)


def create(name: str | None, epochs: int) -> Any:
    """The Tune scheduler for a job with `epochs` epochs per trial, or None."""
    name = name or "none"
    if name not in SCHEDULERS:
        raise ValueError(f"unknown scheduler {name!r}; choose one of {', '.join(SCHEDULERS)}")
    if SCHEDULERS[name] is None:
        return None
    module, fn = SCHEDULERS[name].split(":")
    return getattr(importlib.import_module(module), fn)(epochs)
