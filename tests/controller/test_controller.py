"""Controller: sampling, ask/tell bookkeeping, failed rewards, exact save/restore."""
from __future__ import annotations

import copy
import io
import math

import pytest
import torch

import synthetic
from controller import Controller


@pytest.fixture
def space():
    return synthetic.space()


def test_ask_returns_valid_variable_length_configs(space):
    ctrl = Controller(space, seed=0)
    configs = ctrl.ask(64)
    assert len(configs) == 64
    for cfg in configs:
        assert space.validate(cfg) == cfg
    lengths = {len(space.encode(c)) for c in configs}
    assert len(lengths) > 2, "conditional + repeat decisions must give different lengths"
    assert any("attention" in c for c in configs) and any("attention" not in c for c in configs)


def test_same_seed_same_samples_and_untrained_policy_is_near_uniform(space):
    a, b = Controller(space, seed=3), Controller(space, seed=3)
    assert a.ask(8) == b.ask(8)
    assert Controller(space, seed=4).ask(8) != Controller(space, seed=3).ask(8)
    probs = a.choice_probabilities()
    assert set(probs) >= {"cell", "layers", "lr"}
    for dist in probs.values():
        assert abs(sum(dist.values()) - 1) < 1e-5
        assert max(dist.values()) < 2.0 / len(dist)      # init U(-0.1, 0.1): close to uniform


def test_tell_rescores_stored_tokens_in_batches(space):
    ctrl = Controller(space, seed=0, batch_size=4)
    before = copy.deepcopy(ctrl.policy.state_dict())
    configs = ctrl.ask(6)
    ctrl.tell(configs[:3], [0.1, 0.2, 0.3])                # fewer than batch_size: queued only
    assert ctrl.stats["updates"] == 0
    assert all(torch.equal(before[k], v) for k, v in ctrl.policy.state_dict().items())
    ctrl.tell(configs[5:], [0.9])                         # out of order, one at a time
    assert ctrl.stats["updates"] == 1
    assert not all(torch.equal(before[k], v) for k, v in ctrl.policy.state_dict().items())
    assert ctrl.stats["told"] == 4 and not math.isnan(ctrl.stats["baseline"])


def test_tell_accepts_configs_it_did_not_ask(space):
    ctrl = Controller(space, seed=0, batch_size=1)
    ctrl.tell([synthetic.OPTIMUM], [1.0])
    assert ctrl.stats["updates"] == 1
    with pytest.raises(ValueError, match="'bogus' is not a decision"):
        ctrl.tell([{**synthetic.OPTIMUM, "bogus": 1}], [1.0])
    with pytest.raises(ValueError, match="2 configs but 1 rewards"):
        ctrl.tell([synthetic.OPTIMUM, synthetic.OPTIMUM], [1.0])


@pytest.mark.parametrize("bad", [None, float("nan"), float("inf"), -float("inf")])
def test_failed_rewards_do_not_poison_the_policy(space, bad):
    ctrl = Controller(space, seed=0, batch_size=2)
    configs = ctrl.ask(8)
    ctrl.tell(configs[:4], [0.5, bad, 0.7, bad])
    assert ctrl.stats["failed"] == 2 and ctrl.stats["updates"] == 1
    ctrl.tell(configs[4:], [bad, bad, bad, bad])
    assert ctrl.stats["updates"] == 1, "failures take no gradient step"
    for p in ctrl.policy.parameters():
        assert torch.isfinite(p).all()
    assert math.isfinite(ctrl.stats["baseline"])


def test_save_restore_continues_exactly(space):
    a = Controller(space, seed=7, batch_size=3)
    for _ in range(5):
        cfgs = a.ask(4)
        a.tell(cfgs, [synthetic.reward(c, space) for c in cfgs])
    a.tell(a.ask(1), [0.3])                               # leaves one reward queued
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    buf.seek(0)
    b = Controller(space)                                 # different seed and fresh weights
    b.load_state_dict(torch.load(buf, weights_only=True))
    for _ in range(3):
        ca, cb = a.ask(4), b.ask(4)
        assert ca == cb
        rewards = [synthetic.reward(c, space) for c in ca]
        a.tell(ca, rewards)
        b.tell(cb, rewards)
    synthetic.assert_identical(a, b)


def test_restore_rejects_other_space(space):
    from search_spaces import SearchSpace
    other = SearchSpace.from_dict({"decisions": [{"name": "x", "choices": [1, 2]}]})
    with pytest.raises(ValueError, match="different search space"):
        Controller(other).load_state_dict(Controller(space).state_dict())


@pytest.mark.parametrize("options, message", [
    ({"lr": 0}, "lr=0 must be > 0"), ({"batch_size": 0}, "batch_size=0"),
    ({"baseline_decay": 1.0}, "baseline_decay=1.0"), ({"hidden": 3}, "unknown Controller option"),
    ({"tanh_c": -1.0}, "tanh_c=-1.0"), ({"elite_size": -1}, "elite_size=-1"),
    ({"elite_size": 2.5}, "elite_size=2.5"), ({"elite_weight": -0.5}, "elite_weight=-0.5"),
])
def test_bad_options(space, options, message):
    with pytest.raises(ValueError, match=message):
        Controller(space, **options)


def test_elite_keeps_the_best_distinct_configs_and_pulls_the_policy_to_them(space):
    ctrl = Controller(space, seed=0, elite_size=3, elite_weight=5.0, entropy_weight=0.0)
    configs = ctrl.ask(12)
    rewards = [0.1 * i for i in range(12)]
    before = ctrl.log_prob(configs[-1])
    ctrl.tell(configs + configs[-1:], rewards + [1.1])   # a repeat (mean 1.1): kept once
    kept = [r for _, r in ctrl.memory.elites(3)]
    assert kept == pytest.approx([1.1, 1.0, 0.9])        # best first, the repeat not added twice
    assert ctrl.log_prob(configs[-1]) > before           # the best config became more likely
    off = Controller(space, seed=0, elite_size=0)
    off.tell(configs, rewards)
    assert off.memory.elites(0) == []


def test_ask_validates_n(space):
    with pytest.raises(ValueError, match="positive integer"):
        Controller(space).ask(0)


def test_entropy_falls_as_the_policy_learns(space):
    ctrl = Controller(space, seed=0)
    start = ctrl.entropy()
    for _ in range(30):
        cfgs = ctrl.ask(8)
        ctrl.tell(cfgs, [synthetic.reward(c, space) for c in cfgs])
    assert ctrl.entropy() < 0.7 * start
