"""The RNN controller as a Ray Tune searcher: `ControllerSearcher` in a plain `tune.Tuner`.

    python examples/ray_tune_searcher.py --samples 20

The searcher owns its space (a hyperseq `SearchSpace`), so the Tuner gets no `param_space`;
metric and mode come from the `TuneConfig`. A `ConcurrencyLimiter` keeps a few trials in
flight, so the controller learns from results before it proposes the rest. The trainable
stands in for a training loop: it reports a loss per epoch.
"""
from __future__ import annotations

import argparse
import math
import tempfile

import ray
from ray import tune
from ray.tune.search import ConcurrencyLimiter

from hyperseq import ControllerSearcher
from search_spaces import SearchSpace

SPACE = SearchSpace.from_dict({"name": "toy", "decisions": [
    {"name": "cell", "choices": ["rnn", "gru", "lstm"]},
    {"name": "layers", "choices": [1, 2, 3]},
    {"name": "lr", "range": [1.0e-4, 1.0e-1], "steps": 7, "log": True},
    {"name": "dropout", "range": [0.0, 0.5], "steps": 6}]})


def trainable(config: dict) -> None:
    final = ((math.log10(config["lr"]) + 2.5) ** 2 + abs(config["dropout"] - 0.2)
             + {"rnn": 1.0, "gru": 0.3, "lstm": 0.0}[config["cell"]] + 0.1 * abs(config["layers"] - 2))
    for epoch in range(1, 4):                       # a loss curve that ends at `final`
        tune.report({"loss": final + 1.0 / epoch})


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--storage", default=None, help="Tune results directory (default: a temp dir)")
    args = parser.parse_args(argv)

    searcher = ConcurrencyLimiter(ControllerSearcher(SPACE, seed=args.seed), max_concurrent=args.concurrency)
    storage = args.storage or tempfile.mkdtemp(prefix="tune-")
    ray.init(num_cpus=args.concurrency, include_dashboard=False, log_to_driver=False)
    try:
        tuner = tune.Tuner(trainable,
                           tune_config=tune.TuneConfig(search_alg=searcher, metric="loss", mode="min",
                                                       num_samples=args.samples),
                           run_config=tune.RunConfig(storage_path=storage, verbose=0))
        best = tuner.fit().get_best_result()
    finally:
        ray.shutdown()
    print(f"best loss {best.metrics['loss']:.4f} with {best.config}")
    return best.config


if __name__ == "__main__":
    main()
