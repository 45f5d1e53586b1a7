"""The multi-objective side of the searcher contract, over every registered searcher: created
with ``objectives=2, constrained=True``, each accepts objective vectors with constraint values,
crashes (None) and configs it did not propose, in any order, keeps proposing valid configs, and
its state survives `torch.save`/`torch.load(weights_only=True)`. Engine-free (ask/tell only)."""
from __future__ import annotations

import io
import random

import pytest
import torch

from hyperseq import searchers
from search_spaces import SearchSpace

SPEC = {"name": "mo_contract", "task": "noop",
        "decisions": [{"name": "cell", "choices": ["gru", "lstm"]},
                      {"name": "layers", "choices": [1, 2, 3]},
                      {"repeat": "layers", "decisions": [{"name": "hidden", "choices": [32, 64, 128]}]}]}


def _told(config: dict) -> tuple[list[float], list[float]]:
    """A made-up trial: a loss-like and a size-like objective (higher is better), size <= 6000."""
    size = sum(config.get(f"hidden_{k}", 0) for k in range(1, 4)) * 20.0
    return [-1.0 / size * 1000, -size], [size - 6000.0]


@pytest.mark.parametrize("name", searchers.names())
def test_vector_rewards_and_constraints(name: str) -> None:
    space = SearchSpace.from_dict(SPEC)
    searcher = searchers.create(name, space, seed=0, objectives=2, constrained=True)
    assert (searcher.objectives, searcher.constrained) == (2, True)
    asked = [searcher.ask() for _ in range(6)]
    for config in reversed(asked[1:]):                          # any order
        searcher.tell(config, *_told(config))
    searcher.tell(asked[0], None, None)                          # a crash
    other = space.sample(random.Random(5))
    searcher.tell(other, *_told(other))                          # not proposed by it
    for _ in range(4):
        config = searcher.ask()
        assert config is not None and space.encode_slots(config)  # valid
        searcher.tell(config, *_told(config))
    buffer = io.BytesIO()
    torch.save(searcher.state_dict(), buffer)
    buffer.seek(0)
    again = searchers.create(name, space, seed=0, objectives=2, constrained=True)
    again.load_state_dict(torch.load(buffer, weights_only=True))
    assert space.encode_slots(again.ask())
