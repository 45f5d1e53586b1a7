"""The built-in no-op child, task resolution and device placement (no Ray)."""
from __future__ import annotations

import pytest

from workers.device import trial_device, trial_resources
from tasks import get_task
from tasks.noop import NoopTask, score


def test_noop_is_deterministic_and_bounded() -> None:
    cfg = {"a": 1, "b": "x"}
    assert score(cfg) == score(dict(reversed(list(cfg.items()))))
    assert 0.0 <= score(cfg) <= 1.0 and score(cfg) != score({"a": 2, "b": "x"})
    epochs = list(NoopTask().train(cfg, epochs=3))
    assert [m["epoch"] for m in epochs] == [1, 2, 3]
    assert epochs[-1]["score"] == pytest.approx(score(cfg))
    assert not any(m["diverged"] for m in epochs)


def test_noop_outcomes() -> None:
    diverged = list(NoopTask().train({"outcome": "diverge"}, epochs=2))
    assert diverged[-1]["diverged"] and diverged[-1]["score"] == 0.0
    with pytest.raises(RuntimeError, match="crash"):
        list(NoopTask().train({"outcome": "crash"}, epochs=1))
    with pytest.raises(ValueError, match="outcome"):
        NoopTask().train({"outcome": "maybe"})
    with pytest.raises(ValueError, match="epochs"):
        NoopTask().train({}, epochs=0)


def test_task_registry_has_noop_and_the_models() -> None:
    assert get_task("noop").name == "noop"
    assert get_task("char_lm").metric == "val_loss"
    with pytest.raises(ValueError, match="unknown task"):
        get_task("nope")


def test_device_placement_outside_ray_is_cpu() -> None:
    assert trial_device() == "cpu"
    assert trial_resources(1, 0) == {"cpu": 1}
    assert trial_resources(1, 0.25) == {"cpu": 1, "gpu": 0.25}
