"""benchmarks/table_build.py: a tiny real table (4 char_lm configs, a repeat block, a few
training steps each) is built into tmp_path, read back by `Table.load`, and resumed."""
from __future__ import annotations

import csv
import json
import math

import pytest

from benchmarks import table_build
from benchmarks.tabular import Table

SPACE = """\
name: tiny_table
task: char_lm
metric: val_loss
mode: min
decisions:
  - {name: cell, choices: [gru, lstm]}
  - {name: layers, choices: [1, 2]}
  - repeat: layers
    decisions:
      - {name: hidden, choices: [8]}
"""
FIXED = {"batch_size": 4, "steps_per_epoch": 3, "eval_chars": 256, "embed": 8, "seq_len": 16}


def build(tmp_path, *extra: str) -> dict:
    space = tmp_path / "tiny_table.yaml"
    space.write_text(SPACE)
    argv = ["--space", str(space), "--epochs", "2", "--fixed", json.dumps(FIXED), *extra]
    return table_build.main(argv)


def read(path) -> list[dict]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_build_writes_a_table_that_loads(tmp_path, one_thread):
    stats = build(tmp_path)
    csv_path, space_path = tmp_path / "tiny_table.csv", tmp_path / "tiny_table.yaml"
    table = Table.load(csv_path, space_path)
    assert len(table.metric) == table.space.size() == stats["configs"] == 4
    rows = read(csv_path)
    columns = ["cell", "layers", "hidden_1", "hidden_2", "val_loss", "curve", "seconds"]
    assert list(rows[0]) == columns
    for row in rows:
        assert (row["hidden_2"] == "") == (row["layers"] == "1")  # inactive decision: empty
        curve = [float(v) for v in row["curve"].split()]
        assert len(curve) == 2 and float(row["val_loss"]) == pytest.approx(min(curve), abs=1e-4)
        assert 0 < float(row["val_loss"]) < 6 and float(row["seconds"]) >= 0
    assert table.best == min(table.metric.values()) == pytest.approx(stats["best"])
    header = json.loads(csv_path.with_suffix(".json").read_text())
    assert header["configs"] == 4 and header["epochs"] == 2 and header["fixed"] == FIXED
    assert header["task"] == "char_lm" and header["device"] == "cpu"
    total = sum(float(r["seconds"]) for r in rows)
    assert header["child_seconds_total"] == pytest.approx(total, abs=0.1)
    assert "--epochs 2" in header["command"] and "table_build.py" in header["command"]


def test_build_in_slices(tmp_path, one_thread):
    build(tmp_path, "--max-configs", "3")
    csv_path = tmp_path / "tiny_table.csv"
    assert len(read(csv_path)) == 3
    header = json.loads(csv_path.with_suffix(".json").read_text())
    assert header["rows"] == 3 and header["configs"] == 4
    assert "--max-configs" not in header["command"]  # the command reproduces the whole table
    build(tmp_path)
    table = Table.load(csv_path, tmp_path / "tiny_table.yaml")
    assert len(table.metric) == len(read(csv_path)) == 4


def test_resume_trains_only_missing_rows(tmp_path, one_thread, monkeypatch):
    build(tmp_path)
    csv_path = tmp_path / "tiny_table.csv"
    rows = read(csv_path)
    with csv_path.open("w", newline="") as f:  # as if the build had stopped after 2 rows
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows[:2])
        f.write("lstm,1,8,,4.2")  # a row cut short by a kill mid-write
    trained = []
    real = table_build.train_one
    monkeypatch.setattr(table_build, "train_one",
                        lambda job: trained.append(job.config) or real(job))
    build(tmp_path)
    assert len(trained) == 2
    again = read(csv_path)
    assert again[:2] == rows[:2] and len(again) == 4
    assert {tuple(r.values())[:4] for r in again} == {tuple(r.values())[:4] for r in rows}
    header = json.loads(csv_path.with_suffix(".json").read_text())
    assert header["runs"] == 2 and header["rows"] == 4


def test_best_of_follows_mode_and_divergence():
    assert table_build.best_of([3.0, 2.0, 2.5], False, "min") == 2.0
    assert table_build.best_of([0.1, 0.7, 0.5], False, "max") == 0.7
    assert table_build.best_of([2.0, math.inf], True, "min") == math.inf
    assert table_build.best_of([0.4, 0.0], True, "max") == 0.0


def test_fixed_keys_must_not_overlap_the_space(tmp_path):
    with pytest.raises(SystemExit, match="cell"):
        build(tmp_path, "--fixed", json.dumps({"cell": "gru"}))
