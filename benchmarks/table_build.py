"""Build a tabular benchmark: train every config of a search space once and store the results.

    python benchmarks/table_build.py --space benchmarks/data/seq2seq_table.yaml --epochs 3 \\
        --fixed '{"batch_size": 32, "steps_per_epoch": 30}' [--task seq2seq] [--workers 1]

The space names the task, the metric and its mode; `--fixed` holds the training budget every
child shares (steps per epoch, batch, eval size ...), which must not overlap the space's keys.
Each child trains `--epochs` epochs with seed `--seed`; its row keeps the best epoch's metric
(a diverged run scores inf in min mode, the task's 0.0 in max mode), every epoch's value
(`curve`) and its wall time. Output next to the space (`x_table.yaml` -> `x_table.csv` and
`x_table.json`), in the format `benchmarks.tabular.Table.load` reads. Rows are appended as
children finish, so an interrupted build resumes where it stopped; the .json header (how the
table was built, with the real total child-seconds) is rewritten at the end of every run.
`--max-configs N` stops after N new rows (a build in slices).
Children use one intra-op thread each; `--workers 1` trains in this process, more workers
use a spawn pool (with a GPU pass `--device cuda`: the workers share it).
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import multiprocessing as mp
import os
import platform
import shlex
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from search_spaces import SearchSpace  # noqa: E402

TAIL = ("curve", "seconds")  # columns after the decision keys and the metric


@dataclass(frozen=True)
class Job:
    """One child: a config of the space plus everything fixed for the whole table."""

    task: str
    metric: str
    mode: str
    config: dict[str, Any]
    fixed: dict[str, Any] = field(default_factory=dict)
    epochs: int = 3
    device: str = "cpu"
    seed: int = 0


def failed_value(mode: str) -> float:
    """The score of a diverged run: inf when minimising, the tasks' 0.0 when maximising."""
    return math.inf if mode == "min" else 0.0


def best_of(curve: list[float], diverged: bool, mode: str) -> float:
    """The row's metric: the best epoch's value, or `failed_value` if the run diverged."""
    if diverged or not curve:
        return failed_value(mode)
    return min(curve) if mode == "min" else max(curve)


def train_one(job: Job) -> dict[str, Any]:
    """Train one config (one intra-op thread) -> its table row."""
    import torch

    from tasks import get_task
    torch.set_num_threads(1)
    curve: list[float] = []
    diverged, t0 = False, time.perf_counter()
    for m in get_task(job.task).train({**job.config, **job.fixed}, epochs=job.epochs,
                                      device=job.device, seed=job.seed):
        diverged = bool(m["diverged"])
        curve.append(failed_value(job.mode) if diverged else float(m[job.metric]))
        if diverged:
            break
    return {**job.config, job.metric: best_of(curve, diverged, job.mode),
            "curve": " ".join(f"{v:.4f}" for v in curve),
            "seconds": round(time.perf_counter() - t0, 2)}


def row_key(space: SearchSpace, row: dict[str, Any]) -> tuple[str, ...]:
    """A config's identity in the csv: its decision values as written (inactive -> '')."""
    return tuple(str(row.get(k, "")) for k in space.keys)


def read_rows(path: Path, fields: list[str]) -> list[dict[str, str]]:
    """Rows already in the csv (for resuming); its header must match this build's. A last line
    cut short by a kill mid-write is dropped (its config is trained again)."""
    text = path.read_text() if path.exists() else ""
    if text and not text.endswith("\n"):
        path.write_text(text := text[: text.rfind("\n") + 1])
    if not text:
        return []
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames != fields:
            raise SystemExit(f"{path} has columns {reader.fieldnames}, this build writes {fields}: "
                             f"move it away or pass another --out")
        return list(reader)


def run_jobs(jobs: list[Job], workers: int) -> Iterator[dict[str, Any]]:
    """Rows as children finish: in this process for one worker, else a spawn pool."""
    if workers <= 1:
        yield from map(train_one, jobs)
        return
    with mp.get_context("spawn").Pool(workers) as pool:
        yield from pool.imap_unordered(train_one, jobs)


def summarize(rows: list[dict[str, Any]], metric: str, mode: str) -> dict[str, Any]:
    """Best value, top-1% threshold (as `Table.top_fraction(0.01)`), spread and cost."""
    values = [float(r[metric]) for r in rows]
    ordered = sorted(values, reverse=mode == "max")                  # best first
    finite = sorted(v for v in values if math.isfinite(v))            # ascending

    def pick(seq: list[float], i: int) -> float:
        return seq[min(i, len(seq) - 1)] if seq else math.nan

    return {"configs": len(values), "best": pick(ordered, 0),
            "top1pct": pick(ordered, max(0, math.ceil(0.01 * len(ordered)) - 1)),
            "q25": pick(finite, len(finite) // 4), "median": pick(finite, len(finite) // 2),
            "q75": pick(finite, 3 * len(finite) // 4),
            "worst_finite": pick(finite, -1 if mode == "min" else 0),
            # diverged runs (and, in max mode, runs that never scored above 0)
            "at_floor": sum(v == failed_value(mode) for v in values),
            "child_seconds_total": round(sum(float(r["seconds"]) for r in rows), 1)}


def command(args: argparse.Namespace, task: str) -> str:
    """The command line that reproduces this table (paths relative to the repo root)."""
    def rel(p: Path) -> str:
        p = p.resolve()
        return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p)
    parts = ["python", "benchmarks/table_build.py", "--task", task, "--space", rel(args.space),
             "--epochs", str(args.epochs), "--fixed", json.dumps(args.fixed),
             "--workers", str(args.workers), "--device", args.device, "--seed", str(args.seed)]
    if args.out != args.space.with_suffix(".csv"):
        parts += ["--out", rel(args.out)]
    return " ".join(shlex.quote(p) for p in parts)


def write_header(args: argparse.Namespace, space: SearchSpace, task: str, stats: dict[str, Any],
                 wall: float) -> dict[str, Any]:
    """The .json next to the csv: how the table was built (what `Table.load` keeps as header)."""
    import torch
    path = args.out.with_suffix(".json")
    before = json.loads(path.read_text()) if path.exists() and args.resumed else {}
    header = {
        "command": command(args, task), "space": args.space.name, "task": task,
        "configs": space.size(), "rows": stats["configs"], "epochs": args.epochs,
        "fixed": args.fixed, "seed": args.seed, "device": args.device, "workers": args.workers,
        "threads_per_child": 1, "machine": platform.platform(), "cpus": os.cpu_count(),
        "python": platform.python_version(), "torch": torch.__version__,
        "date": before.get("date", datetime.now(timezone.utc).strftime("%Y-%m-%d")),
        "finished": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%MZ"),
        "metric": f"best-epoch {space.metric} ({space.mode}); "
                  f"diverged = {failed_value(space.mode)}",
        "child_seconds_total": stats["child_seconds_total"],
        "wall_seconds": round(before.get("wall_seconds", 0) + wall, 1),
        "runs": before.get("runs", 0) + 1,
        "load_average": {"start": args.load_start, "end": round(os.getloadavg()[0], 2)},
        "summary": {k: stats[k] for k in ("best", "top1pct", "q25", "median", "q75",
                                          "worst_finite", "at_floor")},
    }
    path.write_text(json.dumps(header, indent=2) + "\n")
    return header


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", type=Path, required=True, help="space YAML with task, metric, mode")
    ap.add_argument("--task", help="task name (default: the space's task)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--fixed", type=json.loads, default={},
                    help="JSON config keys shared by all children (the training budget)")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, help="csv path (default: the space path with .csv)")
    ap.add_argument("--max-configs", type=int, help="train at most this many new configs this run "
                    "(a build in slices; 0 only rewrites the .json header from the csv)")
    ap.add_argument("--log-every", type=int, default=10, help="rows between log lines (no tty)")
    args = ap.parse_args(argv)
    args.out = args.out or args.space.with_suffix(".csv")
    return args


def check_space(space: SearchSpace, task: str | None, fixed: dict[str, Any]) -> str:
    """The task to train; the space must name a metric and share no key with --fixed."""
    task = task or space.task
    if task is None or (space.task is not None and space.task != task):
        raise SystemExit(f"--task {task!r} does not match the space's task {space.task!r}")
    if space.metric is None or space.mode is None:
        raise SystemExit("the space must give `metric` and `mode`")
    clash = sorted(set(fixed) & {k for k in space.keys})
    if clash:
        raise SystemExit(f"--fixed sets {clash}, which the space decides")
    return task


def build(args: argparse.Namespace, space: SearchSpace, task: str,
          todo: list[dict[str, Any]], rows: list[dict[str, Any]]) -> None:
    """Train the missing configs, appending each row to the csv as it finishes."""
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)
    fields = [*space.keys, space.metric, *TAIL]
    jobs = [Job(task, space.metric, space.mode, c, args.fixed, args.epochs, args.device, args.seed)
            for c in todo]
    sign = 1 if space.mode == "min" else -1
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}"))
    with args.out.open("a", newline="") as f, Progress(*columns) as bar:
        writer = csv.DictWriter(f, fieldnames=fields)
        if not rows:
            writer.writeheader()
        best = min((sign * float(r[space.metric]) for r in rows), default=math.inf)
        tid = bar.add_task(space.name, total=len(todo), info="")
        for i, row in enumerate(run_jobs(jobs, args.workers), 1):
            writer.writerow(row)
            f.flush()
            rows.append(row)
            best = min(best, sign * row[space.metric])
            info = (f"last {row[space.metric]:.4f} in {row['seconds']:.1f}s, "
                    f"best {sign * best:.4f}")
            bar.update(tid, advance=1, info=info)
            if not bar.console.is_terminal and (i % args.log_every == 0 or i == len(todo)):
                bar.console.print(f"{time.strftime('%H:%M:%S')} {i}/{len(todo)} {info}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Build (or finish) one table; print and return its summary."""
    args = parse_args(argv)
    space = SearchSpace.from_yaml(args.space)
    task = check_space(space, args.task, args.fixed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = read_rows(args.out, [*space.keys, space.metric, *TAIL])
    done = {row_key(space, r) for r in rows}
    todo = [c for c in space if row_key(space, c) not in done][: args.max_configs]
    args.resumed = bool(rows)
    args.load_start = round(os.getloadavg()[0], 2)  # children's seconds depend on the load
    print(f"{space.name}: {space.size()} configs, {len(rows)} already in {args.out}, "
          f"{len(todo)} to train ({task}, {args.epochs} epochs, fixed {args.fixed})", flush=True)
    t0 = time.time()
    build(args, space, task, todo, rows)
    stats = summarize(rows, space.metric, space.mode)
    write_header(args, space, task, stats, time.time() - t0)
    print(f"{args.out}: {stats['configs']} rows; {space.metric} ({space.mode}) best "
          f"{stats['best']:.4f}, top-1% threshold {stats['top1pct']:.4f}, quartiles "
          f"{stats['q25']:.4f} / {stats['median']:.4f} / {stats['q75']:.4f}, worst finite "
          f"{stats['worst_finite']:.4f}, at the floor {stats['at_floor']}; child-seconds "
          f"{stats['child_seconds_total']:.0f}, wall {time.time() - t0:.0f} s", flush=True)
    return stats


if __name__ == "__main__":
    main()
