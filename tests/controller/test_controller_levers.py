"""The sample-efficiency levers one by one: dedup and SpaceExhausted, rank shaping, PPO,
screening by the reward model, warm start, exact save/restore with every lever on."""
from __future__ import annotations

import io
import math
import random

import pytest
import torch

import synthetic
from controller import Controller, SpaceExhausted
from controller.reward_model import RewardModel
from controller.shaping import quantile_advantages, rank_advantages, ranks
from controller.update import encode
from search_spaces import SearchSpace

ALL_ON = dict(dedup=True, shaping="rank", replay_history=True, batch_size=1, ppo_epochs=3,
              screen=16, screen_start=3, dyna_samples=8, elite_size=4, elite_weight=0.5)


@pytest.fixture
def small():
    """13 configs: x in 1..3, y in a/b, and z only when x == 3."""
    return SearchSpace.from_dict({"name": "small", "decisions": [
        {"name": "x", "choices": [1, 2, 3]}, {"name": "y", "choices": ["a", "b"]},
        {"name": "z", "choices": [0.1, 0.2, 0.3], "when": {"x": 3}}]})


def _key(space, cfg):
    return tuple(space.encode_slots(cfg))


@pytest.mark.parametrize("options", [dict(dedup=True), ALL_ON])
def test_dedup_never_repeats_until_exhausted(small, options):
    assert small.size() == 10
    ctrl = Controller(small, seed=1, **options)
    seen, pending = [], []
    for i in range(10):
        cfg = ctrl.ask(1)[0]
        seen.append(_key(small, cfg))
        pending.append(cfg)
        if i % 3 != 2:                      # leave some asked but not told
            ctrl.tell([pending.pop()], [random.Random(i).random()])
    assert len(set(seen)) == 10, "a config was proposed twice"
    with pytest.raises(SpaceExhausted):
        ctrl.ask(1)
    ctrl.tell(pending, [0.5] * len(pending))
    with pytest.raises(SpaceExhausted):
        ctrl.ask(1)


def test_asking_more_than_remain_proposes_nothing(small):
    ctrl = Controller(small, seed=0, dedup=True)
    first = ctrl.ask(7)
    assert len({_key(small, c) for c in first}) == 7
    with pytest.raises(SpaceExhausted, match="3 untried remain"):
        ctrl.ask(4)
    rest = ctrl.ask(3)
    assert {_key(small, c) for c in first + rest} == {_key(small, c) for c in small}


def test_told_and_warm_started_configs_count_as_tried(small):
    ctrl = Controller(small, seed=0, dedup=True)
    configs = list(small)
    ctrl.warm_start(configs[:4], [0.1, 0.2, None, 0.4])      # a failed one is tried too
    ctrl.tell(configs[4:6], [0.3, 0.9])                      # never asked: off-policy
    proposed = {_key(small, c) for c in ctrl.ask(4)}
    assert proposed == {_key(small, c) for c in configs[6:]}


def test_dedup_off_repeats_on_a_concentrated_policy(small):
    ctrl = Controller(small, seed=0, dedup=False, temperature=0.05)
    assert len({_key(small, c) for c in ctrl.ask(30)}) < 10


def test_rank_shaping_is_invariant_to_monotone_transforms():
    space = synthetic.space()
    runs = []
    for transform in (lambda r: r, lambda r: math.exp(8 * r) - 3.0):
        ctrl = Controller(space, seed=5, **ALL_ON)
        asked = []
        for _ in range(8):
            cfgs = ctrl.ask(2)
            asked += cfgs
            ctrl.tell(cfgs, [transform(synthetic.reward(c, space)) for c in cfgs])
        runs.append((asked, [p.detach().clone() for p in ctrl.policy.parameters()]))
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1]):
        assert torch.allclose(a, b, atol=1e-6)


def test_rank_and_quantile_advantages():
    assert ranks([3.0, 1.0, 2.0, 2.0]) == [1.0, 0.0, 0.5, 0.5]
    assert rank_advantages([10.0, -1e9, 0.0]) == [1.0, -1.0, 0.0]     # an outlier is just last
    adv = quantile_advantages([0.1, 0.9, 0.5, 0.3], 0.25)
    assert abs(sum(adv)) < 1e-12 and max(adv) == adv[1] and adv[1] > 0
    assert sorted(adv)[:3] == [adv[0]] * 3


def test_save_restore_continues_exactly_with_every_lever_on():
    space = synthetic.space()
    a = Controller(space, seed=7, **ALL_ON)
    for _ in range(6):
        cfgs = a.ask(2)
        a.tell(cfgs, [synthetic.reward(c, space) for c in cfgs])
    a.warm_start([synthetic.OPTIMUM], [0.99])
    dangling = a.ask(2)                                      # asked, not told at save time
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    buf.seek(0)
    b = Controller(space)
    b.load_state_dict(torch.load(buf, weights_only=True))
    for ctrl in (a, b):
        ctrl.tell(dangling[:1], [0.5])
    for _ in range(4):
        ca, cb = a.ask(2), b.ask(2)
        assert ca == cb
        assert not {_key(space, c) for c in ca} & {_key(space, c) for c in dangling}
        rewards = [synthetic.reward(c, space) for c in ca]
        a.tell(ca, rewards)
        b.tell(cb, rewards)
    synthetic.assert_identical(a, b)


@pytest.mark.parametrize("options, name", [
    ({"grad_clip": float("nan")}, "grad_clip"), ({"lr": float("inf")}, "lr"),
    ({"temperature": 1e-320}, "temperature"), ({"hidden_size": 1_000_000}, "hidden_size"),
    ({"normalize": "no"}, "normalize"), ({"shaping": "bogus"}, "shaping"),
    ({"dedup": 1}, "dedup"), ({"quantile": 0.0}, "quantile"), ({"ppo_epochs": 0}, "ppo_epochs"),
    ({"screen": -1}, "screen"), ({"ppo_clip": -0.1}, "ppo_clip"), ({"lr": "0.1"}, "lr"),
    ({"model_kernel": "rbf"}, "model_kernel"), ({"model_noise": 0}, "model_noise"),
    ({"max_retries": 1.5}, "max_retries"), ({"seed": True}, "seed"),
    ({"max_replay_ratio": -1}, "max_replay_ratio"),
])
def test_bad_lever_options_name_the_option(options, name):
    with pytest.raises(ValueError, match=f"option {name}="):
        Controller(synthetic.space(), **options)


def test_ppo_epochs_reuse_the_results_for_more_steps():
    space = synthetic.space()
    moved = {}
    for epochs, clip in ((1, 0.2), (4, 0.2), (4, 0.0)):          # clip 0: unclipped ratios
        ctrl = Controller(space, seed=2, shaping="rank", replay_history=True, batch_size=8,
                          ppo_epochs=epochs, ppo_clip=clip, elite_size=0, entropy_weight=0.0, lr=0.01)
        cfgs = ctrl.ask(8)
        best = max(cfgs, key=lambda c: synthetic.reward(c, space))
        before = ctrl.log_prob(best)
        ctrl.tell(cfgs, [synthetic.reward(c, space) for c in cfgs])
        moved[(epochs, clip)] = ctrl.log_prob(best) - before
    assert 0 < moved[(1, 0.2)] < moved[(4, 0.2)]
    assert moved[(4, 0.0)] > moved[(1, 0.2)]


def test_replay_ratio_bounds_updates_and_changes_nothing_below_its_threshold():
    """With history replay an update trains on every config told so far; once the history
    holds more than 2 x max_replay_ratio configs, an update waits for history / ratio new
    results. Below that the proposals are those of the unbounded rule, bit for bit."""
    space = synthetic.space()
    runs = {}
    for ratio in (0, 8):
        ctrl = Controller(space, seed=4, max_replay_ratio=ratio)
        proposed, updates = [], []
        for _ in range(60):
            [cfg] = ctrl.ask(1)
            ctrl.tell([cfg], [synthetic.reward(cfg, space)])
            proposed.append(cfg)
            updates.append(ctrl.stats["updates"])
        runs[ratio] = proposed, updates
    (free, free_updates), (bounded, bounded_updates) = runs[0], runs[8]
    assert free[:17] == bounded[:17] and free_updates[:16] == bounded_updates[:16]
    assert free_updates[-1] == 30                   # batch_size 2: one update per 2 results
    expected, queue = 0, 0                          # the rule: wait for max(2, history // 8)
    for told in range(1, 61):
        queue += 1
        if queue >= max(2, told // 8):
            expected, queue = expected + 1, 0
    assert bounded_updates[-1] == expected == 19


def test_fused_score_matches_the_stepwise_walk():
    space = synthetic.space()
    ctrl = Controller(space, seed=3, num_layers=2)
    tokens, active = encode(len(space.slots), [space.encode_slots(c) for c in ctrl.ask(50)])
    fast, slow = ctrl.policy.score(tokens, active), ctrl.policy.score_stepwise(tokens, active)
    for x, y in zip(fast, slow):
        assert torch.allclose(x, y, atol=1e-5)


def test_reward_model_ranks_unseen_configs():
    space = synthetic.space()
    rng = random.Random(0)
    train = [space.sample(rng) for _ in range(120)]
    test = [space.sample(rng) for _ in range(60)]
    model = RewardModel(space, "exp", 0.3)
    model.fit([tuple(space.encode_slots(c)) for c in train], [synthetic.reward(c, space) for c in train])
    mean = model.posterior([tuple(space.encode_slots(c)) for c in test])[0].tolist()
    truth = [synthetic.reward(c, space) for c in test]
    agree = sum((mean[i] - mean[j]) * (truth[i] - truth[j]) > 0
                for i in range(60) for j in range(i) if truth[i] != truth[j])
    pairs = sum(truth[i] != truth[j] for i in range(60) for j in range(i))
    assert agree / pairs > 0.7, "the model should order most pairs of unseen configs correctly"


def test_screening_proposes_better_configs_than_the_raw_policy():
    space = synthetic.space()
    gains = []
    for seed in range(3):
        plain = Controller(space, seed=seed, dedup=True, screen=0)
        screened = Controller(space, seed=seed, dedup=True, screen=32, screen_start=5)
        rng = random.Random(seed)
        seen = [space.sample(rng) for _ in range(40)]
        for ctrl in (plain, screened):
            ctrl.tell(seen, [synthetic.reward(c, space) for c in seen])
        mean = [sum(synthetic.reward(c, space) for c in ctrl.ask(8)) / 8 for ctrl in (plain, screened)]
        gains.append(mean[1] - mean[0])
    assert sum(gains) > 0 and sorted(gains)[1] > 0


def test_version_1_checkpoints_resume_with_the_levers_off():
    space = synthetic.space()
    old_fields = ("hidden_size", "num_layers", "temperature", "tanh_c", "entropy_weight", "baseline_decay",
                  "lr", "grad_clip", "batch_size", "normalize", "adv_clip", "elite_size", "elite_weight", "seed")
    src = Controller(space, seed=4, shaping="ema", replay_history=False, ppo_epochs=1, dedup=False,
                     screen=0, batch_size=4)
    state = src.state_dict()
    v1 = {"version": 1, "space_keys": state["space_keys"],
          "options": {k: state["options"][k] for k in old_fields},
          "policy": state["policy"], "optimizer": state["optimizer"], "rng": state["rng"],
          "baseline": 0.5, "reward_var": 0.01, "queue": [(list(map(list, space.encode_slots(synthetic.OPTIMUM))), 0.9)],
          "stats": state["stats"], "elite": [(list(map(list, space.encode_slots(synthetic.OPTIMUM))), 0.9)]}
    ctrl = Controller(space)
    ctrl.load_state_dict(v1)
    assert not ctrl.options.dedup and ctrl.options.shaping == "ema" and ctrl.options.screen == 0
    assert ctrl.memory.elites(1)[0][1] == 0.9
    cfgs = ctrl.ask(3)
    ctrl.tell(cfgs, [0.1, 0.2, 0.3])
    assert ctrl.stats["updates"] == 1
