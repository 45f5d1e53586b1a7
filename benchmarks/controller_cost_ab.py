"""The controller's mean ask+tell cost per config over a whole job, two checkouts side by side.

    git worktree add /tmp/before <rev>
    python benchmarks/controller_cost_ab.py --before /tmp/before --configs 200 400 --repeats 3

Each measurement is a fresh process (one intra-op thread) that asks and tells N configs one
at a time on the 10-decision space of `controller_cost.py`, the checkouts alternating, so a
machine that slows down mid-run slows both. Prints one markdown row per N: medians and the
ratio now / before.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHILD = r"""
import json, random, sys, time
sys.path.insert(0, sys.argv[1])
import torch
torch.set_num_threads(1)
from benchmarks.controller_cost import SPACE
from controller import Controller
from search_spaces import SearchSpace
space, n = SearchSpace.from_dict(SPACE), int(sys.argv[2])
ctrl, rng = Controller(space, seed=0), random.Random(0)
t = time.perf_counter()
for _ in range(n):
    ctrl.tell(c := ctrl.ask(1), [rng.random()])
print(json.dumps(1e3 * (time.perf_counter() - t) / n))
"""


def measure(root: Path, n: int) -> float:
    out = subprocess.run([sys.executable, "-c", CHILD, str(root), str(n)], cwd=root, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", type=Path, required=True, help="checkout to compare against")
    ap.add_argument("--configs", type=int, nargs="+", default=[200, 400])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print("| configs in the job | before, ms/config | now, ms/config | ratio |\n| --- | ---: | ---: | ---: |")
    for n in args.configs:
        before, now = [], []
        for _ in range(args.repeats):
            before.append(measure(args.before.resolve(), n))
            now.append(measure(ROOT, n))
        b, a = statistics.median(before), statistics.median(now)
        print(f"| {n} | {b:.1f} | {a:.1f} | {a / b:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
