"""Training throughput of each child task's default config on one device (torch only).

    python benchmarks/tasks_throughput.py [--device auto] [--epochs 2] [--out results.json]
                                          [--tasks char_lm seq2seq pointer_net] [--threads N] [--write]
    python benchmarks/tasks_throughput.py --from results.json --write     # render a stored result

Trains every task's default config for `--epochs` epochs and reports the LAST epoch (epoch 1
pays one-off costs: cuDNN setup, TorchScript profiling, data loading). Throughput is
tokens/s for char_lm (input characters) and seq2seq (target characters, EOS included) and
sequences/s for pointer_net, measured over the training steps of the epoch (evaluation
excluded). `--variant KEY=VALUE ...` adds one extra run per pair on top of the defaults,
e.g. `--variant char_lm:cell=peephole_lstm`. Prints a table last; `--out` writes JSON;
`--write` updates the device kind's section of BENCHMARKS.md ("throughput-cpu" or
"throughput-cuda").
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from tasks import TASK_NAMES, get_task  # noqa: E402
from tasks.base import resolve_device  # noqa: E402

from benchmarks.report import command, machine, parse_variant, write_section  # noqa: E402


def measure(name: str, config: dict, epochs: int, device: str) -> dict:
    task = get_task(name)
    start = time.perf_counter()
    history = list(task.train(config, epochs=epochs, device=device, seed=0))
    last = history[-1]
    epoch_seconds = last["seconds"] - (history[-2]["seconds"] if len(history) > 1 else 0.0)
    return {"task": name, "config": config, "unit": task.throughput_key,
            "throughput": last["throughput"], "epoch_seconds": epoch_seconds,
            "steps_per_epoch": task.parse(config).steps_per_epoch,
            "num_params": last["num_params"], "metric": task.metric,
            "metric_value": last[task.metric], "diverged": last["diverged"],
            "total_seconds": time.perf_counter() - start}


def markdown(info: dict) -> str:
    """The section: one row per run, each variant beside its task's default run (the baseline)."""
    kind = info["device"].split(":")[0]
    lines = [f"## Task throughput ({kind.upper()})", "",
             f"Command: `{info['command']}`", "",
             f"Machine: {info['machine']}, device {info['device']} ({info['device_name']}), torch "
             f"{info['torch']}, {info['threads']} CPU threads. Date: {info['date']}."
             + (" 1-minute load average {:.1f} before, {:.1f} after.".format(*info["load"]) if "load" in info else ""), "",
             f"Each task's default config (and any variant) trained {info['epochs']} epochs; the last "
             "epoch is measured (the first pays one-off costs), training steps only.", "",
             "| task | config | throughput | vs the task's default | s/epoch | steps/epoch | params |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    base = {r["task"]: r["throughput"] for r in info["results"] if not r["config"]}
    for r in info["results"]:
        config = ",".join(f"{k}={v}" for k, v in r["config"].items()) or "default"
        ratio = f"{r['throughput'] / base[r['task']]:.2f}x" if base.get(r["task"]) else "-"
        lines.append(f"| {r['task']} | {config} | {r['throughput']:,.0f} {r['unit'].replace('_per_s', '/s')} | "
                     f"{ratio} | {r['epoch_seconds']:.2f} | {r['steps_per_epoch']} | {r['num_params']:,} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per run; reports the last")
    parser.add_argument("--tasks", nargs="+", default=list(TASK_NAMES), choices=TASK_NAMES)
    parser.add_argument("--variant", nargs="*", default=[], help="extra runs, task:key=value,...")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=None, help="write results as JSON here")
    parser.add_argument("--from", dest="src", type=Path, help="render a JSON result instead of measuring")
    parser.add_argument("--write", action="store_true", help="update the section in BENCHMARKS.md")
    args = parser.parse_args()
    if args.src:
        info = json.loads(args.src.read_text())
        if args.write:
            write_section("throughput-" + info["device"].split(":")[0], markdown(info))
        print(markdown(info))
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    runs = [(name, {}) for name in args.tasks] + [parse_variant(v) for v in args.variant]
    load_before = os.getloadavg()[0]          # other work on the machine slows every figure
    rows = []
    for name, config in runs:
        row = measure(name, config, args.epochs, str(device))
        rows.append(row)
        print(json.dumps(row), flush=True)
    info = {"device": str(device), "device_name": torch.cuda.get_device_name(device)
            if device.type == "cuda" else platform.processor() or platform.machine(),
            "torch": torch.__version__, "threads": torch.get_num_threads(),
            "epochs": args.epochs, "results": rows, "command": command(), "machine": machine(),
            "date": time.strftime("%Y-%m-%d", time.gmtime()), "load": [load_before, os.getloadavg()[0]]}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(info, indent=2))
    if args.write:
        write_section("throughput-" + device.type, markdown(info))
    print(f"\ndevice {info['device']} ({info['device_name']}), torch {info['torch']}, "
          f"{info['threads']} CPU threads; last of {args.epochs} epochs")
    header = (f"{'task':<12} {'config':<28} {'throughput':>16} {'s/epoch':>8} {'steps':>6} "
              f"{'params':>9}")
    print(header + "\n" + "-" * len(header))
    for r in rows:
        config = ",".join(f"{k}={v}" for k, v in r["config"].items()) or "default"
        rate = f"{r['throughput']:,.0f} {r['unit'].replace('_per_s', '/s')}"
        print(f"{r['task']:<12} {config:<28} {rate:>16} {r['epoch_seconds']:>8.2f} "
              f"{r['steps_per_epoch']:>6} {r['num_params']:>9,}")


if __name__ == "__main__":
    main()
