"""Replay `ControllerSampler` through Optuna against the char_lm table, beside the controller.

    python benchmarks/sampler_replay.py [--seeds 20] [--trials 200] [--budgets 25 50 100 200] [--write]

Both searchers are driven by `benchmarks.tabular.replay` (one ask, one table lookup, one tell
per trial) over the same seeds:

- `controller`: `controller.Controller` ask(1) / tell([config], [exp(-val_loss)]);
- `sampler`: an Optuna study (ask/tell interface, define-by-run) with
  `ControllerSampler(seed=seed)` and default options; categorical decisions are
  `suggest_categorical`, an integer grid `suggest_int(low, high, step)`, another numeric grid
  `suggest_float` over the grid widened by half a cell at each end (in log space for a log
  grid), snapped to the nearest grid value, so each grid value has the same prior mass;
- `sampler, grid index`: the same, but a float grid is `suggest_int` over grid indices, so the
  sampler's slots are exactly the controller's;
- `controller, other seeds`: the controller again on the next `--seeds` seeds, the yardstick
  for "within noise" (two runs of one searcher differ this much by seed alone).

Reports median regret [q1, q3] at each budget, how many seeds reached the table's top 1% and
the median trials to get there, and a two-sided permutation test of each sampler's mean regret
against the controller's (seeds are not paired: the RNG streams differ). Prints a table last;
`--write` updates the "sampler-replay" section of BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import optuna  # noqa: E402
import torch  # noqa: E402

from benchmarks.tabular import Table, replay, summarize  # noqa: E402
from controller import Controller  # noqa: E402
from hyperseq.sampler import ControllerSampler  # noqa: E402
from search_spaces import SearchSpace, Slot  # noqa: E402


class ControllerReplay:
    """The controller's own ask/tell, rewarded exp(-metric) (a diverged child gets 0)."""

    def __init__(self, space: SearchSpace, seed: int) -> None:
        self.ctrl = Controller(space, seed=seed)

    def ask(self) -> dict[str, Any]:
        return self.ctrl.ask(1)[0]

    def tell(self, config: dict[str, Any], metric: float | None) -> None:
        self.ctrl.tell([config], [None if metric is None else math.exp(-metric)])


def suggest_grid(trial: optuna.Trial, slot: Slot, index: bool) -> Any:
    """A numeric grid slot as Optuna's own int/float suggestion, mapped to a grid value."""
    grid = list(slot.choices)
    if index:
        return grid[trial.suggest_int(slot.key, 0, len(grid) - 1)]
    if all(isinstance(v, int) for v in grid) and len({b - a for a, b in zip(grid, grid[1:])}) == 1:
        return trial.suggest_int(slot.key, grid[0], grid[-1], step=grid[1] - grid[0])
    f = math.log if slot.log else (lambda v: v)
    points = [f(v) for v in grid]
    half = (points[-1] - points[0]) / (len(points) - 1) / 2
    low, high = points[0] - half, points[-1] + half
    if slot.log:
        low, high = math.exp(low), math.exp(high)
    value = f(trial.suggest_float(slot.key, low, high, log=slot.log))
    return grid[min(range(len(grid)), key=lambda i: abs(points[i] - value))]


class SamplerReplay:
    """`ControllerSampler` through an Optuna study, define-by-run over the table's space."""

    def __init__(self, space: SearchSpace, seed: int, index: bool = False) -> None:
        direction = "minimize" if space.mode == "min" else "maximize"
        self.study = optuna.create_study(direction=direction, sampler=ControllerSampler(seed=seed))
        self.space, self.index, self.pending = space, index, None

    def ask(self) -> dict[str, Any]:
        trial, config = self.study.ask(), {}
        for slot in self.space.slots:
            if not self.space.is_active(slot, {k: slot_index(self.space, k, v) for k, v in config.items()}):
                continue
            config[slot.key] = (suggest_grid(trial, slot, self.index) if slot.numeric_grid
                                else trial.suggest_categorical(slot.key, list(slot.choices)))
        self.pending = trial
        return config

    def tell(self, config: dict[str, Any], metric: float | None) -> None:
        state = optuna.trial.TrialState.FAIL if metric is None else None
        self.study.tell(self.pending, None if metric is None else metric, state=state)


def slot_index(space: SearchSpace, key: str, value: Any) -> int:
    slot = next(s for s in space.slots if s.key == key)
    return list(slot.choices).index(value)


def permutation_p(a: list[float], b: list[float], rounds: int = 5000, seed: int = 0) -> float:
    """Two-sided p-value of |mean(a) - mean(b)| under random relabelling."""
    rng, pooled, observed = random.Random(seed), a + b, abs(statistics.mean(a) - statistics.mean(b))
    hits = 0
    for _ in range(rounds):
        rng.shuffle(pooled)
        hits += abs(statistics.mean(pooled[:len(a)]) - statistics.mean(pooled[len(a):])) >= observed - 1e-12
    return (hits + 1) / (rounds + 1)


def markdown(table: Table, summary: dict, pvalues: dict, budgets: list[int], seeds: int,
             seconds: dict[str, float], cmd: str) -> str:
    from benchmarks.report import header
    lines = ["## Optuna sampler: the controller driven through Optuna", "", header(cmd),
             "Replay time: " + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items()) + ".", "",
             f"char_lm table: {len(table.metric)} configs, best val_loss {table.best:.4f}, "
             f"top 1% threshold {table.top_fraction(0.01):.4f}; {seeds} seeds; "
             "median regret [q1, q3] (nats/char); p: permutation test of mean regret vs controller.", "",
             "| searcher | " + " | ".join(f"{b} trials" for b in budgets) + " | top 1% reached | median trials to top 1% |",
             "| --- | " + " | ".join("---" for _ in budgets) + " | --- | --- |"]
    for name, s in summary.items():
        cells = [f"{s[b]['median']:.4f} [{s[b]['q1']:.4f}, {s[b]['q3']:.4f}]"
                 + (f" p={pvalues[name][b]:.2f}" if name in pvalues else "") for b in budgets]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {s['top1pct_reached']} | {s['top1pct_median_trials']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--budgets", type=int, nargs="+", default=[25, 50, 100, 200])
    ap.add_argument("--write", action="store_true", help="update the section in BENCHMARKS.md")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    table = Table.load()
    diverged = sum(not math.isfinite(v) for v in table.metric.values())
    print(f"table: {len(table.metric)} configs, {diverged} diverged (inf)", flush=True)
    makers = {"controller": lambda seed: ControllerReplay(table.space, seed),
              "sampler": lambda seed: SamplerReplay(table.space, seed),
              "sampler, grid index": lambda seed: SamplerReplay(table.space, seed, index=True),
              "controller, other seeds": lambda seed: ControllerReplay(table.space, seed + args.seeds)}
    curves, seconds = {}, {}
    for name, make in makers.items():
        start = time.perf_counter()
        curves[name] = [replay(table, make(seed), args.trials) for seed in range(args.seeds)]
        seconds[name] = time.perf_counter() - start
        print(f"{name}: {seconds[name]:.1f} s", flush=True)
    summary = {name: summarize(table, cs, args.budgets) for name, cs in curves.items()}
    sign = 1 if table.space.mode == "min" else -1
    regret = {name: {b: [sign * (c[b - 1] - table.best) for c in cs] for b in args.budgets}
              for name, cs in curves.items()}
    pvalues = {name: {b: permutation_p(regret[name][b], regret["controller"][b]) for b in args.budgets}
               for name in curves if name != "controller"}
    cmd = "python benchmarks/sampler_replay.py" + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    text = markdown(table, summary, pvalues, args.budgets, args.seeds, seconds, cmd)
    if args.write:
        from benchmarks.report import write_section
        write_section("sampler-replay", text)
    print(text)


if __name__ == "__main__":
    main()
