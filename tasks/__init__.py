"""Child tasks whose hyperparameters the controller searches (torch + standard library only).

    from tasks import get_task, TASK_NAMES
    task = get_task("char_lm")
    for metrics in task.train(config, epochs=5, device="auto", seed=0):
        print(metrics[task.metric])

Each call of :func:`get_task` returns a fresh task object, so concurrent runs (threads or
processes packed on one GPU) share no mutable state beyond read-only data caches.
"""

from __future__ import annotations

from tasks.base import Task

TASK_NAMES = ("char_lm", "seq2seq", "pointer_net")


def get_task(name: str) -> Task:
    """A new task object by registry name; an unknown name is a ValueError listing valid ones."""
    if name == "char_lm":
        from tasks.char_lm import CharLMTask
        return CharLMTask()
    if name == "seq2seq":
        from tasks.seq2seq import Seq2SeqTask
        return Seq2SeqTask()
    if name == "pointer_net":
        from tasks.pointer_net import PointerNetTask
        return PointerNetTask()
    raise ValueError(f"unknown task {name!r}; valid tasks: {', '.join(TASK_NAMES)}")


__all__ = ["TASK_NAMES", "Task", "get_task"]
