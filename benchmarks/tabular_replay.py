"""Replay rnn, random and TPE against a stored table (lookup instead of training).

    python benchmarks/tabular_replay.py [--seeds 20] [--budgets 25 50 100 200 400] [--write]
    python benchmarks/tabular_replay.py --table benchmarks/data/NAME.csv --warm-start 100

Reports median and quartiles of regret (gap to the table's best val_loss) at each budget,
trials to reach the table's top 1%, and a plot of median regret vs trials with IQR bands.
Every ask costs a trial, repeats included. Prints a table last; `--write` updates the
"tabular" section of BENCHMARKS.md (the char_lm table, no warm start) and its plot.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.report import command, header, parse_variant, write_section  # noqa: E402
from benchmarks.tabular import SEARCHERS, TABLE, Table, exact_random, history, replay, summarize  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


WARM_SEED = 10_000          # warm-start histories come from random search with seed + this


def _searcher(table: Table, name: str, seed: int, options: dict, warm: int) -> Any:
    searcher = SEARCHERS[name](table.space, seed, **options)
    if warm:
        searcher.warm_start(*history(table, WARM_SEED + seed, warm))
    return searcher


def run(table: Table, searchers: list[tuple[str, dict]], seeds: range, trials: int,
        warm: int = 0) -> dict[str, list[list[float]]]:
    """Curves per searcher label ("rnn", or "rnn lr=0.02" for a variant's options). `warm`:
    every searcher first learns from the same `warm` random-search trials of another seed."""
    curves: dict[str, list[list[float]]] = {}
    for name, options in searchers:
        label = " ".join([name, *(f"{k}={v}" for k, v in options.items())])
        curves[label] = [replay(table, _searcher(table, name, seed, options, warm), trials)
                         for seed in seeds]
    return curves


def plot(table: Table, curves: dict[str, list[list[float]]], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, cs in curves.items():
        xs = range(1, len(cs[0]) + 1)
        per_t = [sorted(c[t] - table.best for c in cs) for t in range(len(cs[0]))]
        qs = [statistics.quantiles(v, n=4) if len(v) > 1 else v * 3 for v in per_t]
        ax.plot(xs, [statistics.median(v) for v in per_t], label=name)
        ax.fill_between(xs, [q[0] for q in qs], [q[2] for q in qs], alpha=0.2)
    xs = range(1, len(cs[0]) + 1)
    exact = exact_random(table, list(xs), len(xs))
    ax.plot(xs, [exact[n]["median"] for n in xs], "k--", lw=0.8, label="random (exact median)")
    ax.set_ylim(0, 1.2 * exact[5]["median"])          # the first few trials are all far off
    ax.set(xscale="log", xlabel="trials", ylabel="regret (val_loss - table best, nats/char)",
           title=f"char_lm table ({len(table.metric)} configs), median and IQR over {len(cs)} seeds")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown(table: Table, summary: dict, budgets: list[int], seeds: int, seconds: float, cmd: str) -> str:
    h = table.header
    lines = [
        "## Sample efficiency on the char_lm table", "",
        header(cmd) + f"Replay time: {seconds:.0f} s.", "",
        f"Table: `benchmarks/data/char_lm_table.csv`, {len(table.metric)} configs of "
        f"`benchmarks/data/char_lm_table.yaml`, each trained once on {h['device']} by "
        f"`benchmarks/table_build.py` ({h['epochs']} epochs, fixed {h['fixed']}, {h['machine']}, "
        f"{h['date']}). Best val_loss in the table: {table.best:.4f}; top 1% threshold: "
        f"{table.top_fraction(0.01):.4f}.", "",
        "Median regret [q1, q3] over seeds (nats/char; lower is better). `random (exact)` is "
        "uniform random search over infinitely many seeds, computed from the table "
        "(P(best of n <= x) = 1 - (1 - F(x))^n): the noise-free reference.", "",
        "| searcher | " + " | ".join(f"{b} trials" for b in budgets) + " | top 1% reached | median trials to top 1% |",
        "| --- | " + " | ".join("---" for _ in budgets) + " | --- | --- |",
    ]
    for name, s in summary.items():
        cells = [f"{s[b]['median']:.4f} [{s[b]['q1']:.4f}, {s[b]['q3']:.4f}]" for b in budgets]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {s['top1pct_reached']} | {s['top1pct_median_trials']} |")
    lines += ["", *verdict(summary), "", "![regret vs trials](benchmarks/results/tabular_replay.png)"]
    return "\n".join(lines)


def verdict(summary: dict) -> list[str]:
    """The issue's two targets, checked on the medians (and said with the quartiles)."""
    if not {"rnn", "random", "tpe"} <= set(summary) or not {100, 200} <= set(summary["rnn"]):
        return []
    rnn, rand, tpe = summary["rnn"][100], summary["random"][200], summary["tpe"][100]
    ok1, ok2 = rnn["median"] <= rand["median"], rnn["median"] <= tpe["median"]
    return [
        f"- Target 1, rnn at 100 trials reaches random's 200-trial best: **{'met' if ok1 else 'missed'}** "
        f"(median regret {rnn['median']:.4f} vs {rand['median']:.4f}).",
        f"- Target 2, rnn no worse than TPE at 100 trials: **{'met' if ok2 else 'missed'}** on the median "
        f"({rnn['median']:.4f} vs {tpe['median']:.4f}); upper quartile {rnn['q3']:.4f} vs {tpe['q3']:.4f}."]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", type=Path, default=TABLE)
    ap.add_argument("--searchers", nargs="+", default=list(SEARCHERS), choices=list(SEARCHERS))
    ap.add_argument("--variant", nargs="*", default=[],
                    help="extra rows with options, e.g. rnn:lr=0.02,entropy_weight=0.05 tpe:n_startup_trials=5")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--first-seed", type=int, default=0,
                    help="seeds first..first+n-1 (tune on other seeds than you report)")
    ap.add_argument("--budgets", type=int, nargs="+", default=[25, 50, 100, 200, 400])
    ap.add_argument("--warm-start", type=int, default=0, metavar="N",
                    help="warm-start every searcher with N random-search trials of another seed")
    ap.add_argument("--write", action="store_true", help="update BENCHMARKS.md and the plot")
    args = ap.parse_args()
    if args.write and (args.table != TABLE or args.warm_start):
        ap.error("--write: the tabular section holds the char_lm table without --warm-start; "
                 f"got --table {args.table} --warm-start {args.warm_start}")
    table = Table.load(args.table, args.table.with_suffix(".yaml"))
    t0 = time.time()
    variants = [parse_variant(v) for v in args.variant]
    for name, _ in variants:
        if name not in SEARCHERS:
            ap.error(f"--variant {name!r}: unknown searcher (valid: {', '.join(SEARCHERS)})")
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    curves = run(table, [(n, {}) for n in args.searchers] + variants, seeds, max(args.budgets), args.warm_start)
    summary = {name: summarize(table, cs, args.budgets) for name, cs in curves.items()}
    summary["random (exact)"] = exact_random(table, args.budgets, max(args.budgets))
    seconds = time.time() - t0
    if args.write:
        RESULTS.mkdir(exist_ok=True)
        plot(table, curves, RESULTS / "tabular_replay.png")
        write_section("tabular", markdown(table, summary, args.budgets, args.seeds, seconds, command()))
    print(f"table best {table.best:.4f}, {len(table.metric)} configs, {args.seeds} seeds, {seconds:.0f} s")
    width = max(8, *map(len, summary))
    print(f"{'searcher':>{width}} " + " ".join(f"{'@' + str(b):>16}" for b in args.budgets) + "  top1%  med.trials")
    for name, s in summary.items():
        cells = " ".join(f"{s[b]['median']:>7.4f}±{(s[b]['q3'] - s[b]['q1']) / 2:<8.4f}" for b in args.budgets)
        print(f"{name:>{width}} {cells}  {s['top1pct_reached']:>5}  {s['top1pct_median_trials']}")


if __name__ == "__main__":
    main()
