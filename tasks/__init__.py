"""Child tasks whose hyperparameters the controller searches (torch + standard library only).

    from tasks import get_task, TASK_NAMES
    task = get_task("char_lm")
    for metrics in task.train(config, epochs=5, device="auto", seed=0):
        print(metrics[task.metric])

`TASKS` is the registry: a new child task is one module with a `Task` subclass and one line
here. Entries are imported lazily, so the no-op child needs no torch. Each call of
:func:`get_task` returns a fresh task object, so concurrent runs (threads or processes packed
on one GPU) share no mutable state beyond read-only data caches.
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> "module:class"
TASKS = {
    "char_lm": "tasks.char_lm:CharLMTask",
    "seq2seq": "tasks.seq2seq:Seq2SeqTask",
    "pointer_net": "tasks.pointer_net:PointerNetTask",
    "noop": "tasks.noop:NoopTask",            # instant and deterministic: overhead and fault tests
}
TASK_NAMES = ("char_lm", "seq2seq", "pointer_net")   # the child models (noop trains nothing)


def get_task(name: str) -> Any:
    """A new task object by registry name; an unknown name is a ValueError listing valid ones."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; valid tasks: {', '.join(TASKS)}")
    module, cls = TASKS[name].split(":")
    return getattr(importlib.import_module(module), cls)()


__all__ = ["TASKS", "TASK_NAMES", "get_task"]
