"""Build the char_lm tabular benchmark: train every config of data/char_lm_table.yaml once.

    python benchmarks/tabular_build.py [--workers 2] [--device cpu] [--epochs 3]

Each child trains with a fixed budget (FIXED below, --epochs epochs) and the row keeps its
best epoch's val_loss and every epoch's val_loss. Rows are appended as children finish, so an
interrupted build resumes where it stopped. Children run in a process pool, one intra-op
thread each (on a GPU machine, pass --device cuda and more workers: they share the GPU).
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import multiprocessing as mp
import os
import platform
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn  # noqa: E402

from search_spaces import SearchSpace  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"
FIXED = {"batch_size": 16, "steps_per_epoch": 60, "eval_chars": 8192, "embed": 32}


def train_one(job: tuple[dict, int, str]) -> dict:
    import torch
    from tasks import get_task
    torch.set_num_threads(1)
    config, epochs, device = job
    curve, t0 = [], time.perf_counter()
    for m in get_task("char_lm").train({**config, **FIXED}, epochs=epochs, device=device, seed=0):
        curve.append(m["val_loss"])
        if m["diverged"]:
            break
    finite = [v for v in curve if math.isfinite(v)]
    return {**config, "val_loss": min(finite) if finite and not math.isinf(curve[-1]) else math.inf,
            "curve": " ".join(f"{v:.4f}" for v in curve), "seconds": round(time.perf_counter() - t0, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", type=Path, default=DATA / "char_lm_table.yaml")
    ap.add_argument("--out", type=Path, default=DATA / "char_lm_table.csv")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    space = SearchSpace.from_yaml(args.space)
    configs = list(space)
    done = set()
    if args.out.exists():
        with args.out.open() as f:
            done = {tuple(r[k] for k in space.keys) for r in csv.DictReader(f)}
    todo = [c for c in configs if tuple(str(c.get(k, "")) for k in space.keys) not in done]
    fields = [*space.keys, "val_loss", "curve", "seconds"]
    new_file = not args.out.exists()
    header = {"space": args.space.name, "configs": len(configs), "epochs": args.epochs, "fixed": FIXED,
              "device": args.device, "workers": args.workers, "machine": platform.platform(),
              "cpus": os.cpu_count(), "date": str(date.today()), "metric": "best-epoch val_loss (nats/char)"}
    args.out.with_suffix(".json").write_text(json.dumps(header, indent=2) + "\n")
    t0 = time.time()
    with args.out.open("a", newline="") as f, mp.get_context("spawn").Pool(args.workers) as pool, \
            Progress(*Progress.get_default_columns()[:1], BarColumn(), MofNCompleteColumn(),
                     TimeRemainingColumn()) as bar:
        writer = csv.DictWriter(f, fieldnames=fields)
        if new_file:
            writer.writeheader()
        task = bar.add_task("training table", total=len(todo))
        for row in pool.imap_unordered(train_one, [(c, args.epochs, args.device) for c in todo]):
            writer.writerow(row)
            f.flush()
            bar.advance(task)
    print(f"{len(todo)} configs trained in {time.time() - t0:.0f} s; table: {args.out} ({len(configs)} rows)")


if __name__ == "__main__":
    main()
