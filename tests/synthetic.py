"""A synthetic objective with one known optimum, for testing searchers without training.

The space has 7 decisions (a conditional one and a repeat block of up to 3) and 63,504
configurations. The reward is 1 at the optimum and falls with each wrong categorical choice
and with the grid distance of each numeric choice, so there is one global maximum.
"""
from __future__ import annotations

from typing import Any, Mapping

from search_spaces import SearchSpace

SPEC = {
    "name": "synthetic",
    "metric": "reward",
    "mode": "max",
    "decisions": [
        {"name": "cell", "choices": ["rnn", "gru", "lstm", "peephole_lstm"]},
        {"name": "layers", "choices": [1, 2, 3]},
        {"name": "lr", "range": [1.0e-4, 1.0e-2], "steps": 7, "log": True},
        {"name": "dropout", "range": [0.0, 0.5], "steps": 6},
        {"name": "optimizer", "choices": ["adam", "sgd", "rmsprop"]},
        {"name": "attention", "choices": ["dot", "bilinear", "mlp"], "when": {"cell": "lstm"}},
        {"repeat": "layers", "decisions": [{"name": "hidden", "choices": [64, 128, 256, 512]}]},
    ],
}
OPTIMUM: dict[str, Any] = {"cell": "lstm", "layers": 2, "lr": 0.001, "dropout": 0.2,
                           "optimizer": "adam", "attention": "mlp", "hidden_1": 256, "hidden_2": 512}


def space() -> SearchSpace:
    return SearchSpace.from_dict(SPEC)


def reward(config: Mapping[str, Any], sp: SearchSpace | None = None) -> float:
    """1.0 at OPTIMUM; each wrong categorical costs 0.1, each grid step away 0.05."""
    sp = sp or space()
    penalty = 0.0
    for slot in sp.slots:
        want, got = OPTIMUM.get(slot.key), config.get(slot.key)
        if want is None or got is None:
            penalty += 0.1 * ((want is None) != (got is None))     # extra or missing key
        elif slot.numeric_grid:
            penalty += 0.05 * abs(slot.choices.index(got) - slot.choices.index(want))
        else:
            penalty += 0.1 * (got != want)
    return 1.0 - penalty


def assert_identical(a: Any, b: Any) -> None:
    """Two controllers in the same state: same stats and the same policy weights."""
    import torch
    assert a.stats == b.stats
    for (k, va), vb in zip(a.policy.state_dict().items(), b.policy.state_dict().values()):
        assert torch.equal(va, vb), k
