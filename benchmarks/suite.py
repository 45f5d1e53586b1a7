"""The benchmark suite: every searcher replayed on every tabular problem, one command.

    pip install -e '.[bench]'
    python benchmarks/suite.py                               # all problems, 20 seeds, 200 trials
    python benchmarks/suite.py --split tuning --label wide --rnn-options '{"hidden_size": 128}'
    python benchmarks/suite.py --gp --seeds 5 --no-write     # with Optuna's GPSampler (<= 100 trials)

Problems and searchers are declared in `benchmarks/suite_problems.py` (the tuning/report split
included, fixed before any run). Each (problem, searcher, seed) replays one trial at a time,
ask -> observe -> tell; the searcher sees the observation (one stored run of the config, drawn
from a stream seeded by (problem, seed), so every searcher meets the same noise for a seed),
while regret is measured on the config's TRUE value (the mean over its stored runs).

Measures (the usual "recommend the best observed" convention):
- regret at budget b: true(best config of the problem) - true(the config whose OBSERVED value is
  best among the first b trials; the earliest on ties), in the metric's own units, >= 0. Before
  any finite observation the recommendation is the problem's worst finite config.
- normalised regret: regret / (true(best) - true(median config)); 0 is the best config, 1 the
  median one, so problems of any scale average together.
- trials to the top 1%: the first trial whose config's TRUE value is in the problem's top 1%
  (ties at the threshold count); a seed that never gets there counts as more than its budget;
  the median over seeds is the upper one for an even count (as `benchmarks.tabular.summarize`).
- per problem: median regret over seeds; over problems (each split's public problems apart
  from its stored tables, `suite_report.PARTS`): the mean over problems of each problem's mean
  normalised regret over seeds; "rnn <= X" counts the problems where rnn's mean regret over
  seeds is at most X's (the mean, not the median: medians often tie at 0).
A searcher that runs out of configs keeps its last recommendation; GP stops at 100 trials.

Output: progress on stderr, a markdown table (printed, and written between the suite markers
in BENCHMARKS.md unless --no-write or --rnn-options), one PNG per problem group under
docs/images/. Each seed's trials are cached as JSON under --cache (default
~/.cache/hyperseq-suite), keyed by problem, searcher, controller options, seed and a hash of
the code that decides the searcher's proposals, so a rerun only replays what changed.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import report, suite_report  # noqa: E402
from benchmarks.suite_problems import (MAX_TRIALS, SEARCHERS, SEED_OFFSET, SPLITS,  # noqa: E402
                                       load_problem, problem_names, replay_unit, split_of)

CACHE = Path.home() / ".cache" / "hyperseq-suite"
BUDGETS = (10, 25, 50, 100, 200)
DEFAULT_SEARCHERS = ("rnn", "rnn-job", "tpe", "tpe-mv", "random")
RNN = ("rnn", "rnn-job")
# The code whose change can change a searcher's proposals (paths under the repository root).
CODE = {"all": ("benchmarks/suite_problems.py", "benchmarks/sampler_replay.py", "benchmarks/tabular.py",
                "search_spaces"),
        "rnn": ("controller", "hyperseq/sampler.py", "hyperseq/sampler_space.py", "hyperseq/searchers",
                "workers/rewards.py")}
Results = dict[tuple[str, str], list[dict[str, Any]]]      # (problem, searcher name) -> one per seed


def fingerprint(searcher: str, extra: Sequence[str] = ()) -> str:
    """A hash of the sources and library versions that decide `searcher`'s proposals (and of
    the `extra` paths a runner adds, such as its own replay code)."""
    import optuna
    import torch
    h = hashlib.sha1(f"optuna {optuna.__version__} torch {torch.__version__}".encode())
    for part in CODE["all"] + (CODE["rnn"] if searcher in RNN else ()) + tuple(extra):
        path = ROOT / part
        for f in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            h.update(f.relative_to(ROOT).as_posix().encode() + f.read_bytes())
    return h.hexdigest()[:16]


def display_name(searcher: str, label: str | None) -> str:
    return f"{searcher}[{label}]" if label and searcher in RNN else searcher


def _unit_key(problem: str, searcher: str, seed: int, options: Mapping[str, Any], code: str) -> str:
    opts = dict(options) if searcher in RNN else {}
    blob = json.dumps([problem, searcher, opts, seed, code], sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:20]


def _cached(path: Path, trials: int) -> dict[str, Any] | None:
    """The cached unit if it covers `trials` (a longer run's prefix is the shorter run)."""
    try:
        unit = json.loads(path.read_text())
    except (OSError, ValueError):             # absent, or cut short: replay it
        return None
    if not isinstance(unit, dict) or unit.get("requested", 0) < trials:
        return None
    n = min(trials, len(unit["observed"]))
    return {**unit, "requested": trials, "observed": unit["observed"][:n], "true": unit["true"][:n]}


def _run_unit(job: tuple[str, str, int, int, dict[str, Any]]) -> dict[str, Any]:
    problem, searcher, seed, trials, options = job
    _quiet()
    unit = replay_unit(load_problem(problem), searcher, seed, trials, options)
    return {**unit, "requested": trials}


def _quiet() -> None:
    """No Optuna log line per study, no warning that a sampler option is experimental."""
    import warnings

    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def run_suite(problems: Sequence[str], searchers: Sequence[str], seeds: int = 20, trials: int = 200,
              jobs: int = 1, cache: Path | None = CACHE, rnn_options: Mapping[str, Any] | None = None,
              label: str | None = None, progress: bool = True) -> Results:
    """Replay every (problem, searcher, seed); the cached units are read, the others run in a
    pool of `jobs` processes (inline for 1). Seeds start at the problem's split offset."""
    unknown = [s for s in searchers if s not in SEARCHERS] + [p for p in problems if p not in SPLITS["all"]]
    if unknown or seeds < 1 or trials < 1:
        raise ValueError(f"run_suite: unknown {unknown}" if unknown else
                         f"run_suite: seeds and trials must be >= 1, got seeds={seeds}, trials={trials}")
    options = dict(rnn_options or {})
    codes = {s: fingerprint(s) for s in searchers}
    todo, results, paths = [], {}, {}
    for p in problems:
        for s in searchers:
            n = min(trials, MAX_TRIALS.get(s, trials))
            results[(p, display_name(s, label))] = [None] * seeds
            for i, seed in enumerate(range(SEED_OFFSET[split_of(p)], SEED_OFFSET[split_of(p)] + seeds)):
                path = cache / f"{_unit_key(p, s, seed, options, codes[s])}.json" if cache else None
                unit = _cached(path, n) if path else None
                if unit is None:
                    todo.append(((p, s, seed, n, options), i))
                    paths[len(todo) - 1] = path
                results[(p, display_name(s, label))][i] = unit
    meter = suite_report.Progress(results, len(todo), enabled=progress)

    def done(k: int, unit: dict[str, Any]) -> None:
        (p, s, _, _, _), i = todo[k]
        results[(p, display_name(s, label))][i] = unit
        meter.unit_done(p, display_name(s, label))

    replay_units(_run_unit, [job for job, _ in todo], [paths[k] for k in range(len(todo))], jobs, done)
    return results


def replay_units(run: Callable[[Any], dict[str, Any]], jobs_list: Sequence[Any], paths: Sequence[Path | None],
                 jobs: int, done: Callable[[int, dict[str, Any]], None]) -> None:
    """run(job) for each job (inline for `jobs` <= 1, else in a pool of that many processes;
    `run` must be a module-level function), each unit stored as JSON at its path as it
    finishes (a reader never sees half a unit), then done(index, unit)."""
    def finish(k: int, unit: dict[str, Any]) -> None:
        if paths[k] is not None:
            paths[k].parent.mkdir(parents=True, exist_ok=True)
            partial = paths[k].with_suffix(f".{os.getpid()}.part")
            partial.write_text(json.dumps(unit))
            partial.replace(paths[k])
        done(k, unit)

    if jobs <= 1:
        for k, job in enumerate(jobs_list):
            finish(k, run(job))
    else:
        with ProcessPoolExecutor(jobs) as pool:
            futures = {pool.submit(run, job): k for k, job in enumerate(jobs_list)}
            for future in as_completed(futures):
                finish(futures[future], future.result())


def summarize(results: Results, budgets: Sequence[int] = BUDGETS, **kwargs: Any) -> dict[str, Any]:
    """Per problem and over each split: see the module docstring for every measure (and
    `suite_report.summarize` for the keywords)."""
    return suite_report.summarize(results, budgets, **kwargs)


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common_options(ap, SPLITS, CACHE)
    ap.add_argument("--searchers", nargs="+", choices=SEARCHERS, default=list(DEFAULT_SEARCHERS))
    ap.add_argument("--gp", action="store_true", help="add Optuna's GPSampler (<= 100 trials, slow)")
    ap.add_argument("--budgets", type=int, nargs="+", default=list(BUDGETS))
    args = ap.parse_args(argv)
    _check(ap, args)
    return args


def common_options(ap: argparse.ArgumentParser, splits: Mapping[str, Sequence[str]], cache: Path) -> None:
    """The options every suite runner takes (this one and `benchmarks/mo_suite.py`): which
    problems, seeds and processes, the unit cache, an rnn variant, and whether to write;
    `check_common` checks them."""
    ap.add_argument("--split", default="all", choices=list(splits), help="problems by split (default all)")
    ap.add_argument("--problems", nargs="+", metavar="NAME", help="only these (e.g. hpolib/naval_propulsion)")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--jobs", type=int, default=2, help="worker processes")
    ap.add_argument("--cache", type=Path, default=cache, help=f"unit cache (default {cache})")
    ap.add_argument("--rnn-options", type=_json_object, default=None, metavar="JSON",
                    help="ControllerOptions overrides for the rnn searchers, a JSON object")
    ap.add_argument("--label", help="names the --rnn-options variant in the output")
    ap.add_argument("--no-write", action="store_true", help="leave BENCHMARKS.md and the PNGs alone")


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not JSON ({e}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object, got {text!r}")
    return value


def _check(ap: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Usage errors (exit 2), each naming the option and its value."""
    check_common(ap, args, SPLITS["all"])
    if any(b < 1 for b in args.budgets):
        ap.error(f"--budgets must be >= 1, got {args.budgets}")
    if "gp" in args.searchers and not args.gp:
        ap.error("--searchers gp: GP costs about 0.5 s per suggestion; ask for it with --gp")
    if args.gp and "gp" not in args.searchers:
        args.searchers.append("gp")


def check_common(ap: argparse.ArgumentParser, args: argparse.Namespace, known: Sequence[str]) -> None:
    """Usage errors (exit 2) in the `common_options`, each naming the option and its value;
    `known` are the problems the runner has."""
    for name in ("seeds", "jobs"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.rnn_options is not None:
        if not args.label:
            ap.error("--rnn-options needs --label (the variant's name in the output)")
        from controller import ControllerOptions
        try:
            ControllerOptions.create(**args.rnn_options)
        except (ValueError, TypeError) as e:
            ap.error(f"--rnn-options: {e}")
    unknown = [p for p in args.problems or () if p not in known]
    if unknown:
        ap.error(f"--problems: unknown {', '.join(unknown)}; choose from {', '.join(known)}")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    problems = [p for p in problem_names(args.split) if not args.problems or p in args.problems]
    if not problems:
        print(f"error: --problems {' '.join(args.problems)} has none in --split {args.split}", file=sys.stderr)
        return 2
    t0 = time.time()
    results = run_suite(problems, args.searchers, args.seeds, max(args.budgets), args.jobs, args.cache,
                        args.rnn_options, args.label)
    summary = summarize(results, sorted(args.budgets))
    command = report.command(["benchmarks/suite.py", *(sys.argv[1:] if argv is None else argv)])
    text = suite_report.markdown(summary, command, args.seeds, time.time() - t0)
    publish(args, text, lambda outdir: suite_report.plot(summary, outdir), suite_report.SECTION)
    return 0


def publish(args: argparse.Namespace, text: str, plot: Callable[[Path], list[Path]], section: str) -> None:
    """Print a runner's markdown; unless --no-write or an --rnn-options variant, draw its plots
    under docs/images/ and write it as its BENCHMARKS.md section."""
    print(text)
    if args.no_write or args.rnn_options is not None:
        print("(BENCHMARKS.md and docs/images left alone: "
              + ("--no-write)" if args.no_write else "a --rnn-options variant is not the shipped defaults)"),
              file=sys.stderr)
        return
    for path in plot(ROOT / "docs" / "images"):
        print(f"wrote {path.relative_to(ROOT)}", file=sys.stderr)
    report.write_section(section, text)
    print(f"wrote BENCHMARKS.md ({section} section)", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
