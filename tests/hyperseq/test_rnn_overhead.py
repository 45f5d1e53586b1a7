"""`RNNSearcher(max_overhead=...)`: the controller's share of a job's wall time is bounded by
quick asks and held tells, and nothing is lost or proposed twice on the way (engine-free)."""
from __future__ import annotations

import pytest

from controller import Controller
from hyperseq import searchers
from hyperseq.jobs.run import RNN_MAX_OVERHEAD
from search_spaces import SearchSpace
from tasks.noop import score

SPEC = {"name": "overhead", "task": "noop", "decisions": [
    {"name": "cell", "choices": ["rnn", "gru", "lstm"]},
    {"name": "layers", "choices": [1, 2, 3]},
    {"repeat": "layers", "decisions": [{"name": "hidden", "choices": [32, 64, 128]}]},
    {"name": "lr", "range": [1e-4, 1e-1], "steps": 7, "log": True},
]}


@pytest.fixture(scope="module")
def space() -> SearchSpace:
    return SearchSpace.from_dict(SPEC)


def test_over_budget_asks_are_quick_and_tells_held_until_released(space):
    """A budget nobody can keep (1e-9 of the wall time): after the first ask every ask is a
    pooled policy sample and every tell is held; state_dict releases them all at once."""
    searcher = searchers.create("rnn", space, seed=0, max_overhead=1e-9)
    ctrl = searcher.controller
    configs = []
    for _ in range(40):
        config = searcher.ask()
        configs.append(config)
        searcher.tell(config, score(config))
    keys = {tuple(sorted(c.items())) for c in configs}
    assert len(keys) == 40                                  # dedup holds on the quick path
    assert ctrl.stats["asked"] == 40 and ctrl.stats["told"] < 40 and ctrl.stats["updates"] == 0
    state = searcher.state_dict()                           # a checkpoint loses nothing held
    assert ctrl.stats["told"] == 40 and ctrl.stats["updates"] >= 1
    assert len(state["memory"]["sums"]) == 40 and not state["memory"]["pending"]


def test_no_budget_is_the_plain_controller(space):
    plain, bounded = Controller(space, seed=3), searchers.create("rnn", space, seed=3, max_overhead=0.0)
    for _ in range(15):
        [a], b = plain.ask(1), bounded.ask()
        assert a == b
        plain.tell([a], [score(a)])
        bounded.tell(b, score(b))


def test_quick_asks_exhaust_a_small_space_cleanly():
    small = SearchSpace.from_dict({"name": "six", "task": "noop", "decisions": [
        {"name": "cell", "choices": ["rnn", "gru", "lstm"]}, {"name": "layers", "choices": [1, 2]}]})
    searcher = searchers.create("rnn", small, seed=0, max_overhead=1e-9)
    seen = []
    for _ in range(6):
        config = searcher.ask()
        seen.append((config["cell"], config["layers"]))
        searcher.tell(config, 0.5)
    assert len(set(seen)) == 6
    assert searcher.ask() is None and searcher.exhausted


@pytest.mark.parametrize("bad", [-0.1, 1.0, True, "0.1"])
def test_bad_budget_is_named(space, bad):
    with pytest.raises(ValueError, match=f"max_overhead={bad!r}"):
        searchers.create("rnn", space, max_overhead=bad)


def test_jobs_bound_the_rnn_and_leave_the_others_alone(space, tmp_path):
    from hyperseq.jobs import prepare_job
    from hyperseq.jobs.run import make_searcher
    where = {"tracking_uri": f"sqlite:///{tmp_path / 'm.db'}", "storage": str(tmp_path / "ray")}
    rnn = make_searcher(prepare_job(space, searcher="rnn", controller_options={"lr": 0.01}, **where))
    assert rnn.max_overhead == RNN_MAX_OVERHEAD and rnn.controller.options.lr == 0.01
    assert 0 < RNN_MAX_OVERHEAD <= 0.2                      # the 1.2x, with room for Tune's noise
    assert not hasattr(make_searcher(prepare_job(space, searcher="random", **where)), "max_overhead")
