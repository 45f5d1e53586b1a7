"""Submit a search to a Ray cluster, wait for it, then read the answer from the tracking server.

    export RAY_AUTH_MODE=token                  # as on the cluster's nodes
    python examples/cluster_submit.py --address http://127.0.0.1:8265 \\
        --tracking-uri http://127.0.0.1:5000 --trials 8

This is ``hyperseq submit`` / ``status`` / ``best`` from Python. The job runs as an ordinary
``hyperseq run`` on the head node (this checkout's packages and the space file travel with
it), and writes to the tracking server, which must be reachable from here and from the head
under the same URI (see the cluster guide in the docs). `--address` defaults to
`$RAY_ADDRESS`, the dashboard URL. The space searched is `task: noop` (instant children), so
the example needs nothing but the cluster; pass `--space` to search a real one.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from hyperseq import best_configs
from hyperseq.cluster import control, submit

QUICK = Path(__file__).with_name("noop_space.yaml")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default=None, help="Ray dashboard URL [default: $RAY_ADDRESS]")
    parser.add_argument("--tracking-uri", required=True, help="the MLflow server, e.g. http://127.0.0.1:5000")
    parser.add_argument("--space", default=str(QUICK))
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--name", default=None, help="job name [default: <space>-<searcher>-<time>]")
    parser.add_argument("--storage", default=None, help="Ray Tune results on the head (absolute or ~/...)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for the job")
    args = parser.parse_args(argv)

    sub = submit.submit(args.space, args.address, trials=args.trials, epochs=args.epochs,
                        concurrency=2, final_top=1, name=args.name,
                        tracking_uri=args.tracking_uri, storage=args.storage)
    print(f"submitted {sub.name} to {sub.address}")

    deadline = time.monotonic() + args.timeout
    while True:                                       # what `hyperseq status JOB` shows
        row = control.job_status(sub.address, sub.name, args.tracking_uri)
        print(f"  {row['ray_status']}: {row['trials_done']} of {row['trials']} trials")
        if row["ray_status"] in ("SUCCEEDED", "FAILED", "STOPPED") or time.monotonic() > deadline:
            break
        time.sleep(2)
    if row["ray_status"] != "SUCCEEDED":
        print(control.job_logs(sub.address, sub.name)[-3000:], file=sys.stderr)
        return 1

    table = best_configs(sub.name, top=3, tracking_uri=args.tracking_uri)   # `hyperseq best JOB`
    print(table.to_string(index=False, max_cols=8))
    return 0


if __name__ == "__main__":
    sys.exit(main())
