"""Contract tests run over all three tasks: registry, config validation, the metrics dict,
divergence handling, CPU determinism, and the default search spaces (YAML) they accept.

Each test trains tiny configs for a few steps. Torch runs single-threaded here so timings hold
on a shared machine (OpenMP threads that compete with other processes for a few cores slow
training down by an order of magnitude).
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
import torch
import yaml

from tasks import TASK_NAMES, get_task

SPACES = Path(__file__).resolve().parents[2] / "search_spaces"
TINY = {  # a few seconds or less per epoch
    "char_lm": {"hidden": 32, "embed": 16, "seq_len": 32, "batch_size": 8,
                "steps_per_epoch": 10, "eval_chars": 2048},
    "seq2seq": {"hidden": 32, "embed": 8, "batch_size": 16, "steps_per_epoch": 10},
    "pointer_net": {"hidden": 32, "batch_size": 16, "steps_per_epoch": 10},
}
BAD_CELL = {"char_lm": "peephole_gru", "seq2seq": "peephole_lstm", "pointer_net": "foo"}
VOLATILE = {"seconds", "throughput", "tokens_per_s", "seqs_per_s", "step_ms"}  # wall-clock dependent


pytestmark = pytest.mark.usefixtures("one_thread")


def test_registry():
    assert TASK_NAMES == ("char_lm", "seq2seq", "pointer_net")
    with pytest.raises(ValueError, match="'nope'.*char_lm, seq2seq, pointer_net"):
        get_task("nope")
    expected = {"char_lm": ("val_loss", "min"), "seq2seq": ("val_exact_match", "max"),
                "pointer_net": ("val_seq_acc", "max")}
    for name in TASK_NAMES:
        task = get_task(name)
        assert (task.name, task.metric, task.mode) == (name, *expected[name])
        assert get_task(name) is not task  # fresh objects: no shared mutable state


@pytest.mark.parametrize("name", TASK_NAMES)
def test_defaults_roundtrip(name):
    task = get_task(name)
    defaults = task.defaults
    assert {"lr", "optimizer", "batch_size", "steps_per_epoch", "grad_clip"} <= set(defaults)
    assert task.parse(defaults) == task.parse({})
    assert all(not isinstance(v, (list, dict)) for v in defaults.values())


@pytest.mark.parametrize("name", TASK_NAMES)
def test_unknown_key_rejected_before_training(name):
    task = get_task(name)
    with pytest.raises(ValueError, match="'learning_rate'"):
        task.train({"learning_rate": 0.1})  # raises at the call, not at the first next()


@pytest.mark.parametrize("name", TASK_NAMES)
def test_bad_values_name_key_and_value(name):
    task = get_task(name)
    with pytest.raises(ValueError, match=f"{name} config: cell='{BAD_CELL[name]}' is not one of"):
        task.train({"cell": BAD_CELL[name]})
    with pytest.raises(ValueError, match="lr='fast'"):
        task.train({"lr": "fast"})
    with pytest.raises(ValueError, match="batch_size=2.5 is not an integer"):
        task.train({"batch_size": 2.5})
    with pytest.raises(ValueError, match="batch_size=True"):
        task.train({"batch_size": True})
    with pytest.raises(ValueError, match="lr=-1"):
        task.train({"lr": -1.0})
    with pytest.raises(ValueError, match="epochs"):
        task.train({}, epochs=0)
    with pytest.raises(ValueError, match="device"):
        task.train({}, device="tpu")
    assert task.parse({"batch_size": 16.0}).batch_size == 16  # YAML grids may give floats


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA error")
def test_cuda_requested_without_cuda():
    with pytest.raises(ValueError, match="CUDA is not available"):
        get_task("pointer_net").train({}, device="cuda:0")


@pytest.mark.parametrize("name", TASK_NAMES)
def test_metrics_dicts(name):
    task = get_task(name)
    history = list(task.train(TINY[name], epochs=2, device="cpu", seed=0))
    assert [m["epoch"] for m in history] == [1, 2]
    assert [m["steps"] for m in history] == [10, 20]
    key = "seqs_per_s" if name == "pointer_net" else "tokens_per_s"
    for m in history:
        assert {task.metric, "train_loss", "steps", "seconds", "throughput", key,
                "num_params", "diverged"} <= set(m)
        assert m["diverged"] is False and m["throughput"] == m[key] > 0
        assert isinstance(m["num_params"], int) and m["num_params"] > 0
        assert all(isinstance(v, (int, float, bool)) for v in m.values())
        assert math.isfinite(m[task.metric])
    assert history[1]["seconds"] > history[0]["seconds"] > 0


@pytest.mark.parametrize("name", TASK_NAMES)
def test_cpu_determinism(name):
    task = get_task(name)
    config = {**TINY[name], "dropout": 0.2} if name == "char_lm" else TINY[name]
    strip = lambda ms: [{k: v for k, v in m.items() if k not in VOLATILE} for m in ms]  # noqa: E731
    first = strip(task.train(config, epochs=2, device="cpu", seed=3))
    again = strip(task.train(config, epochs=2, device="cpu", seed=3))
    other = strip(task.train(config, epochs=2, device="cpu", seed=4))
    assert first == again
    assert first[-1]["train_loss"] != other[-1]["train_loss"]


@pytest.mark.parametrize("name", TASK_NAMES)
def test_divergence_stops_early(name):
    task = get_task(name)
    config = {**TINY[name], "optimizer": "adam", "lr": 1.0e4, "grad_clip": 0.0}
    history = list(task.train(config, epochs=5, device="cpu", seed=0))
    assert len(history) < 5
    assert history[-1]["diverged"] is True
    assert all(m["diverged"] is False for m in history[:-1])
    assert history[-1][task.metric] == (math.inf if task.mode == "min" else 0.0)


def _sample(decisions: list, rng: random.Random, chosen: dict) -> None:
    """Draw one config from the YAML format (choices | range grid; when; repeat)."""
    for d in decisions:
        if "repeat" in d:
            for k in range(1, chosen[d["repeat"]] + 1):
                inner: dict = {}
                _sample(d["decisions"], rng, inner)
                chosen.update({f"{key}_{k}": v for key, v in inner.items()})
            continue
        when = d.get("when", {})
        if any(chosen.get(k) not in (v if isinstance(v, list) else [v]) for k, v in when.items()):
            continue
        if "choices" in d:
            chosen[d["name"]] = rng.choice(d["choices"])
        else:
            (low, high), steps = d["range"], d["steps"]
            i = rng.randrange(steps) / (steps - 1)
            chosen[d["name"]] = (math.exp(math.log(low) + i * math.log(high / low)) if d.get("log")
                                 else low + i * (high - low))


@pytest.mark.parametrize("name", TASK_NAMES)
def test_default_search_space(name):
    spec = yaml.safe_load((SPACES / f"{name}.yaml").read_text())
    assert set(spec) <= {"name", "task", "metric", "mode", "decisions", "description"}
    task = get_task(name)
    assert (spec["name"], spec["task"], spec["metric"], spec["mode"]) == (
        name, name, task.metric, task.mode)
    flat = [d for top in spec["decisions"] for d in top.get("decisions", [top])]
    for d in flat:
        assert set(d) <= {"name", "choices", "range", "steps", "log", "when"}
        assert d["name"] in task.defaults
    rng = random.Random(0)
    for _ in range(300):
        config: dict = {}
        _sample(spec["decisions"], rng, config)
        task.parse(config)  # every configuration the space can express is valid


def test_lr_schedule_cosine_follows_steps_or_seconds():
    import time

    from tasks.base import TrainConfig
    from tasks.schedule import COSINE_FLOOR, LrSchedule
    constant = LrSchedule(TrainConfig(lr=0.01), steps=100, start=0.0)
    assert not constant.cosine and {constant(s) for s in (0, 50, 100, 500)} == {0.01}
    cosine = LrSchedule(TrainConfig(lr=0.01, lr_schedule="cosine"), steps=100, start=0.0)
    assert cosine(0) == pytest.approx(0.01)
    assert cosine(50) == pytest.approx(0.01 * (COSINE_FLOOR + 1) / 2)  # half way down
    assert cosine(100) == cosine(400) == pytest.approx(0.01 * COSINE_FLOOR)  # then flat
    assert all(cosine(s) > cosine(s + 1) for s in range(100))
    by_time = TrainConfig(lr=0.01, lr_schedule="cosine", lr_horizon_s=100.0)
    start = time.perf_counter() - 50                      # half the horizon ago
    rate = LrSchedule(by_time, 10, start)(0)
    seen = time.perf_counter() - start                    # it read its clock at 50 s .. `seen` s
    assert cosine(seen) <= rate <= cosine(50)             # the step schedule at that fraction
    assert LrSchedule(by_time, 10, time.perf_counter() - 500)(0) == pytest.approx(0.001)


def test_cosine_schedule_sets_the_optimisers_rate_each_step():
    import time

    from tasks.base import Task, make_optimizer
    from tasks.schedule import LrSchedule
    task = get_task("char_lm")
    cfg = task.parse({**TINY["char_lm"], "lr": 0.01, "lr_schedule": "cosine"})
    run = task.build(cfg, torch.device("cpu"), seed=0)
    optimizer = make_optimizer(cfg, run.model.parameters())
    schedule = LrSchedule(cfg, steps=20, start=time.perf_counter())
    Task._train_epoch(run, optimizer, cfg, math.nan, schedule, before=10)  # steps 10..19 of 20
    assert optimizer.param_groups[0]["lr"] == pytest.approx(schedule(19))
    assert schedule(19) < 0.0015
    with pytest.raises(ValueError, match="lr_schedule='linear' is not one of constant, cosine"):
        task.train({"lr_schedule": "linear"})
    curves = {s: [m["val_loss"] for m in task.train({**TINY["char_lm"], "lr": 0.01, "lr_schedule": s},
                                                    epochs=2, device="cpu", seed=0)]
              for s in ("constant", "cosine")}
    assert curves["constant"][0] != curves["cosine"][0]  # decayed from the first epoch on
