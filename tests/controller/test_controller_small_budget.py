"""The small-budget levers: ordered choices, the screening pool (uniform draws and moves from the
best configs) and the space-filling first batch."""
from __future__ import annotations

import random

import pytest
from controller import Controller
from controller.sampling import neighbour
from search_spaces import SearchSpace, SpecError


def _space(*decisions):
    return SearchSpace.from_dict({"name": "s", "decisions": list(decisions)})


def test_numeric_choices_in_order_read_as_a_scale():
    space = _space({"name": "w", "choices": [16, 32, 64]}, {"name": "d", "choices": [0.5, 0.1]},
                   {"name": "c", "choices": ["a", "b"]}, {"name": "m", "choices": [1, 3, 2]},
                   {"name": "f", "choices": [False, True]}, {"name": "g", "range": [1, 9], "steps": 3},
                   {"name": "k", "choices": [1, 2, 3], "ordered": False},
                   {"name": "o", "choices": ["lo", "mid", "hi"], "ordered": True})
    assert {s.key: s.ordered for s in space.slots} == {
        "w": True, "d": True, "c": False, "m": False, "f": False, "g": True, "k": False, "o": True}


@pytest.mark.parametrize("decision, field", [
    ({"name": "x", "choices": [1, 2], "ordered": "yes"}, "ordered"),
    ({"name": "x", "range": [1, 2], "steps": 2, "ordered": True}, "ordered")])
def test_bad_ordered_flag_names_the_field(decision, field):
    with pytest.raises(SpecError, match=rf"decisions\[0\]\.{field}"):
        _space(decision)


def test_a_neighbour_changes_one_decision_by_a_step_on_a_scale():
    space = _space({"name": "x", "choices": list(range(10))}, {"name": "y", "choices": ["a", "b", "c"]})
    rng = random.Random(0)
    key = tuple(space.encode_slots({"x": 5, "y": "b"}))
    for _ in range(200):
        moved = dict(neighbour(space, key, rng))
        changed = [s for s in (0, 1) if moved[s] != dict(key)[s]]
        assert len(changed) == 1
        if changed == [0]:
            assert 1 <= abs(moved[0] - 5) <= 2


def test_a_neighbour_of_a_conditional_config_is_a_valid_config():
    space = _space({"name": "x", "choices": [1, 2, 3]},
                   {"name": "z", "choices": ["p", "q"], "when": {"x": 3}}, {"name": "y", "choices": [0, 1]})
    rng = random.Random(1)
    key = tuple(space.encode_slots({"x": 3, "z": "q", "y": 1}))
    for _ in range(100):
        config = space.decode([t for _, t in neighbour(space, key, rng)])
        assert space.validate(config) == config


def test_the_first_batch_is_spread_over_a_scale():
    space = _space({"name": "x", "choices": list(range(21))})
    gaps = []
    for seed in range(5):
        ctrl = Controller(space, seed=seed, space_filling=True, screen_start=3)
        xs = sorted(c["x"] for c in ctrl.ask(3))
        gaps.append(min(b - a for a, b in zip(xs, xs[1:])))
    assert min(gaps) >= 6            # uniform draws: a gap this wide in every seed is rare


def test_space_filling_stops_once_screening_starts():
    space = _space({"name": "x", "choices": list(range(21))}, {"name": "y", "choices": list(range(21))})
    ctrl = Controller(space, seed=0, space_filling=True, screen_start=2)
    assert ctrl.proposer.spreads(1, ctrl.model, ctrl.memory)
    ctrl.tell(ctrl.ask(2), [0.1, 0.2])
    assert not ctrl.proposer.spreads(1, ctrl.model, ctrl.memory)


def test_small_budget_levers_are_options_with_checked_values():
    space = _space({"name": "x", "choices": [1, 2, 3]})
    with pytest.raises(ValueError, match="screen_local"):
        Controller(space, screen_local=-1)
    with pytest.raises(ValueError, match="space_filling"):
        Controller(space, space_filling=1)


def test_uniform_draws_are_the_space_samples_without_the_round_trip():
    from controller.sampling import uniform
    space = _space({"name": "x", "choices": [1, 2, 3]},
                   {"name": "z", "choices": ["p", "q"], "when": {"x": 3}}, {"name": "y", "choices": [0, 1]})
    a, b = random.Random(7), random.Random(7)
    for _ in range(50):
        assert uniform(space, a) == tuple(space.encode_slots(space.sample(b)))
