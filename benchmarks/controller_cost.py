"""Controller ask + tell cost per configuration on a 10-decision space (CPU, torch only).

    python benchmarks/controller_cost.py [--batch 1 8] [--rounds 200] [--write]

`--batch` is how many configs each ask/tell carries (1 = one trial at a time, as Ray Tune asks);
the controller keeps its default options (`ControllerOptions`), update rule included.

Also times uniform sampling (`space.sample`) in the same run as the floor a searcher can't beat.
Prints a table last; `--write` updates the "controller-cost" section of BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from benchmarks.report import header, write_section  # noqa: E402
from controller import Controller  # noqa: E402
from search_spaces import SearchSpace  # noqa: E402

SPACE = {"name": "ten", "decisions": [
    {"name": "cell", "choices": ["rnn", "gru", "lstm", "peephole_lstm"]},
    {"name": "layers", "choices": [1, 2, 3]},
    {"name": "hidden", "choices": [64, 128, 256, 512]},
    {"name": "embed", "choices": [32, 64, 128]},
    {"name": "lr", "range": [1e-4, 1e-2], "steps": 7, "log": True},
    {"name": "dropout", "range": [0.0, 0.5], "steps": 6},
    {"name": "weight_decay", "choices": [0.0, 1e-5, 1e-4, 1e-3]},
    {"name": "optimizer", "choices": ["adam", "adamw", "sgd", "rmsprop"]},
    {"name": "seq_len", "choices": [64, 128, 256]},
    {"name": "grad_clip", "choices": [0.25, 1.0, 5.0]},
]}


def measure(batch: int, rounds: int) -> dict[str, float]:
    space = SearchSpace.from_dict(SPACE)
    assert len(space.keys) == 10
    ctrl = Controller(space, seed=0)                           # the defaults (ControllerOptions)
    rng = random.Random(0)
    for _ in range(5):                                          # warm-up
        ctrl.tell(c := ctrl.ask(batch), [rng.random() for _ in c])
    t_ask = t_tell = 0.0
    for _ in range(rounds):
        t0 = time.perf_counter()
        configs = ctrl.ask(batch)
        t1 = time.perf_counter()
        ctrl.tell(configs, [rng.random() for _ in configs])
        t_ask, t_tell = t_ask + t1 - t0, t_tell + time.perf_counter() - t1
    n = batch * rounds
    t0 = time.perf_counter()
    for _ in range(n):
        space.sample(rng)
    t_uniform = time.perf_counter() - t0
    return {"batch": batch, "configs": n, "ask_ms": 1e3 * t_ask / n, "tell_ms": 1e3 * t_tell / n,
            "total_ms": 1e3 * (t_ask + t_tell) / n, "uniform_sample_ms": 1e3 * t_uniform / n,
            "torch_threads": torch.get_num_threads()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--json", type=Path, help="also write results here")
    ap.add_argument("--write", action="store_true", help="update the section in BENCHMARKS.md")
    args = ap.parse_args()
    rows = [measure(b, max(1, args.rounds * 8 // (8 * b) if b < 8 else args.rounds)) for b in args.batch]
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    if args.write:
        lines = ["## Controller ask + tell cost", "", header(),
                 "10-decision space; the controller's defaults (`ControllerOptions`); uniform sampling "
                 "(`space.sample`) measured in the same run as the floor a searcher cannot beat.", "",
                 "| configs per ask/tell | ask ms/config | tell ms/config | ask+tell ms/config | uniform sample ms/config | ratio to uniform |",
                 "| --- | --- | --- | --- | --- | --- |"]
        lines += [f"| {r['batch']} | {r['ask_ms']:.3f} | {r['tell_ms']:.3f} | {r['total_ms']:.3f} | "
                  f"{r['uniform_sample_ms']:.4f} | {r['total_ms'] / r['uniform_sample_ms']:.0f}x |" for r in rows]
        write_section("controller-cost", "\n".join(lines))
    print(f"{'batch':>5} {'configs':>7} {'ask ms':>8} {'tell ms':>8} {'ask+tell ms':>11} {'uniform ms':>10}")
    for r in rows:
        print(f"{r['batch']:>5} {r['configs']:>7} {r['ask_ms']:>8.3f} {r['tell_ms']:>8.3f} "
              f"{r['total_ms']:>11.3f} {r['uniform_sample_ms']:>10.4f}")


if __name__ == "__main__":
    main()
