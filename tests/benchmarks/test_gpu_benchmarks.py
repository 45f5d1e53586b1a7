"""The torch-only device benchmarks (GPU packing, search quality) in reduced form on the CPU:
the real commands run, children really train in packed processes, the budget holds and the
results render. Asserts the machinery, not a speed (the figures come from a CUDA machine)."""
from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_script(name: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / name), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.slow
def test_packing_measures_overlapping_children(tmp_path):
    out = tmp_path / "packing.json"
    stdout = run_script("gpu_packing.py", "--device", "cpu", "--children", "1", "2", "--configs", "small",
                        "--steps", "4", "--epochs", "2", "--out", str(out))
    result = json.loads(out.read_text())
    rows = result["rows"]
    assert [r["children"] for r in rows] == [1, 2]
    for r in rows:
        assert "error" not in r, r
        assert r["tokens_per_s"] > 0 and r["window_s"] > 0
    assert result["recommend"]["small"] in (1, 2)
    assert stdout.rstrip().splitlines()[-1].startswith("| small | 2 |")       # the table comes last

    from benchmarks.gpu_packing import markdown
    from benchmarks.report import write_section
    md = tmp_path / "BENCHMARKS.md"
    write_section("gpu-packing", markdown(result), md)
    assert "| small | 2 |" in md.read_text() and "--gpus-per-trial" in md.read_text()


@pytest.mark.slow
def test_search_keeps_its_budget_and_reports_every_trial(tmp_path):
    out = tmp_path / "search.json"
    minutes = 0.4
    start = time.time()
    stdout = run_script("gpu_search.py", "--device", "cpu", "--minutes", str(minutes), "--slots", "2",
                        "--space", "char_lm_quick", "--explore-epochs", "1", "--explore-steps", "4",
                        "--final-epochs", "50", "--final-steps", "4", "--final-top", "1", "--out", str(out))
    elapsed = time.time() - start
    result = json.loads(out.read_text())
    # the final phase asks for 50 epochs but must stop at the budget (overrun: one epoch at most)
    assert result["wall_s"] < minutes * 60 + 20, result["wall_s"]
    assert elapsed < minutes * 60 + 60
    for name in ("rnn", "random"):
        trials = [t for t in result["trials"] if t["searcher"] == name]
        assert trials          # how many fit in the explore phase's seconds depends on the machine's load
        assert {t["status"] for t in trials} <= {"done", "cut", "diverged", "crashed"}
        assert all(t["end"] <= result["args"]["explore_fraction"] * minutes * 60 + 20 for t in trials)
    finals = {f["searcher"]: f for f in result["finals"]}
    assert set(finals) == {"default", "rnn", "random"}
    for f in finals.values():
        assert f["status"] in ("done", "cut") and math.isfinite(f["val_loss"])
        assert f["val_loss"] < math.log(65)          # better than a uniform guess over the vocabulary
        assert len(f["curve"]) < 50                  # the budget, not the epoch count, ended it
    assert "reference: nanoGPT" in stdout.rstrip().splitlines()[-2]

    from benchmarks.gpu_search_report import markdown
    text = markdown(result)
    assert "| default | - |" in text and "1.4697" in text


@pytest.mark.slow
def test_search_stops_asking_a_searcher_that_exhausted_its_space(tmp_path):
    """The rnn never repeats a config: over a two-config space it proposes two, then the explore
    phase goes on with the other searcher instead of crashing on an empty proposal."""
    space = tmp_path / "two.yaml"
    space.write_text("name: two\ntask: char_lm\nmetric: val_loss\nmode: min\ndecisions:\n"
                     "  - {name: cell, choices: [rnn, gru]}\n  - {name: hidden, choices: [32]}\n")
    out = tmp_path / "search.json"
    run_script("gpu_search.py", "--device", "cpu", "--minutes", "0.5", "--slots", "2", "--space", str(space),
               "--schedule", "none", "--fixed",
               "batch_size=8,embed=16,seq_len=32,eval_chars=2048,lr_schedule=cosine",
               "--explore-epochs", "1", "--explore-steps", "2", "--final-epochs", "1", "--final-steps", "2",
               "--final-top", "1", "--out", str(out))
    trials = json.loads(out.read_text())["trials"]
    rnn = [t["config"]["cell"] for t in trials if t["searcher"] == "rnn"]
    assert sorted(rnn) == ["gru", "rnn"]
    assert sum(t["searcher"] == "random" for t in trials) > 2       # random kept its slot busy


@pytest.mark.slow
def test_rungs_in_seconds_end_a_child_by_its_own_training_time():
    """With --rung-seconds a rung is a training-time budget (1, 3, 9, ... x S seconds): the child
    stops after the epoch that crosses it, counted as a completed rung (status done), however
    many epochs were allowed."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.gpu_search import Rungs, train_child
    rungs = Rungs(9, asha=True, rung_seconds=0.5)
    assert [rungs.budget(r)[1] for r in range(3)] == [0.5, 1.5, 4.5]
    assert Rungs(9, asha=True).budget(1) == (3, None)                # epochs when rung_seconds is 0
    config = {"cell": "gru", "hidden": 32, "embed": 16, "batch_size": 8, "seq_len": 32, "eval_chars": 1024}
    epochs, seconds = rungs.budget(0)
    result = train_child(config, epochs, 2, "cpu", time.time() + 600, 0, seconds)
    assert result["status"] == "done" and math.isfinite(result["val_loss"])
    assert 0.5 <= result["seconds"] < 30 and 1 <= len(result["curve"]) < 1000


def test_a_cosine_schedule_decays_over_the_runs_own_budget():
    """Steps-bounded runs keep the task's own horizon (epochs x steps); a rung in seconds decays
    over its seconds, a final over the time left until the deadline."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.gpu_search import annealed
    cosine = {"lr": 0.01, "lr_schedule": "cosine"}
    assert annealed(cosine, None, None) == cosine
    assert annealed(cosine, 20.0, None)["lr_horizon_s"] == 20.0
    assert annealed(cosine, None, 300.0)["lr_horizon_s"] == 300.0
    assert annealed(cosine, None, -5.0)["lr_horizon_s"] == 1.0      # already late: anneal at once
    assert annealed({"lr": 0.01}, 20.0, 300.0) == {"lr": 0.01}       # constant rate: untouched


def test_the_final_takes_the_fastest_of_a_tie_at_the_top_rung():
    """Top-rung results within TIE_NATS of the best are a tie, broken by time per epoch; a
    clear winner stays first whatever its speed, and a lower rung never beats a higher one."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.gpu_search import TIE_NATS, ranked_configs

    def trial(name: str, rung: int, loss: float, seconds: float) -> dict:
        return {"searcher": "s", "status": "done", "config": {"c": name}, "rung": rung, "val_loss": loss,
                "seconds": seconds, "curve": [loss] * 9}

    slow_best, fast_tied = trial("slow", 2, 1.50, 900.0), trial("fast", 2, 1.50 + TIE_NATS / 2, 300.0)
    low_rung = trial("low", 1, 1.20, 10.0)
    assert ranked_configs([low_rung, slow_best, fast_tied], "s", 3) == [{"c": "fast"}, {"c": "slow"}, {"c": "low"}]
    clear = trial("fast", 2, 1.50 + 2 * TIE_NATS, 300.0)
    assert ranked_configs([clear, slow_best, low_rung], "s", 2) == [{"c": "slow"}, {"c": "fast"}]
    assert ranked_configs([low_rung], "other", 1) == []


@pytest.mark.slow
def test_the_final_race_keeps_each_groups_best_so_far(tmp_path):
    """The driver keeps the lowest best-so-far of each group and stops the others; a finalist
    that has not reported (no epoch finished yet) loses to any that has."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.gpu_search import Race
    race = Race(tmp_path)
    race.report("rnn-0", 1.9)
    race.report("rnn-1", 1.7)
    race.report("rnn-1", 1.6)                     # a later report replaces the earlier one
    race.report("tpe-1", math.inf)                # diverged: as bad as no report
    outcome = race.decide({"rnn": ["rnn-0", "rnn-1"], "tpe": ["tpe-0", "tpe-1"]})
    assert outcome["rnn"] == {"standings": {"rnn-0": 1.9, "rnn-1": 1.6}, "kept": "rnn-1"}
    assert outcome["tpe"] == {"standings": {"tpe-0": None, "tpe-1": None}, "kept": "tpe-0"}  # tie: the first
    json.dumps(outcome, allow_nan=False)                      # strict JSON: no Infinity
    assert [race.stopped(m) for m in ("rnn-0", "rnn-1", "tpe-0", "tpe-1")] == [True, False, False, True]


@pytest.mark.slow
def test_a_search_with_a_final_race_halves_each_searchers_finalists(tmp_path):
    """--final-top 2 --final-race 0.5: both finalists of a searcher train, then the one the race
    kept trains on and the other ends "halved"; only the kept one is the searcher's answer."""
    out = tmp_path / "search.json"
    run_script("gpu_search.py", "--device", "cpu", "--minutes", "0.4", "--slots", "2", "--space",
               "char_lm_quick", "--explore-epochs", "1", "--explore-steps", "4", "--final-epochs", "200",
               "--final-steps", "4", "--final-top", "2", "--final-race", "0.5", "--searchers", "random",
               "--out", str(out))
    result = json.loads(out.read_text())
    finals = [f for f in result["finals"] if f["searcher"] == "random"]
    assert len(finals) == 2
    race = result["final_race"]["groups"]["random"]
    kept = next(f for f in finals if f["member"] == race["kept"])
    lost = next(f for f in finals if f["member"] != race["kept"])
    assert lost["status"] == "halved" and kept["status"] in ("done", "cut")
    standing = {m: math.inf if v is None else v for m, v in race["standings"].items()}
    assert standing[kept["member"]] <= standing[lost["member"]]
    assert len(kept["curve"]) > len(lost["curve"])         # it trained on after the decision
    assert 0 < result["final_race"]["at"] < 0.4 * 60
    from benchmarks.gpu_search_report import markdown, summary
    row = next(r for r in summary(result) if r["searcher"] == "random")
    assert row["final"] == kept["val_loss"]
    assert f"random kept {race['kept']}" in markdown(result)
