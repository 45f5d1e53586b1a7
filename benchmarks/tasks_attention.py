"""seq2seq date normalisation with and without attention, at an equal training budget.

    python benchmarks/tasks_attention.py [--epochs 4] [--seeds 0 1]
                                         [--attention none dot bilinear mlp] [--device cpu]

Every run uses the seq2seq default config (GRU, bidirectional encoder, hidden 128, 50 steps
of 64 dates per epoch) with only `attention` changed, for the same number of epochs, and is
scored on the same 1,000 held-out dates. Runs on CPU in a few minutes with the defaults.
Prints one line per run, then a table (mean over seeds) last; `--out` writes JSON; `--write`
updates the "attention" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from benchmarks.report import header, write_section  # noqa: E402
from tasks import get_task  # noqa: E402

KINDS = ("none", "dot", "bilinear", "mlp")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=4, help="epochs per run (same for all)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--attention", nargs="+", default=list(KINDS), choices=KINDS)
    parser.add_argument("--device", default="cpu", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=None, help="write results as JSON here")
    parser.add_argument("--write", action="store_true", help="update the section in BENCHMARKS.md")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    task = get_task("seq2seq")
    runs = []
    for kind in args.attention:
        for seed in args.seeds:
            last = list(task.train({"attention": kind}, epochs=args.epochs,
                                   device=args.device, seed=seed))[-1]
            runs.append({"attention": kind, "seed": seed, **last})
            print(json.dumps(runs[-1]), flush=True)
    if args.out:
        args.out.write_text(json.dumps(runs, indent=2))
    steps = runs[0]["steps"]
    print(f"\nseq2seq dates -> ISO, {steps} steps x 64 examples per run, "
          f"seeds {args.seeds}, device {args.device}; mean (min-max) over seeds")
    head = (f"{'attention':<10} {'exact match':>20} {'token acc':>8} {'val loss':>9} "
            f"{'params':>8} {'s/run':>7}")
    print(head + "\n" + "-" * len(head))
    md = ["## seq2seq: attention vs none at an equal budget", "",
          header(), f"{steps} steps x 64 dates per run, seeds {args.seeds}, device {args.device}; scored on "
          f"the same 1,000 held-out dates; mean (min-max) over seeds; time per run beside "
          f"`{args.attention[0]}`'s (the baseline).", "",
          f"| attention | exact match | token acc | val loss | params | s/run | time vs {args.attention[0]} |",
          "| --- | --- | --- | --- | --- | --- | --- |"]
    base_s = statistics.mean(r["seconds"] for r in runs if r["attention"] == args.attention[0])
    for kind in args.attention:
        rows = [r for r in runs if r["attention"] == kind]
        em = [r["val_exact_match"] for r in rows]
        mean = lambda key: statistics.mean(r.get(key, float("nan")) for r in rows)  # noqa: E731
        spread = f"{statistics.mean(em):.3f} ({min(em):.3f}-{max(em):.3f})"
        print(f"{kind:<10} {spread:>20} {mean('val_token_acc'):>8.3f} {mean('val_loss'):>9.3f} "
              f"{rows[0]['num_params']:>8,} {mean('seconds'):>7.1f}")
        md.append(f"| {kind} | {spread} | {mean('val_token_acc'):.3f} | {mean('val_loss'):.3f} | "
                  f"{rows[0]['num_params']:,} | {mean('seconds'):.1f} | {mean('seconds') / base_s:.2f}x |")
    if args.write:
        write_section("attention", "\n".join(md))


if __name__ == "__main__":
    main()
