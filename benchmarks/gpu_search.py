"""Quality found: a char_lm search within a fixed wall budget on one device.

    python benchmarks/gpu_search.py [--device auto] [--minutes 8] [--slots 16]
                                    [--searchers rnn random] [--out search.json] [--write]
    python benchmarks/gpu_search.py --from search.json --write       # render a stored result

A single-process search that needs only torch (and PyYAML for a space file): children are
packed on the one device as `--slots` worker processes (one CPU thread each), shared evenly by
the searchers, which run side by side under the same budget. It measures what a searcher finds
in a fixed amount of device time, so every searcher gets the same slots and the same clock.
Two phases:

1. explore (`--explore-fraction` of the budget): each searcher asks for configs of `--space`
   (built-in char_lm by default) and runs asynchronous successive halving over them
   (`--schedule asha`, the default: rungs at 1, 3, 9, ... epochs of `--explore-steps` up to
   `--explore-epochs`, or with `--rung-seconds S` 1, 3, 9, ... x S seconds of training; the
   top third of a rung is trained again for the next rung's budget);
   each finished rung is told back as a rank within its rung (`hyperseq.schedulers.rungs`;
   diverged -> the bottom, crashed -> no reward). `--schedule none`: every child trains
   `--explore-epochs` epochs. No trial is started that would not finish an epoch before the
   phase ends; one still running at the end is cut and not counted.
2. final (the rest of the budget): each searcher's `--final-top` best explored configs (highest
   rung first, then val_loss; a tie at the top rung goes to the config fastest per step,
   `ranked_configs`), and the task's default config as the reference, train for up to
   `--final-epochs` x `--final-steps` (or until the budget ends) and are scored on the whole
   validation split. With `--final-race F` a searcher's finalists race (`Race`): at F of the
   final's budget only its best so far trains on. All finals train at once (the pool has a
   process for each, even beyond `--slots`), so every final, the default's included, gets the
   same share of the device.

Reports the best final val_loss (nats/char) per searcher against the default config and two
references on the same character-level Shakespeare: nanoGPT's shakespeare-char transformer
and a hand-tuned 2x512 LSTM. Prints a table last; `--out` writes JSON (every trial);
`--write` updates the device kind's section of BENCHMARKS.md ("search-quality-cpu" or
"search-quality-cuda") and plots best-so-far val_loss vs time.
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FULL_VAL = 1 << 30  # eval_chars above the val split's length: score on all of it
TIE_NATS = 0.03     # top-rung val_loss differences below this are noise: two runs of one config differ by as much


class Race:
    """The final's race: each searcher's finalists train side by side from the final's start, and
    at a fraction of its wall budget only the one with the best val_loss so far keeps training.

    A short explore rung can favour a rate too high for a long run (a loss spike) or a config so
    slow per step that it trains a fraction of a fast one's epochs; racing at the final's own
    length catches both. Processes talk through files in one directory (the pool's workers are
    spawned; the race is decided in the driver): a finalist writes its best val_loss after every
    epoch and stops at the first epoch end after its stop file appears. A finalist that has not
    finished an epoch by the decision counts as infinitely bad: configs are compared at equal
    wall time. Picklable, so each finalist's process gets its own handle on the directory."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def report(self, member: str, best: float) -> None:
        """Finalist side: its best val_loss so far (written whole, then renamed into place)."""
        tmp = self.root / f".{member}.{os.getpid()}"
        tmp.write_text(json.dumps(best if math.isfinite(best) else None))
        tmp.replace(self.root / f"{member}.best")

    def stopped(self, member: str) -> bool:
        """Finalist side: whether it lost the race."""
        return (self.root / f"{member}.stop").exists()

    def best(self, member: str) -> float:
        path = self.root / f"{member}.best"
        value = json.loads(path.read_text()) if path.exists() else None
        return math.inf if value is None else value

    def decide(self, groups: dict[str, list[str]]) -> dict[str, dict]:
        """Driver side: in every group of finalists keep the best so far, stop the rest.
        Returns each group's standings ({member: best}, None for no finite best: strict JSON)
        and the member kept."""
        outcome = {}
        for name, members in groups.items():
            bests = {m: self.best(m) for m in members}
            kept = min(members, key=lambda m: (bests[m], members.index(m)))
            for m in members:
                if m != kept:
                    (self.root / f"{m}.stop").touch()
            outcome[name] = {"standings": {m: b if math.isfinite(b) else None for m, b in bests.items()},
                             "kept": kept}
        return outcome

    def run_until(self, at: float, groups: dict[str, list[str]]) -> dict[str, dict]:
        """Wait until wall-clock time `at`, then decide the groups with more than one finalist."""
        time.sleep(max(0.0, at - time.time()))
        return {"at": time.time(), "groups": self.decide({n: ms for n, ms in groups.items() if len(ms) > 1})}


def _init_worker() -> None:
    import torch
    torch.set_num_threads(1)


def train_child(config: dict, epochs: int, steps: int, device: str, deadline: float,
                seed: int, budget_s: float | None = None, final: bool = False,
                race: tuple[Race, str] | None = None) -> dict[str, Any]:
    """Train until `epochs`, `budget_s` seconds of its own (a completed rung) or `deadline` (a
    cut trial, or the end of a `final` run), checked between epochs; keep the best epoch.
    With `lr_schedule: cosine` the rate decays over the run's own budget: its epochs, its
    `budget_s`, or for a final the time left until `deadline`. A finalist in a `race` (the
    race and its name in it) reports its best after each epoch and ends "halved" once it lost."""
    from tasks import get_task
    start, best, curve = time.time(), math.inf, []
    config = annealed(config, budget_s, deadline - start if final else None)
    try:
        for m in get_task("char_lm").train({**config, "steps_per_epoch": steps}, epochs=epochs,
                                           device=device, seed=seed):
            curve.append(m["val_loss"])
            if m["diverged"]:
                return {"status": "diverged", "val_loss": math.inf, "curve": curve,
                        "seconds": time.time() - start}
            best = min(best, m["val_loss"])
            if race is not None:
                race[0].report(race[1], best)
                if race[0].stopped(race[1]):
                    return {"status": "halved", "val_loss": best, "curve": curve, "seconds": time.time() - start}
            if budget_s is not None and time.time() - start >= budget_s:
                break
            if time.time() >= deadline and len(curve) < epochs:
                return {"status": "cut", "val_loss": best, "curve": curve, "seconds": time.time() - start}
    except Exception as e:  # noqa: BLE001 - a crash (e.g. out of memory) is a result, not the end
        return {"status": "crashed", "error": f"{type(e).__name__}: {e}", "val_loss": None,
                "curve": curve, "seconds": time.time() - start}
    return {"status": "done", "val_loss": best, "curve": curve, "seconds": time.time() - start}


def annealed(config: dict, budget_s: float | None, left_s: float | None) -> dict:
    """`config` with a cosine schedule's horizon in seconds when the run is bounded by time (a
    rung of `budget_s` seconds, or a final with `left_s` seconds until the deadline); a run
    bounded by steps, or without a cosine schedule, is left as it is."""
    if config.get("lr_schedule") != "cosine" or not (budget_s or left_s is not None):
        return config
    return {**config, "lr_horizon_s": budget_s or max(1.0, left_s)}


class Rungs:
    """Asynchronous successive halving (ASHA) over one searcher's trials, without checkpoints:
    a promoted config trains again from scratch for the next rung's budget. A trial is told to
    its searcher whenever it completes a rung, as a rank within that rung
    (`hyperseq.schedulers.rungs`: a trial that reached a higher rung beats every trial stopped
    below it). A rung's budget is epochs, or with `rung_seconds` that many seconds per
    milestone: fidelity in wall time, as the final phase spends it (ASHA's `time_attr`), so a
    config that learns well per step but is slow per step is not mistaken for a fast learner."""

    def __init__(self, epochs: int, asha: bool, rung_seconds: float = 0.0) -> None:
        from hyperseq.schedulers.rungs import RungRanks, milestones
        self.rung_seconds = rung_seconds
        self.epochs = milestones(epochs) if asha else [epochs]
        self.ranks = RungRanks(epochs) if asha else None
        self.results: dict[int, list[dict]] = {i: [] for i in range(len(self.epochs))}
        self.promoted: set[int] = set()               # ids of trials already promoted

    def promotion(self) -> dict | None:
        """A finished trial in the top third of its rung (highest rung first), if any."""
        for i in reversed(range(len(self.epochs) - 1)):
            done = sorted((t for t in self.results[i] if t["status"] == "done" and math.isfinite(t["val_loss"])),
                          key=lambda t: t["val_loss"])
            for t in done[: len(self.results[i]) // 3]:
                if id(t) not in self.promoted:
                    self.promoted.add(id(t))
                    return {"config": t["config"], "rung": i + 1}
        return None

    def reward(self, trial: dict) -> float | None:
        """What the searcher is told for a trial that completed its rung."""
        if trial["status"] == "crashed":
            return None
        value = 0.0 if trial["status"] == "diverged" else math.exp(-trial["val_loss"])
        if self.ranks is None:
            return value
        epochs = self.epochs[trial["rung"]]
        self.ranks.observe(str(id(trial)), epochs, value)
        return self.ranks.reward(epochs, value)

    def budget(self, rung: int) -> tuple[int, float | None]:
        """(epochs, seconds) a trial at `rung` trains for."""
        if self.rung_seconds:
            return 1 << 20, self.epochs[rung] * self.rung_seconds
        return self.epochs[rung], None


def _start(pool: ProcessPoolExecutor, name: str, searcher: Any, rungs: Rungs, args: argparse.Namespace,
           fixed: dict, device: str, deadline: float, seed: int) -> tuple[Future, dict] | None:
    """Start a promoted trial or a new one; None once the searcher has nothing left to propose
    (a searcher that never repeats a config, over a small space it has exhausted)."""
    job = rungs.promotion() or {"config": searcher.ask(), "rung": 0}
    if job["config"] is None:
        return None
    epochs, seconds = rungs.budget(job["rung"])
    fut = pool.submit(train_child, {**job["config"], **fixed}, epochs, args.explore_steps,
                      device, deadline, seed, seconds)
    return fut, {"searcher": name, **job}


def _median_epoch_s(trials: list[dict]) -> float:
    durations = [t["seconds"] / max(1, len(t["curve"])) for t in trials if t["status"] == "done"]
    return statistics.median(durations) if durations else 0.0


def explore(pool: ProcessPoolExecutor, searchers: dict[str, Any], slots: int, args: argparse.Namespace,
            fixed: dict, device: str, t0: float, deadline: float) -> list[dict[str, Any]]:
    """Keep every searcher's share of the slots busy until the phase ends; ask/tell as results come."""
    share = {name: slots // len(searchers) + (i < slots % len(searchers)) for i, name in enumerate(searchers)}
    rungs = {name: Rungs(args.explore_epochs, args.schedule == "asha", args.rung_seconds) for name in searchers}
    running: dict[Future, dict] = {}
    trials: list[dict] = []
    seeds = itertools.count()                       # one child seed per trial
    spent: set[str] = set()                         # searchers that had nothing left to propose
    while True:
        shortest = args.rung_seconds or _median_epoch_s(trials)      # a new trial's least time
        for name, searcher in searchers.items():
            while name not in spent and sum(r["searcher"] == name for r in running.values()) < share[name] \
                    and time.time() + shortest < deadline:
                started = _start(pool, name, searcher, rungs[name], args, fixed, device, deadline, next(seeds))
                if started is None:
                    spent.add(name)
                    break
                running[started[0]] = {**started[1], "start": time.time() - t0}
        if not running:
            return trials
        done, _ = wait(running, timeout=max(1.0, deadline - time.time()), return_when=FIRST_COMPLETED)
        for fut in done:
            trial = {**running.pop(fut), **fut.result(), "end": time.time() - t0}
            trials.append(trial)
            if trial["status"] != "cut":
                rungs[trial["searcher"]].results[trial["rung"]].append(trial)
                searchers[trial["searcher"]].inner.tell(trial["config"], rungs[trial["searcher"]].reward(trial))
            print(f"[{trial['end']:6.0f}s] {trial['searcher']:>6} rung {trial['rung']} {trial['status']:>8} "
                  f"val_loss {trial['val_loss'] if trial['val_loss'] is not None else 'n/a'}", flush=True)


def ranked_configs(trials: list[dict], name: str, top: int) -> list[dict]:
    """A searcher's `top` distinct configs for the final: highest rung first, then val_loss.
    Top-rung results within TIE_NATS of the best are a tie (two runs of one config differed by
    that much), broken by time per step: the fastest of them trains the most steps in the
    final's wall budget."""
    done = [t for t in trials if t["searcher"] == name and t["status"] == "done" and math.isfinite(t["val_loss"])]
    ranked = sorted(done, key=lambda t: (-t.get("rung", 0), t["val_loss"]))
    if ranked:
        tied = [t for t in ranked if t.get("rung", 0) == ranked[0].get("rung", 0)
                and t["val_loss"] <= ranked[0]["val_loss"] + TIE_NATS]
        fastest = min(tied, key=lambda t: t["seconds"] / max(1, len(t["curve"])))
        ranked = [fastest, *(t for t in ranked if t is not fastest)]
    seen: list[dict] = []
    for t in ranked:
        if t["config"] not in seen and len(seen) < top:
            seen.append(t["config"])
    return seen


def finals(pool: ProcessPoolExecutor, trials: list[dict], searchers: list[str], args: argparse.Namespace,
           fixed: dict, device: str, deadline: float) -> tuple[list[dict[str, Any]], dict | None]:
    """Each searcher's top configs and the default config, trained long and scored on all of val;
    with `--final-race F`, each searcher's finalists race (`Race`) and at F of the final's
    wall budget only its best so far trains on. Returns the finals and the race's outcome."""
    picks: list[tuple[str, str, dict]] = [("default", "default-0", {})]
    for name in searchers:
        picks += [(name, f"{name}-{i}", c) for i, c in enumerate(ranked_configs(trials, name, args.final_top))]
    with tempfile.TemporaryDirectory(prefix="final_race_") as root:
        race = Race(Path(root)) if args.final_race else None
        start = time.time()
        futures = [(name, member, config, pool.submit(
            train_child, {**config, **fixed, "eval_chars": FULL_VAL}, args.final_epochs, args.final_steps,
            device, deadline, 0, None, True, (race, member) if race else None)) for name, member, config in picks]
        outcome = None
        if race is not None:
            groups = {n: [m for n2, m, _ in picks if n2 == n] for n in searchers}
            outcome = race.run_until(start + args.final_race * (deadline - start), groups)
            outcome["at"] -= start
        return [{"searcher": name, "member": member, "config": config, **fut.result()}
                for name, member, config, fut in futures], outcome


def _rnn_options(searchers: dict[str, Any]) -> dict[str, Any] | None:
    """The controller's options for this run, stored with the result so it stays readable after
    the defaults change."""
    from dataclasses import asdict
    rnn = searchers.get("rnn")
    return None if rnn is None else asdict(rnn.inner.controller.options)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from datetime import datetime, timezone
    from benchmarks.report import command, machine, parse_variant
    from benchmarks.tabular import SEARCHERS
    from search_spaces import load_space
    from tasks.base import resolve_device
    import multiprocessing as mp
    device = str(resolve_device(args.device))
    space = load_space(args.space)
    searchers = {name: SEARCHERS[name](space, args.seed) for name in args.searchers}
    fixed = parse_variant(":" + args.fixed)[1]
    if set(fixed) & set(space.keys):
        raise SystemExit(f"--fixed {args.fixed}: {sorted(set(fixed) & set(space.keys))} are searched "
                         f"by the space {args.space}; fix only other settings")
    budget = args.minutes * 60
    t0 = time.time() - (args.explore_fraction * budget if args.final_only else 0)
    workers = max(args.slots, 1 + args.final_top * len(searchers))     # explore uses `slots` of them
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_init_worker) as pool:
        trials = json.loads(args.final_only.read_text())["trials"] if args.final_only else \
            explore(pool, searchers, args.slots, args, fixed, device, t0, t0 + args.explore_fraction * budget)
        final, race = finals(pool, trials, list(searchers), args, fixed, device, t0 + budget)
    return {"command": command(), "machine": machine(), "date": str(datetime.now(timezone.utc).date()),
            "device": device, "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "searchers": list(searchers), "trials": trials, "finals": final, "final_race": race,
            "wall_s": time.time() - t0,
            "rnn_options": _rnn_options(searchers)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    ap.add_argument("--minutes", type=float, default=8.0, help="wall budget for both phases")
    ap.add_argument("--slots", type=int, default=16, help="children trained at once on the device")
    ap.add_argument("--searchers", nargs="+", default=["rnn", "random"], choices=["rnn", "random", "tpe"],
                    help="tpe needs Optuna installed")
    ap.add_argument("--space", default="char_lm", help="built-in space name or YAML path")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fixed", default="", metavar="K=V,...",
                    help="settings added to every child, e.g. batch_size=16,embed=32 (final eval_chars excepted)")
    ap.add_argument("--explore-fraction", type=float, default=0.6)
    ap.add_argument("--explore-epochs", type=int, default=3, help="epochs of the top rung")
    ap.add_argument("--schedule", choices=["asha", "none"], default="asha",
                    help="asha: rungs at 1, 3, 9, ... epochs, the top third promoted; none: every "
                         "child trains --explore-epochs")
    ap.add_argument("--explore-steps", type=int, default=100)
    ap.add_argument("--rung-seconds", type=float, default=0.0,
                    help="rungs of seconds, not epochs: a rung's milestone x this many seconds of "
                         "training (epochs of --explore-steps until then); 0 = rungs count epochs")
    ap.add_argument("--final-top", type=int, default=3)
    ap.add_argument("--final-epochs", type=int, default=30)
    ap.add_argument("--final-steps", type=int, default=100)
    ap.add_argument("--final-race", type=float, default=0.0, metavar="F",
                    help="each searcher's --final-top finalists train side by side until F of the "
                         "final's wall budget, then only the best so far goes on (0: all go on)")
    ap.add_argument("--out", type=Path, help="write the result (every trial) as JSON here")
    ap.add_argument("--final-only", type=Path, metavar="RESULT",
                    help="no explore: take RESULT's trials (same options) and run the final phase again")
    ap.add_argument("--from", dest="src", type=Path, help="render a JSON result instead of searching")
    ap.add_argument("--write", action="store_true", help="update BENCHMARKS.md and the plot")
    args = ap.parse_args()
    if not 0 < args.explore_fraction < 1:
        ap.error(f"--explore-fraction {args.explore_fraction}: must be between 0 and 1")
    if args.rung_seconds < 0:
        ap.error(f"--rung-seconds {args.rung_seconds}: must be >= 0")
    if not 0 <= args.final_race < 1:
        ap.error(f"--final-race {args.final_race}: must be 0 (off) or between 0 and 1")
    if args.slots < len(args.searchers):
        ap.error(f"--slots {args.slots}: need at least one per searcher ({len(args.searchers)})")
    result = json.loads(args.src.read_text()) if args.src else run(args)
    if args.out and not args.src:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1, default=str))
    from benchmarks.gpu_search_report import markdown, plot, section, table
    if args.write:
        from benchmarks.report import write_section
        results = Path(__file__).resolve().parent / "results"
        results.mkdir(exist_ok=True)
        plot(result, results / f"{section(result)}.png")
        write_section(section(result), markdown(result))
    print("\n".join(table(result)))


if __name__ == "__main__":
    main()
