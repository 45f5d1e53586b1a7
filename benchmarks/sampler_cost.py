"""Suggestion cost of `ControllerSampler` against Optuna's TPE and random samplers.

    python benchmarks/sampler_cost.py [--repeats 7] [--trials 200] [--problems ...] [--no-write]

Every repeat runs one `--trials`-trial study per (problem, sampler) in this one process, the
samplers interleaved (their order rotates with the repeat), so a busy machine slows all of
them alike and the ratio to TPE stays comparable. Samplers: `ControllerSampler(seed=r)` with
its defaults, `TPESampler(seed=r)` and `RandomSampler(seed=r)` (Optuna's defaults otherwise),
in repeat r. Problems (all cheap to evaluate, so the time is the sampler's and Optuna's):

- `char_lm_table`: the stored char_lm table (`benchmarks/data`), define-by-run with each
  slot suggested as `benchmarks/sampler_replay.py` does (categorical, int and float), a
  lookup per trial; a diverged config (inf) is a failed trial;
- `mixed`: float, log float, log int, stepped int, categorical, and a float that only exists
  for one category (Optuna samples it independently); a NaN value (a failed trial) past x > 4.5;
- `categorical`: six 4-way categorical choices, a float and a log int.

Before timing, each sampler runs a 5-trial study per problem: one-off costs (imports, torch's
lazy set-up of its optimisers on the first controller of a process, reported on its own line)
are not spread over the trials. Reported per problem and sampler: wall-clock and CPU (this
process, all threads) ms per trial, median over repeats [min, max]; the CPU ms per trial
spent inside the controller's own `ask` and `tell` (so the sampler's share shows); and the
median over repeats of the ratio to TPE's time in the same repeat. Writes the `sampler_cost` section of
BENCHMARKS.md unless `--no-write`; `--json` keeps the raw timings.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import optuna  # noqa: E402
import torch  # noqa: E402

from benchmarks.report import command, header, write_section  # noqa: E402
from controller import Controller  # noqa: E402
from hyperseq.sampler import ControllerSampler  # noqa: E402

SECTION = "sampler_cost"
SAMPLERS: dict[str, Callable[[int], optuna.samplers.BaseSampler]] = {
    "ControllerSampler": lambda seed: ControllerSampler(seed=seed),
    "TPESampler": lambda seed: optuna.samplers.TPESampler(seed=seed),
    "RandomSampler": lambda seed: optuna.samplers.RandomSampler(seed=seed),
}
TARGET = {"a": "w", "b": "x", "c": "y", "d": "z", "e": "w", "f": "x"}


def mixed(trial: optuna.Trial) -> float:
    """Minimum 0 at x=1, n=16, k=8, cell=lstm, dropout=0, lr=1e-3; NaN (a failed trial) past x=4.5."""
    x = trial.suggest_float("x", -5.0, 5.0)
    n = trial.suggest_int("n", 1, 64, log=True)
    k = trial.suggest_int("k", 0, 20, step=2)
    cell = trial.suggest_categorical("cell", ["rnn", "gru", "lstm"])
    extra = trial.suggest_float("dropout", 0.0, 0.5) if cell == "lstm" else 0.0
    lr = trial.suggest_float("lr", 1e-5, 1e-1, log=True)
    if x > 4.5:
        return math.nan
    return abs(x - 1) + abs(math.log2(n / 16)) + abs(k - 8) / 4 + (cell != "lstm") * 2 + extra \
        + abs(math.log10(lr) + 3)


def categorical(trial: optuna.Trial) -> float:
    """Six 4-way categorical choices, one right each, plus a float and a log int (minimum 0)."""
    wrong = sum(trial.suggest_categorical(k, ["w", "x", "y", "z"]) != v for k, v in TARGET.items())
    x = trial.suggest_float("x", 0.0, 1.0)
    n = trial.suggest_int("n", 1, 64, log=True)
    return wrong + abs(x - 0.7) + abs(n - 16) / 16


Runner = Callable[[optuna.samplers.BaseSampler, int], None]     # one study: (sampler, trials)


def run_objective(objective: Callable[[optuna.Trial], float]) -> Runner:
    def run(sampler: optuna.samplers.BaseSampler, trials: int) -> None:
        optuna.create_study(sampler=sampler).optimize(objective, n_trials=trials)
    return run


def run_table() -> Runner:
    """The char_lm table, each slot suggested as `benchmarks/sampler_replay.py` suggests it."""
    from benchmarks.sampler_replay import slot_index, suggest_grid
    from benchmarks.tabular import Table
    table = Table.load()
    space = table.space

    def objective(trial: optuna.Trial) -> float:
        config: dict[str, Any] = {}
        for slot in space.slots:
            if space.is_active(slot, {k: slot_index(space, k, v) for k, v in config.items()}):
                config[slot.key] = (suggest_grid(trial, slot, False) if slot.numeric_grid
                                    else trial.suggest_categorical(slot.key, list(slot.choices)))
        value = table.lookup(config)
        return value if math.isfinite(value) else math.nan     # diverged: a failed trial

    def run(sampler: optuna.samplers.BaseSampler, trials: int) -> None:
        direction = "minimize" if space.mode == "min" else "maximize"
        optuna.create_study(direction=direction, sampler=sampler).optimize(objective, n_trials=trials)
    return run


PROBLEMS: dict[str, Callable[[], Runner]] = {
    "char_lm_table": run_table,
    "mixed": lambda: run_objective(mixed),
    "categorical": lambda: run_objective(categorical),
}


@contextlib.contextmanager
def controller_clock() -> Iterator[list[float]]:
    """CPU seconds spent inside `Controller.ask` and `Controller.tell` while open: for the
    ControllerSampler rows, what the controller itself costs; the rest is the sampler's and
    Optuna's (and the objective's, the same for every sampler)."""
    spent = [0.0]
    originals = {name: getattr(Controller, name) for name in ("ask", "tell")}

    def clocked(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[0] += time.process_time() - start
        return wrapper

    for name, fn in originals.items():
        setattr(Controller, name, clocked(fn))
    try:
        yield spent
    finally:
        for name, fn in originals.items():
            setattr(Controller, name, fn)


def timed(run: Runner, sampler: optuna.samplers.BaseSampler, trials: int) -> tuple[float, float, float]:
    """(wall ms, CPU ms, CPU ms inside the controller's ask and tell) per trial of one study."""
    with controller_clock() as in_controller:
        wall, cpu = time.perf_counter(), time.process_time()
        run(sampler, trials)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return 1e3 * wall / trials, 1e3 * cpu / trials, 1e3 * in_controller[0] / trials


def measure(problems: list[str], samplers: list[str], repeats: int, trials: int,
            progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Raw timings: result["runs"][problem][sampler] = [[wall, CPU, CPU in the controller]
    ms per trial, one per repeat]."""
    start = time.perf_counter()
    ControllerSampler(seed=0)                      # the first controller of this process
    first = time.perf_counter() - start
    runners = {p: PROBLEMS[p]() for p in problems}
    for p, run in runners.items():                 # warm-up, not timed
        for s in samplers:
            run(SAMPLERS[s](10_000), 5)
    runs: dict[str, dict[str, list[list[float]]]] = {p: {s: [] for s in samplers} for p in problems}
    load = [os.getloadavg()[0]]
    for r in range(repeats):
        for p, run in runners.items():
            for s in samplers[r % len(samplers):] + samplers[:r % len(samplers)]:
                wall, cpu, inside = timed(run, SAMPLERS[s](r), trials)
                runs[p][s].append([wall, cpu, inside])
                progress(f"repeat {r + 1}/{repeats} {p:14s} {s:18s} "
                         f"wall {wall:7.2f} ms/trial  cpu {cpu:7.2f} ms/trial")
    load.append(os.getloadavg()[0])
    return {"trials": trials, "repeats": repeats, "first_sampler_s": first, "load_1min": load,
            "torch_threads": torch.get_num_threads(), "optuna": optuna.__version__,
            "torch": torch.__version__, "runs": runs}


def summary(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (problem, sampler): medians over repeats and the paired ratio to TPE."""
    rows = []
    for p, by_sampler in result["runs"].items():
        tpe = by_sampler.get("TPESampler")
        for s, runs in by_sampler.items():
            row: dict[str, Any] = {"problem": p, "sampler": s}
            for i, kind in enumerate(("wall", "cpu")):
                values = [run[i] for run in runs]
                row[kind] = (statistics.median(values), min(values), max(values))
                row[f"{kind}_ratio"] = (statistics.median(run[i] / t[i] for run, t in zip(runs, tpe))
                                        if tpe else math.nan)
            row["controller_cpu"] = statistics.median(run[2] for run in runs) if len(runs[0]) > 2 else 0.0
            rows.append(row)
    return rows


def markdown(result: dict[str, Any], rows: list[dict[str, Any]], cmd: str) -> str:
    load = ", ".join(f"{v:.1f}" for v in result["load_1min"])
    lines = ["## Sampler suggestion cost (ControllerSampler vs TPE and random, through Optuna)", "",
             header(cmd),
             f"{result['repeats']} repeats x {result['trials']}-trial studies per problem and sampler, "
             "interleaved in one process (optuna " + result["optuna"] + ", torch " + result["torch"]
             + f", {result['torch_threads']} torch threads); 1-minute load average {load} (start, end). "
             "ms per trial: median over repeats [min, max]; ratio: median over repeats of the time "
             "over TPESampler's in the same repeat. The first controller of a process costs "
             f"{result['first_sampler_s']:.2f} s once (torch sets up its optimisers), outside these figures.",
             "",
             "'In the controller': CPU ms per trial inside `Controller.ask` and `Controller.tell` "
             "(the policy's draws, the reward model's fit, the policy updates); the rest of a "
             "ControllerSampler trial is the sampler's, Optuna's and the objective's.",
             "", "| problem | sampler | wall ms/trial | CPU ms/trial | in the controller "
             "| wall / TPE | CPU / TPE |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        cells = [f"{r[k][0]:.2f} [{r[k][1]:.2f}, {r[k][2]:.2f}]" for k in ("wall", "cpu")]
        inside = f"{r['controller_cpu']:.2f}" if r["controller_cpu"] else "-"
        lines.append(f"| {r['problem']} | {r['sampler']} | {cells[0]} | {cells[1]} | {inside} | "
                     f"{r['wall_ratio']:.2f}x | {r['cpu_ratio']:.2f}x |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7, help="studies per (problem, sampler); default 7")
    ap.add_argument("--trials", type=int, default=200, help="trials per study; default 200")
    ap.add_argument("--problems", nargs="+", default=list(PROBLEMS), metavar="PROBLEM",
                    help=f"any of {', '.join(PROBLEMS)} (default: all)")
    ap.add_argument("--json", type=Path, help="also write the raw timings here")
    ap.add_argument("--no-write", action="store_true", help="only print; leave BENCHMARKS.md alone")
    args = ap.parse_args(argv)
    for name in ("repeats", "trials"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    unknown = [p for p in args.problems if p not in PROBLEMS]
    if unknown:
        ap.error(f"--problems: unknown {', '.join(unknown)} (choose from {', '.join(PROBLEMS)})")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    result = measure(list(dict.fromkeys(args.problems)), list(SAMPLERS), args.repeats, args.trials)
    rows = summary(result)
    text = markdown(result, rows, command(None if argv is None else ["benchmarks/sampler_cost.py", *argv]))
    print(text)
    if args.json:
        args.json.write_text(json.dumps({**result, "summary": rows}, indent=2))
    if not args.no_write:
        write_section(SECTION, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
