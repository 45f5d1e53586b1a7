"""The last good copy of Tune's experiment state (`hyperseq.jobs.state`), on real files (no Ray
cluster): a file a SIGKILL left empty or cut short is put back from the kept copy."""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import torch

from hyperseq.jobs import state

STATE = "experiment_state-2026-11-30_05-00-00.json"
SEARCHER = "searcher-state-2026-11-30_05-00-00.pkl"


def _write_state(exp: Path, trials: int) -> None:
    exp.mkdir(exist_ok=True)
    (exp / "tuner.pkl").write_bytes(pickle.dumps({"trainable": "noop"}))
    (exp / STATE).write_text(json.dumps({"trial_data": [["t"] * trials]}))
    torch.save({"searcher": {"asked": trials}}, exp / SEARCHER)


def test_intact_tells_whole_files_from_cut_ones(tmp_path: Path) -> None:
    _write_state(tmp_path, 3)
    assert all(state.intact(f) for f in state.state_files(tmp_path))
    for f in state.state_files(tmp_path):
        data = f.read_bytes()
        f.write_bytes(data[: len(data) // 2])
        assert not state.intact(f), f.name
        f.write_bytes(b"")
        assert not state.intact(f), f.name


def test_snapshot_then_repair_puts_the_kept_copy_back(tmp_path: Path) -> None:
    exp = tmp_path / "job"
    _write_state(exp, 3)
    assert state.snapshot(exp)
    _write_state(exp, 4)                                   # Tune saved again ...
    (exp / STATE).write_bytes((exp / STATE).read_bytes()[:7])   # ... and was killed mid-copy
    (exp / SEARCHER).write_bytes(b"")
    assert not state.snapshot(exp)                         # a damaged set is never kept
    assert sorted(state.repair(exp)) == sorted([SEARCHER, STATE])
    assert json.loads((exp / STATE).read_text()) == {"trial_data": [["t"] * 3]}
    assert torch.load(exp / SEARCHER, weights_only=True) == {"searcher": {"asked": 3}}
    assert state.repair(exp) == []                  # whole now: nothing to do


def test_repair_restores_one_consistent_set(tmp_path: Path) -> None:
    """A damaged file brings back the whole kept set: a newer (whole) file of the same save
    would leave Tune's trial list and its searcher from different moments (a restore hangs)."""
    exp = tmp_path / "job"
    _write_state(exp, 2)
    (exp / "search_gen_state-2026-11-30_05-00-00.json").write_bytes(pickle.dumps({"counter": 2}))
    assert state.snapshot(exp)
    newer = exp / "experiment_state-2026-11-30_06-00-00.json"      # a resumed session's, whole
    newer.write_text(json.dumps({"trial_data": [["t"] * 5]}))
    (exp / "search_gen_state-2026-11-30_05-00-00.json").write_bytes(pickle.dumps({"counter": 5}))
    (exp / SEARCHER).write_bytes(b"PK\x03\x04")
    assert state.repair(exp) == [SEARCHER]
    assert not newer.exists() and state.newest_state(exp) == exp / STATE
    assert pickle.loads((exp / "search_gen_state-2026-11-30_05-00-00.json").read_bytes()) == {"counter": 2}


def test_snapshot_swap_cut_short_leaves_the_previous_copy(tmp_path: Path) -> None:
    exp = tmp_path / "job"
    _write_state(exp, 2)
    assert state.snapshot(exp)
    (exp / state.KEEP).rename(exp / (state.KEEP + ".old"))  # killed between the two renames
    assert state.kept(exp) == exp / (state.KEEP + ".old")
    (exp / STATE).write_bytes(b"")
    assert state.repair(exp) == [STATE]
    assert state.newest_state(exp) == exp / STATE


def test_repair_without_a_kept_copy_falls_back_or_starts_afresh(tmp_path: Path) -> None:
    exp = tmp_path / "job"
    _write_state(exp, 2)
    older = exp / "experiment_state-2026-11-30_04-00-00.json"   # an earlier session's state
    older.write_text(json.dumps({"trial_data": []}))
    (exp / STATE).write_bytes(b"{\"trial_")
    assert state.recover(exp)
    assert not (exp / STATE).exists() and state.newest_state(exp) == older
    older.write_bytes(b"")
    assert not state.recover(exp) and not exp.exists()      # nothing whole: the resume starts over
    assert not state.recover(exp)
