"""Run a search job from Python, then read its results back from the store.

    python examples/python_api.py --trials 8 --epochs 2

`run_search` takes the same options as ``hyperseq run`` (as keywords) and checks them the
same way before Ray starts. It starts a local Ray unless `$RAY_ADDRESS` names a cluster, and
records into `--tracking-uri` (default: `$MLFLOW_TRACKING_URI`, else ./mlflow.db).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from hyperseq import best_configs, list_jobs, run_search

SPACE = Path(__file__).with_name("demo_space.yaml")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--final-top", type=int, default=2)
    parser.add_argument("--tracking-uri", default=None, help="MLflow store (default: ./mlflow.db)")
    parser.add_argument("--storage", default=None, help="Ray Tune results (default: ~/ray_results)")
    args = parser.parse_args(argv)

    result = run_search(SPACE, searcher="rnn", trials=args.trials, epochs=args.epochs,
                        concurrency=args.concurrency, final_top=args.final_top,
                        tracking_uri=args.tracking_uri, storage=args.storage)
    print(f"job {result.name}: {result.status}")
    print(f"best reward {result.best_reward:.4f} (from {result.metric}): {result.best_config}")

    # The same answers, read back from the store (what `hyperseq best` and `jobs` print).
    table = best_configs(result.name, top=3, tracking_uri=args.tracking_uri)
    print(table.to_string(index=False, max_cols=8))
    jobs = list_jobs(args.tracking_uri)
    print(f"{len(jobs)} job(s) in the store")


if __name__ == "__main__":
    main()
