"""benchmarks/sampler_cost.py: the paired ratio to TPE, a tiny real run, and its usage errors."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import sampler_cost


def test_summary_medians_and_ratios_to_tpe_in_the_same_repeat() -> None:
    result = {"runs": {"p": {"ControllerSampler": [[30.0, 6.0, 5.0], [20.0, 4.0, 3.0], [40.0, 9.0, 8.0]],
                             "TPESampler": [[10.0, 2.0, 0.0], [10.0, 2.0, 0.0], [20.0, 3.0, 0.0]]}}}
    rows = {r["sampler"]: r for r in sampler_cost.summary(result)}
    ours = rows["ControllerSampler"]
    assert ours["wall"] == (30.0, 20.0, 40.0) and ours["cpu"] == (6.0, 4.0, 9.0)
    assert ours["controller_cpu"] == 5.0
    assert ours["wall_ratio"] == 2.0 and ours["cpu_ratio"] == 3.0       # medians of 3,2,2 and 3,2,3
    assert rows["TPESampler"]["wall_ratio"] == rows["TPESampler"]["cpu_ratio"] == 1.0


def test_a_small_real_run_times_every_sampler(tmp_path: Path, one_thread, capsys) -> None:
    out = tmp_path / "cost.json"
    assert sampler_cost.main(["--repeats", "1", "--trials", "3", "--problems", "categorical",
                              "--no-write", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    runs = data["runs"]["categorical"]
    assert set(runs) == set(sampler_cost.SAMPLERS)
    assert all(len(r) == 1 and r[0][0] > 0 and r[0][1] >= 0 for r in runs.values())
    assert runs["ControllerSampler"][0][2] > 0 and runs["TPESampler"][0][2] == 0     # its controller's share
    text = capsys.readouterr().out
    assert "| categorical | ControllerSampler |" in text and "| categorical | TPESampler |" in text


@pytest.mark.parametrize("argv, needle", [(["--trials", "0"], "--trials must be >= 1"),
                                          (["--repeats", "-1"], "--repeats must be >= 1"),
                                          (["--problems", "nope"], "unknown nope")])
def test_bad_arguments_exit_2_naming_the_option(argv, needle, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        sampler_cost.main([*argv, "--no-write"])
    assert exc.value.code == 2 and needle in capsys.readouterr().err
