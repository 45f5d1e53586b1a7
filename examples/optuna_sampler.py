"""The RNN controller as an Optuna sampler: a define-by-run objective, `ControllerSampler`.

    python examples/optuna_sampler.py --trials 200

The objective stands in for "train, then return the validation loss" so the example runs in
seconds; its best value is 0 (cell lstm, 2 layers, hidden 256, lr 10^-2.5, dropout 0.2).
Importing the sampler loads optuna, torch and the controller only (no Ray, no MLflow).
"""
from __future__ import annotations

import argparse
import math

import optuna

from hyperseq import ControllerSampler


def objective(trial: optuna.Trial) -> float:
    cell = trial.suggest_categorical("cell", ["rnn", "gru", "lstm"])
    layers = trial.suggest_int("layers", 1, 4)
    hidden = trial.suggest_int("hidden", 32, 512, log=True)
    lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    dropout = trial.suggest_float("dropout", 0.0, 0.5, step=0.05)
    if cell == "lstm":                              # conditional: sampled independently
        trial.suggest_categorical("peephole", [False, True])
    return ((math.log10(lr) + 2.5) ** 2 + abs(dropout - 0.2) + abs(math.log2(hidden / 256)) / 4
            + {"rnn": 1.0, "gru": 0.3, "lstm": 0.0}[cell] + 0.1 * abs(layers - 2))


def main(argv: list[str] | None = None) -> optuna.Study:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--storage", default=None,
                        help="an Optuna RDB URL (e.g. sqlite:///search.db) to share the study")
    args = parser.parse_args(argv)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Several processes or machines sharing one study: the same seed and storage in each.
    study = optuna.create_study(study_name="example", storage=args.storage, load_if_exists=True,
                                direction="minimize", sampler=ControllerSampler(seed=args.seed))
    study.optimize(objective, n_trials=args.trials)          # n_jobs > 1 works too
    print(f"best value {study.best_value:.4f} with {study.best_params}")
    return study


if __name__ == "__main__":
    main()
