"""The `hyperseq` command line: local jobs and queries (`local`), cluster jobs (`cluster`)."""
from __future__ import annotations

import logging

import click

from . import cluster, local
from .errors import OneLineErrors


@click.group(cls=OneLineErrors)
def cli() -> None:
    """AutoML for sequence models: an RNN controller (NAS-RL) writes hyperparameter configs,
    Ray Tune trains them, MLflow records every job and trial."""
    for name in ("mlflow", "alembic", "ray", "optuna"):
        logging.getLogger(name).setLevel(logging.WARNING)


for _command in (*local.COMMANDS, *cluster.COMMANDS):
    cli.add_command(_command)


def main() -> None:
    """Console-script entry point."""
    cli()
