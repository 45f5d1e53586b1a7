"""Each task's `val_metrics` (what a job may name in ``--objective`` / ``--constraint``, with
``params`` and ``step_ms``) is what its epochs really report: one tiny epoch per task."""
from __future__ import annotations

import pytest

from hyperseq.jobs.objectives import task_metrics
from tasks import TASKS, get_task

TINY = {  # a second or less per epoch
    "char_lm": {"hidden": 32, "embed": 16, "seq_len": 32, "batch_size": 8, "steps_per_epoch": 5,
                "eval_chars": 1024},
    "seq2seq": {"hidden": 32, "embed": 8, "batch_size": 16, "steps_per_epoch": 5},
    "pointer_net": {"hidden": 32, "batch_size": 16, "steps_per_epoch": 5, "problem": "convex_hull"},
    "noop": {"a": 1},
}
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("name", sorted(TASKS))
def test_declared_metrics_are_reported(name: str) -> None:
    task = get_task(name)
    [metrics] = list(task.train(TINY[name], epochs=1, device="cpu", seed=0))
    assert not metrics["diverged"]
    assert task.metric in task.val_metrics
    assert set(task_metrics(task)) <= set(metrics), sorted(set(task_metrics(task)) - set(metrics))
    assert {k for k in metrics if k.startswith("val_")} <= set(task.val_metrics)     # none left out
    assert task_metrics(task)[0] == task.metric and task_metrics(task)[-2:] == ("params", "step_ms")
