"""GPU use: aggregate char_lm throughput with 1, 4, 8, 16 children packed on one GPU (torch only).

    python benchmarks/gpu_packing.py [--device auto] [--children 1 4 8 16] [--configs default small]
                                     [--steps 100] [--epochs 3] [--out packing.json]
    python benchmarks/gpu_packing.py --from packing.json --write     # render a stored result

Each child is its own process (as a Ray trial with a fractional `gpu` share is), one CPU thread
each, all started together behind a barrier. Epoch 1 pays the one-off costs (CUDA context,
cuDNN plans, data) and is not measured; the window runs from the first child's end of epoch 1
to the last child's end of its last epoch, so children that did not overlap count against the
packing. Aggregate throughput = training characters of the measured epochs of all children /
window (evaluation time included: a trial pays it too). N = 1 is "one child per GPU".
Recommends `--gpus-per-trial 1/N` for the N with the best aggregate throughput within 5% of
the peak (the smallest such N: fewer children, less memory, same speed). Prints a table last;
`--out` writes JSON; `--write` updates BENCHMARKS.md (section "gpu-packing").
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CONFIGS: dict[str, dict[str, Any]] = {
    "default": {},                                           # CharLMConfig's defaults: lstm 1x256
    "small": {"cell": "lstm", "hidden": 64, "embed": 32, "batch_size": 16, "seq_len": 64,
              "eval_chars": 8192},                            # a table-sized child
    "large": {"cell": "lstm", "layers": 2, "hidden": 512, "embed": 64, "batch_size": 64,
              "seq_len": 256},                                # the hand-tuned reference shape
}
PEAK_TOLERANCE = 0.05


def _child(rank: int, config: dict, epochs: int, device: str, barrier: Any, results: Any) -> None:
    """One packed child: train, time-stamp each epoch, report (rank, stamps, steps, memory)."""
    import torch
    from tasks import get_task
    torch.set_num_threads(1)
    try:
        run = get_task("char_lm").train(config, epochs=epochs, device=device, seed=rank)
        barrier.wait()
        stamps, steps = [], []
        for m in run:
            stamps.append(time.time())
            steps.append(m["steps"])
        memory = torch.cuda.max_memory_allocated() if device.startswith("cuda") else None
        results.put({"rank": rank, "stamps": stamps, "steps": steps, "memory": memory})
    except Exception as e:  # noqa: BLE001 - e.g. out of memory: report it, do not hang the barrier
        barrier.abort()
        results.put({"rank": rank, "error": f"{type(e).__name__}: {e}"})


def measure(name: str, config: dict, children: int, epochs: int, device: str) -> dict[str, Any]:
    from tasks.char_lm import CharLMTask
    cfg = CharLMTask().parse(config)
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(children), ctx.Queue()
    procs = [ctx.Process(target=_child, args=(r, config, epochs, device, barrier, results))
             for r in range(children)]
    for p in procs:
        p.start()
    reports = [results.get() for _ in procs]
    for p in procs:
        p.join()
    errors = [r["error"] for r in reports if "error" in r]
    row: dict[str, Any] = {"config": name, "children": children}
    if errors:
        return {**row, "error": errors[0]}
    start = min(r["stamps"][0] for r in reports)
    end = max(r["stamps"][-1] for r in reports)
    chars = sum(r["steps"][-1] - r["steps"][0] for r in reports) * cfg.batch_size * cfg.seq_len
    return {**row, "tokens_per_s": chars / max(end - start, 1e-9), "window_s": end - start,
            "memory_per_child_mb": None if reports[0]["memory"] is None
            else max(r["memory"] for r in reports) / 2**20,
            "steps_per_epoch": cfg.steps_per_epoch, "epochs": epochs}


def recommend(rows: list[dict]) -> dict[str, int]:
    """Per config: the smallest N whose aggregate throughput is within 5% of the best N's."""
    out = {}
    for name in dict.fromkeys(r["config"] for r in rows):
        ok = [r for r in rows if r["config"] == name and "tokens_per_s" in r]
        if ok:
            peak = max(r["tokens_per_s"] for r in ok)
            out[name] = min(r["children"] for r in ok if r["tokens_per_s"] >= (1 - PEAK_TOLERANCE) * peak)
    return out


def table(result: dict) -> list[str]:
    rows = result["rows"]
    base = {r["config"]: r.get("tokens_per_s") for r in rows if r["children"] == 1}
    lines = ["| config | children | aggregate chars/s | per child | vs 1 child per GPU | "
             "peak memory / child (MiB) |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['config']} | {r['children']} | failed: {r['error'][:60]} | | | |")
            continue
        ratio = f"{r['tokens_per_s'] / base[r['config']]:.2f}x" if base.get(r["config"]) else "n/a"
        memory = "n/a (cpu)" if r["memory_per_child_mb"] is None else f"{r['memory_per_child_mb']:,.0f}"
        lines.append(f"| {r['config']} | {r['children']} | {r['tokens_per_s']:,.0f} | "
                     f"{r['tokens_per_s'] / r['children']:,.0f} | {ratio} | {memory} |")
    return lines


def markdown(result: dict) -> str:
    rec = result["recommend"]
    configs = ", ".join(f"`{k}` = {CONFIGS[k] or 'CharLMConfig defaults (lstm 1x256, batch 32 x 128)'}"
                        for k in dict.fromkeys(r["config"] for r in result["rows"]))
    picks = "; ".join(f"{k}: {n} per GPU (`--gpus-per-trial {1 / n:g}`)" for k, n in rec.items())
    return "\n".join([
        "## GPU use: children packed on one GPU", "",
        f"Command: `{result['command']}`", "",
        f"Machine: {result['machine']}, device {result['device']}. Date: {result.get('date', 'n/a')}.", "",
        f"Configs: {configs}. {result['epochs']} epochs per child, epoch 1 (start-up) not measured.", "",
        *table(result), "",
        f"Smallest packing within {PEAK_TOLERANCE:.0%} of the peak aggregate: {picks}."])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    ap.add_argument("--children", type=int, nargs="+", default=[1, 4, 8, 16])
    ap.add_argument("--configs", nargs="+", default=["default", "small"], choices=list(CONFIGS))
    ap.add_argument("--steps", type=int, default=100, help="training steps per epoch")
    ap.add_argument("--epochs", type=int, default=3, help="epochs per child (>= 2; the first is not measured)")
    ap.add_argument("--out", type=Path, help="write the result as JSON here")
    ap.add_argument("--from", dest="src", type=Path, help="render a JSON result instead of measuring")
    ap.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    args = ap.parse_args()
    if args.src:
        result = json.loads(args.src.read_text())
    else:
        if args.epochs < 2:
            ap.error(f"--epochs {args.epochs}: need at least 2 (the first is not measured)")
        from datetime import datetime, timezone
        from benchmarks.report import command, machine
        from tasks.base import resolve_device
        device = str(resolve_device(args.device))
        rows = []
        for name in args.configs:
            for n in args.children:
                rows.append(measure(name, {**CONFIGS[name], "steps_per_epoch": args.steps}, n,
                                    args.epochs, device))
                print(json.dumps(rows[-1]), flush=True)
        result = {"command": command(), "machine": machine(),
                  "date": str(datetime.now(timezone.utc).date()), "device": device, "epochs": args.epochs, "rows": rows,
                  "recommend": recommend(rows)}
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(result, indent=1))
    if args.write:
        from benchmarks.report import write_section
        write_section("gpu-packing", markdown(result))
    print("recommended children per GPU:", result["recommend"])
    print("\n".join(table(result)))


if __name__ == "__main__":
    main()
