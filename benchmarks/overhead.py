"""Per-trial orchestration overhead of a hyperseq job, against bare Ray Tune.

All variants train the built-in no-op child (instant), so every second measured is
orchestration. In one Ray instance, alternating, `--repeats` times each:

- ``bare tune``: `tune.Tuner` + random search (BasicVariantGenerator) over the same space, a
  plain function trainable running the same no-op child, `reuse_actors=True`, same
  trials/concurrency, no MLflow, no controller, Tune's defaults otherwise — the baseline;
- ``bare tune, no result files``: the same with Tune's per-trial CSV/JSON/TensorBoard loggers
  off (``TUNE_DISABLE_AUTO_CALLBACK_LOGGERS=1``), as hyperseq runs Tune (MLflow is its record);
- ``bare tune, as hyperseq runs it``: the same, also with at most `concurrency` pending
  trials (``TUNE_MAX_PENDING_TRIALS_PG``: Tune's random search otherwise creates up to 200 at
  once; hyperseq's `ConcurrencyLimiter` gets `concurrency`) and the trial actors started
  together (`workers.gather`: each actor's first trial waits for the others), so it runs
  `concurrency` trials at a time in every repeat, where bare Tune often runs one (Tune's actor
  cache, see below): the like-for-like baseline, everything hyperseq adds left out;
- ``hyperseq rnn``: `run_search(searcher="rnn")`, end to end (validation, parent run, child
  runs, controller ask/tell, curves, plots, final ranking from MLflow);
- ``hyperseq random``: `run_search(searcher="random")` (isolates the controller's share).

Reported per variant (median over repeats): wall time per trial (call wall / trials),
steady-state time per trial (first to last trial completion / (trials - 1), start-up
excluded) and the fixed per-job cost (wall - steady x trials); and the paired ratio: the
median over repeats of the variant's wall / bare Tune's wall in the same repeat (the runs of a
repeat are minutes apart, so a slow spell of a shared machine hits both sides of a ratio);
and how many of its jobs ran every trial on one Ray actor (one trial at a time: Tune hands a
cached actor to a trial whose own actor is still starting; hyperseq's trial actors start
together, `workers.gather`), with the paired ratio over the repeats where bare Tune did not,
and each hyperseq variant against ``bare tune, as hyperseq runs it`` in every repeat (like
for like). Also the controller's own ask+tell cost per config. Prints a table last and writes it to a section of BENCHMARKS.md.

    python benchmarks/overhead.py --trials 200 --concurrency 2 --repeats 3
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import ray                                             # noqa: E402
from ray import tune                                   # noqa: E402
from ray.tune.search import BasicVariantGenerator      # noqa: E402

from controller import Controller                      # noqa: E402
from hyperseq.envvars import temp_env                  # noqa: E402
from hyperseq.jobs import run_search                   # noqa: E402
from hyperseq.jobs.ray_env import local_ray_options    # noqa: E402
from hyperseq.tracking.store import open_store         # noqa: E402
from search_spaces import SearchSpace                  # noqa: E402
from benchmarks.report import BENCHMARKS, write_section  # noqa: E402

from tasks.noop import NoopTask, score                 # noqa: E402
from workers.gather import gather, released          # noqa: E402

SPEC = {"name": "bench_noop", "task": "noop", "decisions": [
    {"name": "cell", "choices": ["rnn", "gru", "lstm"]},
    {"name": "layers", "choices": [1, 2, 3]},
    {"repeat": "layers", "decisions": [{"name": "hidden", "choices": [64, 128, 256, 512]}]},
    {"name": "lr", "range": [1e-4, 1e-1], "steps": 7, "log": True},
    {"name": "dropout", "range": [0.0, 0.5], "steps": 6},
]}
LIKE = "bare tune, as hyperseq runs it"


class Completions(tune.Callback):
    """Wall-clock time of every trial completion, and the Ray actors trials started on (the
    same probe for every variant): a job whose trials all ran on one actor ran one at a time."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.actors: set[Any] = set()

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        actor = trial.temporary_state.ray_actor
        if actor is not None:
            self.actors.add(actor._ray_actor_id)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.times.append(time.perf_counter())

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.times.append(time.perf_counter())


def bare_trial(config: dict, space: SearchSpace, gather_key: str = "", gather_size: int = 1) -> None:
    """The same no-op child as hyperseq's trainable, minus everything hyperseq adds (but the
    start barrier, when given a key)."""
    gather(gather_key, gather_size)
    cfg = space.project(config)
    for metrics in NoopTask().train(cfg, epochs=1):
        tune.report({"reward": metrics["score"], **metrics})


def run_bare(space: SearchSpace, trials: int, concurrency: int, storage: str, name: str,
             seed: int, result_files: bool = True, like_hyperseq: bool = False) -> tuple[float, Completions]:
    """One bare Tune job; `like_hyperseq`: run Tune as hyperseq does (no result files, at most
    `concurrency` pending trials, trial actors started together), the like-for-like baseline."""
    probe = Completions()
    key = f"{name}/{uuid.uuid4().hex[:12]}" if like_hyperseq else ""
    env = {"TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": None if result_files and not like_hyperseq else "1",
           "TUNE_MAX_PENDING_TRIALS_PG": str(concurrency) if like_hyperseq else None}
    with temp_env(env), released(key):
        tuner = tune.Tuner(
            tune.with_resources(tune.with_parameters(bare_trial, space=space, gather_key=key,
                                                     gather_size=concurrency), {"cpu": 1}),
            param_space={s.key: tune.choice(list(s.choices)) for s in space.slots},
            tune_config=tune.TuneConfig(num_samples=trials, reuse_actors=True,
                                        search_alg=BasicVariantGenerator(max_concurrent=concurrency,
                                                                         random_state=seed)),
            run_config=tune.RunConfig(name=name, storage_path=storage, verbose=0, callbacks=[probe]))
        start = time.perf_counter()
        tuner.fit()
        return time.perf_counter() - start, probe


def run_hyperseq(space: SearchSpace, searcher: str, trials: int, concurrency: int, uri: str,
                 storage: str, name: str, seed: int) -> tuple[float, Completions]:
    probe = Completions()
    start = time.perf_counter()
    result = run_search(space, searcher=searcher, trials=trials, concurrency=concurrency, epochs=1,
                        tracking_uri=uri, storage=storage, name=name, seed=seed, callbacks=[probe],
                        final_top=0)                  # bare Tune has no final phase to compare with
    wall = time.perf_counter() - start
    assert result.status == "FINISHED" and len(result.trials) == trials, result.status
    return wall, probe


def controller_cost(space: SearchSpace, n: int = 400) -> dict[str, float]:
    """Mean ms per config of ask(1), tell (incl. an update every batch_size tells), both."""
    ctrl = Controller(space, seed=0)
    ask = tell = 0.0
    for _ in range(n):
        t0 = time.perf_counter()
        [cfg] = ctrl.ask(1)
        t1 = time.perf_counter()
        ctrl.tell([cfg], [score(cfg)])
        t2 = time.perf_counter()
        ask, tell = ask + t1 - t0, tell + t2 - t1
    return {"ask_ms": 1e3 * ask / n, "tell_ms": 1e3 * tell / n, "ask_tell_ms": 1e3 * (ask + tell) / n,
            "updates": ctrl.stats["updates"], "configs": n}


def summarize(walls: list[float], probes: list[Completions], trials: int,
              base: list[float]) -> dict[str, float]:
    wall = statistics.median(walls)
    steady = statistics.median((p.times[-1] - p.times[0]) / max(trials - 1, 1) for p in probes)
    return {"wall_per_trial": wall / trials, "steady_per_trial": steady, "fixed": wall - steady * trials,
            "wall": wall, "paired": statistics.median(w / b for w, b in zip(walls, base)),
            "serial": sum(len(p.actors) <= 1 for p in probes), "jobs": len(probes)}


def matched(walls: dict[str, list[float]], probes: dict[str, list[Completions]]) -> str:
    """Each hyperseq variant against bare Tune in the repeats where bare Tune ran its trials on
    more than one actor (a job on one actor runs one trial at a time: `workers.gather`)."""
    keep = [i for i, p in enumerate(probes["bare tune"]) if len(p.actors) > 1]
    if not keep:
        return "- no repeat where bare Tune ran on more than one actor"
    parts = [f"{v} {statistics.median(walls[v][i] / walls['bare tune'][i] for i in keep):.2f}x"
             for v in walls if v.startswith("hyperseq")]
    return (f"- paired ratio in the {len(keep)} repeat(s) where bare Tune's trials ran on more than one "
            f"actor: {', '.join(parts)}")


def like_for_like(walls: dict[str, list[float]]) -> str:
    """Each hyperseq variant against bare Tune as hyperseq runs it (`run_bare(like_hyperseq=True)`),
    every repeat: ratio of median walls, and the median of the per-repeat ratios."""
    base = walls[LIKE]
    parts = [f"{v} {statistics.median(walls[v]) / statistics.median(base):.2f}x "
             f"(paired {statistics.median(w / b for w, b in zip(walls[v], base)):.2f}x)"
             for v in walls if v.startswith("hyperseq")]
    return f"- like for like, against {LIKE} in all {len(base)} repeats: {', '.join(parts)}"


def machine() -> str:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import mlflow
    import torch
    return (f"{os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, ray {ray.__version__}, mlflow {mlflow.__version__}, "
            f"torch {torch.__version__}, no GPU used")


def table(rows: dict[str, dict[str, float]]) -> str:
    base = rows["bare tune"]
    lines = ["| variant | wall / trial (ms) | steady-state / trial (ms) | fixed per job (s) | "
             "ratio wall | ratio wall, paired | ratio steady | jobs run on one actor |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {1e3 * r['wall_per_trial']:.1f} | {1e3 * r['steady_per_trial']:.1f} | "
                     f"{r['fixed']:.2f} | {r['wall_per_trial'] / base['wall_per_trial']:.2f}x | "
                     f"{r['paired']:.2f}x | "
                     f"{r['steady_per_trial'] / base['steady_per_trial']:.2f}x | {r['serial']}/{r['jobs']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=BENCHMARKS)
    parser.add_argument("--no-write", action="store_true", help="only print the table")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    space = SearchSpace.from_dict(SPEC)
    tmp = tempfile.mkdtemp(prefix="hyperseq-bench-")
    uri = f"sqlite:///{tmp}/mlflow.db"
    t0 = time.perf_counter()
    open_store(uri).ensure()                  # a fresh sqlite store: schema migrations, once
    store_s = time.perf_counter() - t0
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"      # bare Tune as quiet as hyperseq makes it
    ray.init(**local_ray_options(max(args.concurrency, 1)))
    try:
        walls: dict[str, list[float]] = {"bare tune": [], "bare tune, no result files": [],
                                         LIKE: [], "hyperseq rnn": [], "hyperseq random": []}
        probes: dict[str, list[Completions]] = {k: [] for k in walls}
        for rep in range(args.repeats):
            for variant in walls:
                name = f"{variant.replace(' ', '-').replace(',', '')}-{rep}"
                if variant.startswith("bare tune"):
                    wall, probe = run_bare(space, args.trials, args.concurrency, f"{tmp}/ray", name,
                                           args.seed, result_files=variant == "bare tune",
                                           like_hyperseq=variant == LIKE)
                else:
                    wall, probe = run_hyperseq(space, variant.split()[1], args.trials, args.concurrency,
                                               uri, f"{tmp}/ray", name, args.seed)
                walls[variant].append(wall)
                probes[variant].append(probe)
                print(f"[{rep + 1}/{args.repeats}] {variant:27s} {wall:7.2f} s  "
                      f"{1e3 * wall / args.trials:6.1f} ms/trial  {len(probe.actors)} actor(s) ran trials",
                      flush=True)
        ctrl = controller_cost(space)
    finally:
        ray.shutdown()

    rows = {k: summarize(walls[k], probes[k], args.trials, walls["bare tune"]) for k in walls}
    command = (f"python benchmarks/overhead.py --trials {args.trials} --concurrency {args.concurrency} "
               f"--repeats {args.repeats}")
    body = "\n".join([
        "## Orchestration overhead (no-op child)", "",
        f"- command: `{command}`",
        f"- date: {dt.datetime.now().strftime('%Y-%m-%d %H:%M')}",
        f"- machine: {machine()}",
        f"- trials per job: {args.trials}, concurrency {args.concurrency}, 1 epoch, medians of "
        f"{args.repeats} alternating repeats in one local Ray; sqlite MLflow store in a temp dir "
        f"(created once before timing: {store_s:.1f} s); 1-min load average {load_before:.1f} "
        f"before, {os.getloadavg()[0]:.1f} after (other work on the machine adds noise)",
        "", table(rows), "", like_for_like(walls), matched(walls, probes),
        f"- controller ask+tell per config: {ctrl['ask_tell_ms']:.2f} ms (ask {ctrl['ask_ms']:.2f} ms, "
        f"tell {ctrl['tell_ms']:.2f} ms incl. the policy updates: {ctrl['updates']} over "
        f"{ctrl['configs']} configs)",
        "- wall = the whole call (hyperseq: validation, MLflow parent + child runs, controller, "
        "plots, ranking); steady-state = first to last trial completion / (trials - 1); "
        "fixed = wall - steady x trials (actor start-up, job set-up and tear-down).",
    ])
    if not args.no_write:
        write_section("overhead", body, args.out)
        print(f"\nwrote {args.out}")
    print()
    print(body)


if __name__ == "__main__":
    main()
