"""search_spaces: parsing, encode/decode round trips, conditions, repeats, baselines' view."""
from __future__ import annotations

import random

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from search_spaces import SearchSpace, SpecError, builtin_names, load_space

DEMO = """
name: demo
task: char_lm
metric: val_loss
mode: min
decisions:
  - {name: cell, choices: [rnn, gru, lstm, peephole_lstm]}
  - {name: layers, choices: [1, 2, 3]}
  - {name: lr, range: [1.0e-4, 1.0e-2], steps: 7, log: true}
  - {name: dropout, range: [0.0, 0.5], steps: 6}
  - {name: attention, choices: [dot, bilinear, mlp], when: {cell: lstm}}
  - repeat: layers
    decisions:
      - {name: hidden, choices: [64, 128, 256]}
"""


@pytest.fixture
def demo(tmp_path) -> SearchSpace:
    path = tmp_path / "demo.yaml"
    path.write_text(DEMO)
    return SearchSpace.from_yaml(path)


def test_demo_space_shape(demo):
    assert demo.keys == ("cell", "layers", "lr", "dropout", "attention", "hidden_1", "hidden_2", "hidden_3")
    assert (demo.name, demo.task, demo.metric, demo.mode) == ("demo", "char_lm", "val_loss", "min")
    lr = demo.slots[2].choices
    assert len(lr) == 7 and lr[0] == 1e-4 and lr[3] == 0.001 and lr[-1] == 0.01
    assert demo.slots[3].choices == (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
    # 4 cells (lstm adds x3 attention) -> 6 cell-variants; layers 1..3 -> 3 + 9 + 27 hidden combos
    assert demo.size() == 6 * 7 * 6 * (3 + 9 + 27) == sum(1 for _ in demo)


def test_conditional_and_repeat_emit_no_token(demo):
    cfg = {"cell": "gru", "layers": 1, "lr": 0.001, "dropout": 0.0, "hidden_1": 128}
    assert demo.encode(cfg) == [1, 0, 3, 0, 1]
    assert demo.decode([1, 0, 3, 0, 1]) == cfg
    lstm = {"cell": "lstm", "layers": 3, "lr": 0.01, "dropout": 0.5, "attention": "mlp",
            "hidden_1": 64, "hidden_2": 128, "hidden_3": 256}
    assert demo.encode(lstm) == [2, 2, 6, 5, 2, 0, 1, 2]


def test_types_are_kept(demo):
    cfg = demo.decode([0, 1, 0, 0, 2, 1])
    assert type(cfg["layers"]) is int and type(cfg["hidden_1"]) is int
    assert type(cfg["lr"]) is float and type(cfg["dropout"]) is float
    spec = {"decisions": [{"name": "n", "range": [64, 512], "steps": 8}, {"name": "flag", "choices": [True, False]}]}
    sp = SearchSpace.from_dict(spec)
    assert sp.slots[0].choices == (64, 128, 192, 256, 320, 384, 448, 512)
    assert sp.decode([0, 0]) == {"n": 64, "flag": True} and type(sp.decode([0, 0])["flag"]) is bool


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_round_trip_property(seed):
    sp = SearchSpace.from_dict(yaml.safe_load(DEMO))
    cfg = sp.sample(random.Random(seed))
    tokens = sp.encode(cfg)
    assert sp.decode(tokens) == cfg
    assert sp.encode(sp.decode(tokens)) == tokens
    assert sp.validate(cfg) == cfg


def test_every_config_round_trips(demo):
    seen = set()
    for cfg in demo:
        tokens = tuple(demo.encode(cfg))
        assert demo.decode(list(tokens)) == cfg
        seen.add(tokens)
    assert len(seen) == demo.size()


@pytest.mark.parametrize("config, message", [
    ({"cell": "gru", "layers": 1, "lr": 0.001, "dropout": 0.0}, "missing key 'hidden_1'"),
    ({"cell": "gru", "layers": 1, "lr": 0.002, "dropout": 0.0, "hidden_1": 64}, "lr=0.002 is not one of"),
    ({"cell": "gru", "layers": 1, "lr": 0.001, "dropout": 0.0, "hidden_1": 64, "attention": "dot"},
     "'attention' is inactive"),
    ({"cell": "gru", "layers": 1, "lr": 0.001, "dropout": 0.0, "hidden_1": 64, "hidden_2": 64},
     "'hidden_2' is inactive"),
    ({"cell": "gru", "layers": 1, "lr": 0.001, "dropout": 0.0, "hidden_1": 64, "foo": 1}, "'foo' is not a decision"),
    ({"cell": "gru", "layers": True, "lr": 0.001, "dropout": 0.0, "hidden_1": 64}, "layers=True is not one of"),
])
def test_bad_configs_name_the_key(demo, config, message):
    with pytest.raises(ValueError, match=message):
        demo.encode(config)


@pytest.mark.parametrize("tokens, message", [
    ([1, 0, 3, 0], "too short"), ([1, 0, 3, 0, 1, 0], "too long"), ([1, 0, 9, 0, 1], "token 2 for 'lr' is 9"),
])
def test_bad_tokens(demo, tokens, message):
    with pytest.raises(ValueError, match=message):
        demo.decode(tokens)


def _spec(*decisions, **top):
    return {"name": "t", **top, "decisions": list(decisions)}


OK = {"name": "a", "choices": [1, 2]}
BAD_SPECS = [
    ([1, 2], "<spec>: expected a mapping"),
    (_spec(OK, color="red"), r"<spec>.color: unknown key 'color'"),
    ({"name": "t"}, r"decisions: expected a non-empty list, got None"),
    ({"name": "t", "decisions": []}, r"decisions: expected a non-empty list"),
    (_spec(OK, name=3), r"name: expected a string, got 3"),
    (_spec(OK, name="../etc"), r"name: '../etc' may use letters"),
    (_spec(OK, metric="loss", mode="up"), r"mode: must be 'min' or 'max', got 'up'"),
    (_spec(OK, metric="loss"), r"metric: 'loss' given without 'mode'"),
    (_spec("cell"), r"decisions\[0\]: expected a mapping, got 'cell'"),
    (_spec({"choices": [1]}), r"decisions\[0\]: missing key 'name'"),
    (_spec({"name": "a", "choices": []}), r"decisions\[0\].choices: must not be empty"),
    (_spec({"name": "a", "choices": "abc"}), r"decisions\[0\].choices: expected a list of values, got 'abc'"),
    (_spec({"name": "a", "choices": [1, [2]]}), r"decisions\[0\].choices\[1\]: expected a string, number or bool"),
    (_spec({"name": "a", "choices": [1, 1.0]}), r"decisions\[0\].choices\[1\]: duplicate choice 1.0"),
    (_spec(OK, {"name": "a", "choices": [3]}), r"decisions\[1\].name: duplicate decision name 'a'"),
    (_spec({"name": "a b", "choices": [1]}), r"decisions\[0\].name: 'a b' is not an identifier"),
    (_spec({"name": 7, "choices": [1]}), r"decisions\[0\].name: expected a string, got 7"),
    (_spec({"name": "a", "choices": [1], "colour": 1}), r"decisions\[0\].colour: unknown key 'colour'"),
    (_spec({"name": "a"}), r"decisions\[0\]: decision 'a' needs exactly one of 'choices' or 'range'"),
    (_spec({"name": "a", "choices": [1], "range": [0, 1], "steps": 2}), r"needs exactly one of"),
    (_spec({"name": "a", "choices": [1, 2], "steps": 3}), r"decisions\[0\].steps: only valid with 'range', got 3"),
    (_spec({"name": "lr", "range": [0.1, 0.01], "steps": 3}), r"decisions\[0\].range: low must be < high, got \[0.1, 0.01\]"),
    (_spec({"name": "lr", "range": [0.0, 1.0], "steps": 3, "log": True}), r"decisions\[0\].range: a log range needs low > 0, got \[0.0, 1.0\]"),
    (_spec({"name": "lr", "range": [0.1, 1.0], "steps": 1}), r"decisions\[0\].steps: must be >= 2, got 1"),
    (_spec({"name": "lr", "range": [0.1, 1.0], "steps": 2.5}), r"decisions\[0\].steps: expected an integer, got 2.5"),
    (_spec({"name": "lr", "range": [0.1, 1.0]}), r"decisions\[0\]: range decision 'lr' needs 'steps'"),
    (_spec({"name": "lr", "range": [0.1], "steps": 2}), r"decisions\[0\].range: expected \[low, high\], got \[0.1\]"),
    (_spec({"name": "lr", "range": ["a", 1], "steps": 2}), r"decisions\[0\].range\[0\]: expected a finite number, got 'a'"),
    (_spec({"name": "lr", "range": [0.1, 1.0], "steps": 2, "log": "yes"}), r"decisions\[0\].log: expected true or false, got 'yes'"),
    (_spec(OK, {"name": "b", "choices": [1], "when": {"zzz": 1}}), r"decisions\[1\].when.zzz: names no earlier decision"),
    (_spec({"name": "b", "choices": [1], "when": {"a": 1}}, OK), r"decisions\[0\].when.a: names no earlier decision"),
    (_spec(OK, {"name": "b", "choices": [1], "when": {"a": 5}}), r"decisions\[1\].when.a: 5 is not a choice of 'a' \[1, 2\]"),
    (_spec(OK, {"name": "b", "choices": [1], "when": "a"}), r"decisions\[1\].when: expected a mapping"),
    (_spec({"repeat": "layers", "decisions": [OK]}), r"decisions\[0\].repeat: names no earlier decision \(got 'layers'\)"),
    (_spec({"name": "cell", "choices": ["x"]}, {"repeat": "cell", "decisions": [OK]}),
     r"decisions\[1\].repeat: 'cell' must be an integer decision with choices >= 0"),
    (_spec({"name": "n", "choices": [1, 2]}, {"repeat": "n", "decisions": []}), r"decisions\[1\].decisions: expected a non-empty list"),
    (_spec({"name": "n", "choices": [1, 2]}, {"repeat": "n", "decisions": [OK], "x": 1}), r"decisions\[1\].x: unknown key 'x'"),
    (_spec({"name": "n", "choices": [1, 2]}, {"repeat": "n", "decisions": [{"repeat": "n", "decisions": [OK]}]}),
     r"decisions\[1\].decisions\[0\].repeat: repeat blocks cannot be nested"),
    (_spec({"name": "n", "choices": [1, 2]}, {"name": "h_1", "choices": [1]}, {"repeat": "n", "decisions": [{"name": "h", "choices": [1]}]}),
     r"decisions\[2\].decisions\[0\].name: duplicate decision name 'h_1'"),
    (_spec({"name": "n", "choices": [1, 100]}, {"repeat": "n", "decisions": [OK]}), r"decisions\[1\].repeat: 'n' allows 100 blocks"),
]


@pytest.mark.parametrize("spec, message", BAD_SPECS, ids=[str(i) for i in range(len(BAD_SPECS))])
def test_bad_specs_name_path_and_value(spec, message):
    with pytest.raises(SpecError, match=message):
        SearchSpace.from_dict(spec)


def test_at_least_twenty_bad_specs():
    assert len(BAD_SPECS) >= 20


def test_yaml_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ndecisions: [\n")
    with pytest.raises(SpecError, match=r"bad.yaml: invalid YAML at line"):
        SearchSpace.from_yaml(bad)
    evil = tmp_path / "evil.yaml"
    evil.write_text("!!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(SpecError, match=r"evil.yaml: invalid YAML"):
        SearchSpace.from_yaml(evil)
    with pytest.raises(SpecError, match=r"missing.yaml: cannot read spec file"):
        SearchSpace.from_yaml(tmp_path / "missing.yaml")
    with pytest.raises(SpecError, match=r"unknown space 'nope'"):
        load_space("nope")


def test_conditions_inside_repeat_blocks():
    spec = _spec({"name": "n", "choices": [0, 1, 2]},
                 {"repeat": "n", "decisions": [{"name": "kind", "choices": ["conv", "rnn"]},
                                               {"name": "width", "choices": [8, 16], "when": {"kind": "conv"}}]})
    sp = SearchSpace.from_dict(spec)
    assert sp.decode([0]) == {"n": 0}
    assert sp.decode([2, 1, 0, 1]) == {"n": 2, "kind_1": "rnn", "kind_2": "conv", "width_2": 16}
    assert sp.size() == 1 + 3 + 9 == sum(1 for _ in sp)


def test_project_drops_inactive_keys(demo):
    rng = random.Random(1)
    for _ in range(50):
        flat = {slot.key: rng.choice(slot.choices) for slot in demo.slots}
        cfg = demo.project(flat)
        assert demo.validate(cfg) == cfg
        assert set(cfg) <= set(flat)


def test_builtin_spaces_load():
    for name in builtin_names():
        sp = load_space(name)
        assert sp.size() > 0 and sp.metric and sp.mode in ("min", "max")
