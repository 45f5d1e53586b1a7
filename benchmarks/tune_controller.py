"""Tune and ablate the controller's sample-efficiency levers by tabular replay.

    python benchmarks/tune_controller.py --variant "pq:elite_size=8" "ppo:ppo_epochs=4" --seeds 20
    python benchmarks/tune_controller.py --ablation --seeds 50          # each lever off in turn
    python benchmarks/tune_controller.py --table NAME --ablation        # benchmarks/data/NAME.csv/.yaml
    python benchmarks/tune_controller.py --synthetic                    # tests/synthetic.py objective
    python benchmarks/tune_controller.py --table NAME --baselines tpe_mv gp --no-baselines
    python benchmarks/tune_controller.py --tuning-split --variant ... --seeds 50   # rank-sum over it
    python benchmarks/tune_controller.py --report-split --write         # the BENCHMARKS.md section

Replays the registry's rnn searcher (`hyperseq.searchers`, told the reward the workers would
report: exp(-metric) for a loss, the metric itself to maximise) against its TPE searcher and
exact random search; regret and trials-to-top-1% by `benchmarks.tabular.summarize`. Each setting's
mean ask+tell time per trial is measured too. Tune on the tuning split only (`TUNING_SPLIT`,
seeds 100-149, and the synthetic objective); the other tables are the held-out report split.
`--tuning-split` runs the rows on every tuning table and ranks them by `rank_sum`, the one
number defaults are chosen by (fixed before the runs it judges). `--report-split` replays the
defaults, TPE (Optuna's defaults, and multivariate + group) and exact random search on every
report table, seeds 0-49; with `--write` it updates the "report-split" section of
BENCHMARKS.md. Prints a markdown table last.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from benchmarks.tabular import SEARCHERS, Table, exact_random, replay, summarize  # noqa: E402
from controller.pairs import parse_pairs  # noqa: E402

DATA = ROOT / "benchmarks" / "data"
CACHE = Path("/tmp/tune_controller_cache")       # one curve per (problem, row options, seed)
# Plain REINFORCE with a PQT elite queue, every other lever off: the controller without its
# sample-efficiency levers, spelled out so the row means the same whatever the defaults become.
PLAIN = {"shaping": "ema", "replay_history": False, "ppo_epochs": 1, "dedup": False, "screen": 0,
       "dyna_samples": 0, "batch_size": 4, "lr": 5e-3, "entropy_weight": 0.1, "elite_size": 8,
       "elite_weight": 0.5}
# Each lever toggled from the defaults (the ablation); dyna is off by default, so it is turned on.
LEVERS_OFF = {"no dedup": {"dedup": False}, "no screening": {"screen": 0},
              "no space filling": {"space_filling": False},
              "policy candidates only": {"screen_random": 0, "screen_local": 0},
              "ema shaping": {"shaping": "ema"}, "no history replay": {"replay_history": False},
              "one epoch (no PPO)": {"ppo_epochs": 1}, "no elites (PQT)": {"elite_size": 0},
              "with dyna (16 imagined)": {"dyna_samples": 16}}
# Problems defaults may be chosen on (benchmarks/data/NAME.csv); every other table is reported only.
TUNING_SPLIT = ["char_lm_table", "seq2seq_optim_table", "char_lm_regularize_table", "pointer_net_hull_table"]
# Extra baseline rows (`--baselines`): label -> (registry searcher, its options).
BASELINES = {"tpe": ("tpe", {}),
             "tpe_mv": ("tpe", {"multivariate": True, "group": True}),
             "gp": ("gp", {})}


class Timed:
    """A replay searcher from `benchmarks.tabular.SEARCHERS` (the registry's searchers, as jobs
    use them), timing every ask and tell."""

    def __init__(self, name: str, space: Any, seed: int, **options: Any) -> None:
        import torch
        torch.set_num_threads(1)
        self.inner = SEARCHERS[name](space, seed, **options)
        self.seconds = 0.0

    def ask(self) -> dict[str, Any]:
        t0 = time.perf_counter()
        config = self.inner.ask()
        self.seconds += time.perf_counter() - t0
        return config

    def tell(self, config: dict[str, Any], metric: float | None) -> None:
        t0 = time.perf_counter()
        self.inner.tell(config, metric)
        self.seconds += time.perf_counter() - t0


def load_problem(table: str | None, synthetic: bool) -> Table:
    if synthetic:
        import synthetic as syn
        space = syn.space()
        metric = {tuple(space.encode(c)): syn.reward(c, space) for c in space}
        return Table(space, metric, {"name": "synthetic"})
    if table:
        return Table.load(DATA / f"{table}.csv", DATA / f"{table}.yaml")
    return Table.load()


def one_run(job: tuple[str, tuple[str, dict], int, int, str | None, bool]) -> tuple[str, list[float], float]:
    label, (name, options), seed, trials, table, synthetic = job
    from controller import ControllerOptions
    if name != "rnn":
        resolved = name if not options else json.dumps([name, options], sort_keys=True)
    else:
        resolved = json.dumps({**ControllerOptions.create(**options).__dict__, "seed": seed}, sort_keys=True)
    for longer in (trials, 200, 400):           # a longer cached curve holds this one
        tag = hashlib.sha1(json.dumps([resolved, seed, longer, table, synthetic]).encode()).hexdigest()[:16]
        if longer >= trials and (CACHE / f"{tag}.json").exists():
            cached = json.loads((CACHE / f"{tag}.json").read_text())
            return label, cached["curve"][:trials], cached["ms"]
    tag = hashlib.sha1(json.dumps([resolved, seed, trials, table, synthetic]).encode()).hexdigest()[:16]
    path = CACHE / f"{tag}.json"
    problem = load_problem(table, synthetic)
    searcher = Timed(name, problem.space, seed, **options)
    t0 = time.perf_counter()
    curve = replay(problem, searcher, trials)
    cost = 1000 * getattr(searcher, "seconds", time.perf_counter() - t0) / trials
    CACHE.mkdir(exist_ok=True)
    path.write_text(json.dumps({"curve": curve, "ms": cost}))
    return label, curve, cost


def run_all(rows: dict[str, tuple[str, dict]], seeds: range, trials: int, table: str | None, synthetic: bool,
            jobs: int) -> tuple[dict[str, list[list[float]]], dict[str, float]]:
    work = [(label, opts, s, trials, table, synthetic) for label, opts in rows.items() for s in seeds]
    curves: dict[str, list[list[float]]] = {label: [] for label in rows}
    ms: dict[str, list[float]] = {label: [] for label in rows}
    with ProcessPoolExecutor(jobs) as pool:
        for label, curve, cost in pool.map(one_run, work, chunksize=1):
            curves[label].append(curve)
            ms[label].append(cost)
            if len(curves[label]) == len(seeds):
                print(f"done: {label} ({cost:.1f} ms/trial on the last seed)", file=sys.stderr, flush=True)
    return curves, {k: sum(v) / len(v) for k, v in ms.items()}


def rank_sum(summaries: dict[str, dict[str, dict]], budgets: list[int]) -> dict[str, float]:
    """Each row's sum, over problems and cells (median regret at each budget, median trials to
    the top 1%), of its rank among the rows in that cell (ties share their mean rank; lower is
    better). Ranks, not regrets, so no problem's metric scale outweighs another's."""
    total: dict[str, float] = {}
    for summary in summaries.values():
        for cell in [*budgets, "top1pct_median_trials"]:
            values = {row: (s[cell]["median"] if cell in budgets else s[cell]) for row, s in summary.items()}
            for row, v in values.items():
                below = sum(w < v for w in values.values())
                equal = sum(w == v for w in values.values())
                total[row] = total.get(row, 0.0) + below + (equal + 1) / 2
    return total


def markdown(summary: dict[str, dict], ms: dict[str, float], budgets: list[int]) -> str:
    head = "| setting | " + " | ".join(f"@{b}" for b in budgets) + " | top1% reached | trials to top1% | ms/trial |"
    lines = [head, "|" + " --- |" * (len(budgets) + 4)]
    for name, s in summary.items():
        cells = " | ".join(f"{s[b]['median'] + 0.0:.4f}" for b in budgets)
        cost = f"{ms[name]:.1f}" if name in ms else "-"
        lines.append(f"| {name} | {cells} | {s['top1pct_reached']} | {s['top1pct_median_trials']} | {cost} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", help="benchmarks/data/NAME.csv with NAME.yaml (default: char_lm table)")
    ap.add_argument("--synthetic", action="store_true", help="the tests/synthetic.py objective")
    ap.add_argument("--tuning-split", action="store_true",
                    help="every TUNING_SPLIT table in turn, then the rows' rank sums over them")
    ap.add_argument("--variant", nargs="*", default=[], help="LABEL:K=V,... rnn rows (options over the defaults)")
    ap.add_argument("--report-split", action="store_true",
                    help="every report table: defaults, TPE, TPE multivariate, exact random (seeds 0-49)")
    ap.add_argument("--ablation", action="store_true", help="defaults, each lever off, plain REINFORCE, TPE")
    ap.add_argument("--no-baselines", action="store_true", help="skip TPE and plain REINFORCE")
    ap.add_argument("--baselines", nargs="*", default=[], choices=list(BASELINES),
                    help="extra rows: tpe_mv = TPE multivariate + group, gp = Optuna's GPSampler")
    ap.add_argument("--baseline-seeds", type=int, help="seeds for the --baselines rows (default --seeds)")
    ap.add_argument("--seeds", type=int, help="how many seeds (default 20; --report-split 50)")
    ap.add_argument("--first-seed", type=int, help="the first seed (default 100; --report-split 0)")
    ap.add_argument("--budgets", type=int, nargs="+", default=[25, 50, 100, 200])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--write", action="store_true", help="with --report-split: update BENCHMARKS.md")
    args = ap.parse_args()
    for flag in ("tuning_split", "report_split"):
        if getattr(args, flag) and (args.table or args.synthetic):
            ap.error(f"--{flag.replace('_', '-')} replays a fixed list of tables; it takes no "
                     f"{'--table ' + args.table if args.table else '--synthetic'}")
    if args.tuning_split and args.report_split:
        ap.error("--tuning-split and --report-split: choose one")
    if args.write and not args.report_split:
        ap.error("--write: only --report-split writes a section of BENCHMARKS.md")
    if args.report_split:
        report_split(args)
        return
    args.seeds = 20 if args.seeds is None else args.seeds
    args.first_seed = 100 if args.first_seed is None else args.first_seed
    rows: dict[str, tuple[str, dict]] = {"rnn (defaults)": ("rnn", {})}
    for v in args.variant:
        label, _, pairs = v.partition(":")
        rows[label] = ("rnn", parse_pairs(pairs))
    if args.ablation:
        rows.update({f"rnn, {name}": ("rnn", opts) for name, opts in LEVERS_OFF.items()})
    if not args.no_baselines:
        rows.update({"rnn (plain REINFORCE)": ("rnn", PLAIN), "tpe": BASELINES["tpe"]})
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    if not args.tuning_split:
        print(problem_report(rows, args, seeds, args.table)[0])
        return
    candidates = [label for label in rows if rows[label][0] == "rnn" and label != "rnn (plain REINFORCE)"]
    summaries = {}
    for name in TUNING_SPLIT:
        text, summaries[name] = problem_report(rows, args, seeds, None if name == "char_lm_table" else name)
        print(text + "\n", flush=True)
    sums = rank_sum({n: {r: s[r] for r in candidates} for n, s in summaries.items()}, args.budgets)
    text = (f"Rank sums over the tuning split ({', '.join(TUNING_SPLIT)}; cells: median regret at "
            f"{', '.join(map(str, args.budgets))} and trials to the top 1%; lower is better):\n\n"
            "| setting | rank sum |\n| --- | ---: |\n"
            + "".join(f"| {r} | {v:g} |\n" for r, v in sorted(sums.items(), key=lambda kv: kv[1])))
    print(text)


def problem_report(rows: dict[str, tuple[str, dict]], args: argparse.Namespace, seeds: range,
                   table: str | None) -> tuple[str, dict[str, dict]]:
    """Replay `rows` (and `--baselines`) on one problem; its markdown table and summaries."""
    trials = max(args.budgets)
    t0 = time.time()
    curves, ms = run_all(rows, seeds, trials, table, args.synthetic, args.jobs)
    if args.baselines:
        extra_seeds = range(args.first_seed, args.first_seed + (args.baseline_seeds or args.seeds))
        extra = run_all({b: BASELINES[b] for b in args.baselines}, extra_seeds, trials, table,
                        args.synthetic, args.jobs)
        curves, ms = {**curves, **extra[0]}, {**ms, **extra[1]}
    problem = load_problem(table, args.synthetic)
    summary = {name: summarize(problem, cs, args.budgets) for name, cs in curves.items()}
    summary["random (exact)"] = exact_random(problem, args.budgets, trials)
    name = "synthetic" if args.synthetic else (table or "char_lm_table")
    text = (f"Problem `{name}`, seeds {seeds.start}-{seeds.stop - 1}, {trials} trials, "
            f"{time.time() - t0:.0f} s. Median regret at each budget; "
            + (f"rows {', '.join(args.baselines)} over seeds {args.first_seed}-"
               f"{args.first_seed + (args.baseline_seeds or args.seeds) - 1}; " if args.baselines else "")
            + f"`python benchmarks/tune_controller.py {' '.join(sys.argv[1:])}`\n"
            + "".join(f"- `{k}`: {v[0]} {v[1]}\n" for k, v in {**rows, **{b: BASELINES[b] for b in args.baselines}}.items()
                      if v[1]) + "\n"
            + markdown(summary, ms, args.budgets))
    return text, summary


def report_tables() -> list[str]:
    """Every stored table not in the tuning split: the problems defaults are never chosen on."""
    return sorted(p.stem for p in DATA.glob("*_table.csv") if p.stem not in TUNING_SPLIT)


REPORT_ROWS = {"rnn (defaults)": ("rnn", {}), "tpe": BASELINES["tpe"], "tpe, multivariate + group": BASELINES["tpe_mv"]}


def report_split(args: argparse.Namespace) -> None:
    """Defaults, TPE and exact random search on every report table, seeds 0-49 by default (the
    tuning runs use 100 on); one markdown table, written to BENCHMARKS.md with `--write`."""
    from benchmarks.report import header, write_section
    first = 0 if args.first_seed is None else args.first_seed
    seeds = range(first, first + (50 if args.seeds is None else args.seeds))
    budgets, trials = args.budgets, max(args.budgets)
    lines = ["| problem (configs) | searcher | " + " | ".join(f"@{b}" for b in budgets)
             + " | median trials to top 1% (seeds that reached it) |",
             "| --- | --- |" + " ---: |" * len(budgets) + " ---: |"]
    for name in report_tables():
        curves, _ = run_all(REPORT_ROWS, seeds, trials, name, False, args.jobs)
        problem = load_problem(name, False)
        summary = {label: summarize(problem, cs, budgets) for label, cs in curves.items()}
        summary["random (exact)"] = exact_random(problem, budgets, trials)
        for i, (label, s) in enumerate(summary.items()):
            cells = " | ".join(f"{s[b]['median'] + 0.0:.4f}" for b in budgets)
            first_col = f"{name} ({len(problem.metric)})" if i == 0 else ""
            reached = "" if label == "random (exact)" else f" ({s['top1pct_reached']})"
            lines.append(f"| {first_col} | {label} | {cells} | {s['top1pct_median_trials']}{reached} |")
        print(f"done: {name}", file=sys.stderr, flush=True)
    body = "\n".join([
        "## Report split: problems the controller's defaults were not chosen on", "",
        header(), f"Seeds {seeds.start}-{seeds.stop - 1}, {trials} trials. Median regret in each table's "
        "metric (regret = the table's best minus the best found, so 0 is the optimum); every row "
        "replays the registry's searcher told the reward the workers report. `random (exact)` is "
        "uniform random search computed from the table.", "", *lines])
    if args.write:
        write_section("report-split", body)
    print(body)


if __name__ == "__main__":
    main()
