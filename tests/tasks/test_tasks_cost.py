"""Every child reports its cost in its metrics: ``params`` (trainable parameters of the model it
trained) and ``step_ms`` (wall time per training step, evaluation and set-up excluded).

Tiny configs on the CPU, one torch thread, no Ray.
"""

from __future__ import annotations

import math

import pytest
import torch

from tasks import TASK_NAMES, get_task
from tasks.char_data import load_corpus
from tasks.noop import NoopTask

TINY = {  # a second or less per epoch
    "char_lm": {"hidden": 16, "embed": 8, "seq_len": 16, "batch_size": 4,
                "steps_per_epoch": 5, "eval_chars": 256},
    "seq2seq": {"hidden": 16, "embed": 8, "batch_size": 8, "steps_per_epoch": 5},
    "pointer_net": {"hidden": 16, "batch_size": 8, "steps_per_epoch": 5, "n_max": 6,
                    "val_n_max": 6},
}

pytestmark = pytest.mark.usefixtures("one_thread")


def _model_params(name: str, config: dict) -> int:
    """sum(p.numel()) over the trainable parameters of the model the task builds for `config`."""
    task = get_task(name)
    model = task.build(task.parse(config), torch.device("cpu"), 0).model
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("name", TASK_NAMES)
def test_each_task_reports_its_params_and_step_time(name):
    history = list(get_task(name).train(TINY[name], epochs=2, device="cpu", seed=0))
    expected = _model_params(name, TINY[name])
    for m in history:
        assert m["params"] == expected > 0 and isinstance(m["params"], int)
        assert math.isfinite(m["step_ms"]) and m["step_ms"] > 0
        # the steps' time lies within the run's wall time, which also holds the evaluations
        assert m["step_ms"] * m["steps"] / 1000.0 < m["seconds"]
    # one epoch: step_ms is measured over the same window as the throughput (training steps
    # only), so step_ms x throughput = work units per step
    first = history[0]
    assert first["step_ms"] * first["throughput"] / 1000.0 == pytest.approx(
        first["trained"] / first["steps"], rel=1e-6)


def test_params_follow_the_architecture():
    # pointer_net, rnn cell, sort (1 input feature), hidden H, one layer: embed 2H, encoder and
    # decoder 2H^2 + 2H each, END and start vectors 2H, mlp pointer 2H^2 + 2H; a glimpse adds
    # another mlp attention
    H = 8
    plain = {**TINY["pointer_net"], "cell": "rnn", "hidden": H}
    got = next(get_task("pointer_net").train(plain, epochs=1, device="cpu"))["params"]
    assert got == 6 * H * H + 10 * H
    glimpse = next(get_task("pointer_net").train({**plain, "glimpse": True}, epochs=1, device="cpu"))
    assert glimpse["params"] == got + 2 * H * H + 2 * H


def test_tied_weights_count_once():
    # char_lm, rnn cell, tied: embedding V*E, RNN H*E + H^2 + 2H, projection H*E (H != E),
    # decoder bias V; the decoder's weight is the embedding's
    V, E, H = load_corpus(None).vocab_size, 8, 16
    config = {**TINY["char_lm"], "cell": "rnn", "hidden": H, "embed": E}
    untied = next(get_task("char_lm").train(config, epochs=1, device="cpu"))["params"]
    tied = next(get_task("char_lm").train({**config, "tied": True}, epochs=1, device="cpu"))["params"]
    assert tied == V * E + H * E + H * H + 2 * H + H * E + V
    assert untied == V * E + H * E + H * H + 2 * H + H * V + V


def test_noop_reports_no_params_and_its_measured_step_time():
    fast = list(NoopTask().train({"a": 1}, epochs=3))
    assert all(m["params"] == 0 and math.isfinite(m["step_ms"]) and m["step_ms"] >= 0 for m in fast)
    slow = list(NoopTask().train({"a": 1, "sleep": 0.02}, epochs=2))
    assert all(m["params"] == 0 and 20.0 <= m["step_ms"] < 10_000 for m in slow)
