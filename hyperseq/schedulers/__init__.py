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
    "hyperband": "hyperseq.schedulers.hyperband:make",   # ASHA within several brackets
}
AUTO = "auto"                 # the job option's default: `resolve` picks one of the above
HYPERBAND_MIN_EPOCHS = 4      # from this epoch budget on, the rnn searcher uses hyperband


def resolve(name: str | None, searcher: str, epochs: int) -> str:
    """`auto`: hyperband for the rnn searcher with a budget of HYPERBAND_MIN_EPOCHS epochs or
    more (short budgets have no rungs worth stopping at), else none."""
    if name in (None, AUTO):
        return "hyperband" if searcher == "rnn" and epochs >= HYPERBAND_MIN_EPOCHS else "none"
    return name


def names() -> tuple[str, ...]:
    return tuple(SCHEDULERS)


def option_names() -> tuple[str, ...]:
    """What `--scheduler` accepts: `auto` and every registered name."""
    return (AUTO, *SCHEDULERS)


def create(name: str | None, epochs: int) -> Any:
    """The Tune scheduler for a job with `epochs` epochs per trial, or None."""
    name = name or "none"
    if name not in SCHEDULERS:
        raise ValueError(f"unknown scheduler {name!r}; choose one of {', '.join(SCHEDULERS)}")
    if SCHEDULERS[name] is None:
        return None
    module, fn = SCHEDULERS[name].split(":")
    return getattr(importlib.import_module(module), fn)(epochs)
