"""The multi-objective suite: hypervolume of every searcher on public multi-metric tables, one command.

    pip install -e '.[bench]'
    python benchmarks/mo_suite.py --split tuning --jobs 2        # 20 seeds, 25..200 trials
    python benchmarks/mo_suite.py --split report --searchers nsga2 tpe random --no-write
    python benchmarks/mo_suite.py --split tuning --label wide --rnn-options '{"hidden_size": 128}'

Problems, objectives, the split and the measure are declared in `benchmarks/mo_problems.py`.
Each (problem, searcher, seed) replays one trial at a time through an Optuna study with the
problem's `directions` (ask -> observe -> tell): rnn is `hyperseq.ControllerSampler`, nsga2
`NSGAIISampler`, tpe `TPESampler` (multi-objective by the study's directions), random
`RandomSampler`, each with the unit's seed and otherwise its defaults. The searcher is told one
stored run of the config (drawn from a stream seeded by (problem, seed), the same for every
searcher); the hypervolume is measured on the evaluated configs' TRUE values (their means over
the stored runs), as the single-objective suite measures regret.

Measures: the hypervolume fraction after b trials (see `mo_problems`: normalised objectives,
reference point 1.1, 1.0 = the table's whole front); per problem its median over seeds; over a
split the mean over problems of those medians, and for each rnn row and baseline the count of
problems where rnn's median is at least the baseline's.

Output: progress on stderr, a markdown table (printed, and written between the mo_suite markers
in BENCHMARKS.md unless --no-write or --rnn-options), one PNG per problem group under
docs/images/. Units are cached as JSON under --cache, keyed as the single-objective suite's
(`benchmarks.suite`: problem, searcher, controller options, seed, a hash of the code that
decides the proposals), so a rerun only replays what changed.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import mo_report, report, suite, suite_report  # noqa: E402
from benchmarks.mo_problems import SPLITS, load_problem, seeds_of  # noqa: E402
from benchmarks.suite_problems import replay_unit  # noqa: E402

CACHE = Path.home() / ".cache" / "hyperseq-mo-suite"
BUDGETS = (25, 50, 100, 200)
SEARCHERS = ("rnn", "nsga2", "tpe", "random")
CODE = ("benchmarks/mo_problems.py",)      # what decides a unit here, hashed with suite.CODE
Results = dict[tuple[str, str], list[dict[str, Any]]]      # (problem, searcher name) -> one per seed


def _run_unit(job: tuple[str, str, int, int, dict[str, Any]]) -> dict[str, Any]:
    problem, searcher, seed, trials, options = job
    suite._quiet()
    unit = {**replay_unit(load_problem(problem), searcher, seed, trials, options), "requested": trials}
    return json.loads(json.dumps(unit))          # tuples as lists: a fresh unit reads as a cached one


def run_mo_suite(problems: Sequence[str], searchers: Sequence[str], seeds: int = 20, trials: int = 200,
                 jobs: int = 1, cache: Path | None = CACHE, rnn_options: Mapping[str, Any] | None = None,
                 label: str | None = None, progress: bool = True) -> Results:
    """Replay every (problem, searcher, seed): cached units are read, the others run in a pool
    of `jobs` processes (inline for 1). Seeds start at the problem's split offset."""
    unknown = [s for s in searchers if s not in SEARCHERS] + [p for p in problems if p not in SPLITS["all"]]
    if unknown or seeds < 1 or trials < 1:
        raise ValueError(f"run_mo_suite: unknown {unknown}" if unknown else
                         f"run_mo_suite: seeds and trials must be >= 1, got seeds={seeds}, trials={trials}")
    options = dict(rnn_options or {})
    codes = {s: suite.fingerprint(s, CODE) for s in searchers}
    results: Results = {}
    todo: list[tuple[tuple[str, str, int, int, dict[str, Any]], tuple[str, str], int, Path | None]] = []
    for p in problems:
        for s in searchers:
            name = suite.display_name(s, label)
            results[(p, name)] = [None] * seeds
            for i, seed in enumerate(seeds_of(p, seeds)):
                path = cache / f"{suite._unit_key('mo/' + p, s, seed, options, codes[s])}.json" if cache else None
                results[(p, name)][i] = suite._cached(path, trials) if path else None
                if results[(p, name)][i] is None:
                    todo.append(((p, s, seed, trials, options), (p, name), i, path))
    meter = suite_report.Progress(results, len(todo), enabled=progress)

    def done(k: int, unit: dict[str, Any]) -> None:
        _, key, i, _ = todo[k]
        results[key][i] = unit
        meter.unit_done(*key)

    suite.replay_units(_run_unit, [t[0] for t in todo], [t[3] for t in todo], jobs, done)
    return results


def summarize(results: Results, budgets: Sequence[int] = BUDGETS, **kwargs: Any) -> dict[str, Any]:
    """Per problem, split and group: see the module docstring for the measures (and
    `mo_report.summarize` for the keywords)."""
    return mo_report.summarize(results, budgets, **kwargs)


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    suite.common_options(ap, SPLITS, CACHE)
    ap.add_argument("--searchers", nargs="+", choices=SEARCHERS, default=list(SEARCHERS))
    ap.add_argument("--trials", type=int, default=max(BUDGETS), help="trials per seed (the budgets above it drop)")
    args = ap.parse_args(argv)
    suite.check_common(ap, args, SPLITS["all"])
    if args.trials < 1:
        ap.error(f"--trials must be >= 1, got {args.trials}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    problems = [p for p in SPLITS[args.split] if not args.problems or p in args.problems]
    if not problems:
        print(f"error: --problems {' '.join(args.problems)} has none in --split {args.split}", file=sys.stderr)
        return 2
    t0 = time.time()
    results = run_mo_suite(problems, args.searchers, args.seeds, args.trials, args.jobs, args.cache,
                           args.rnn_options, args.label)
    summary = summarize(results, [b for b in BUDGETS if b <= args.trials] or [args.trials])
    command = report.command(["benchmarks/mo_suite.py", *(sys.argv[1:] if argv is None else argv)])
    text = mo_report.markdown(summary, command, args.seeds, time.time() - t0)
    suite.publish(args, text, lambda outdir: mo_report.plot(summary, outdir), mo_report.SECTION)
    return 0


if __name__ == "__main__":
    sys.exit(main())
