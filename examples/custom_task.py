"""A custom child task, searched by the controller's ask/tell loop in one process.

    python examples/custom_task.py --rounds 6 --per-round 2

`MajorityTask` follows the task protocol of `tasks.base.Task`: a config dataclass whose fields
carry their allowed values (`param`), and a `build` that returns the model, one training step
and an evaluation. The shared epoch loop (timing, divergence, learning-rate schedule) comes
from `Task.train`. The child reads a random bit string with a small RNN and says whether
most of its bits are ones.

To run such a task as a ``hyperseq run`` job, put the module in the `tasks` package and add
one line to the `tasks.TASKS` registry (``"majority": "tasks.majority:MajorityTask"``); a space
then names it with ``task: majority``. The Ray workers import the registry, so a task defined
only in a script is not visible to them: this example searches it with the `Controller`
directly instead, the loop every front end runs behind its adapter.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass

import torch
from torch import nn

from controller import Controller
from search_spaces import SearchSpace
from tasks.base import Run, Task, TrainConfig, param

CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


@dataclass
class MajorityConfig(TrainConfig):
    """Majority hyperparameters (the optimisation keys come from TrainConfig)."""

    cell: str = param("gru", choices=tuple(CELLS))  # recurrent cell
    hidden: int = param(32, low=1, high=1024)  # state size
    length: int = param(7, low=1, high=63)  # bits per sequence (odd: no ties)
    steps_per_epoch: int = param(50, low=1)  # optimisation steps per epoch


class MajorityNet(nn.Module):
    def __init__(self, cfg: MajorityConfig) -> None:
        super().__init__()
        self.rnn = CELLS[cfg.cell](1, cfg.hidden, batch_first=True)
        self.out = nn.Linear(cfg.hidden, 2)

    def forward(self, bits: torch.Tensor) -> torch.Tensor:     # (B, T) -> logits (B, 2)
        states, _ = self.rnn(bits.unsqueeze(-1))               # (B, T, H)
        return self.out(states[:, -1])


class MajorityTask(Task):
    """Are most of the bits ones? Metric: validation accuracy (max)."""

    name = "majority"
    metric = "val_acc"
    mode = "max"
    config_cls = MajorityConfig
    throughput_key = "seqs_per_s"

    def build(self, cfg: MajorityConfig, device: torch.device, seed: int) -> Run:
        gen = torch.Generator().manual_seed(seed)
        model = MajorityNet(cfg)
        val_bits = torch.randint(0, 2, (512, cfg.length), generator=torch.Generator().manual_seed(0))

        def batch(bits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return bits.float().to(device), (2 * bits.sum(1) > bits.shape[1]).long().to(device)

        def loss_step() -> tuple[torch.Tensor, int]:
            x, y = batch(torch.randint(0, 2, (cfg.batch_size, cfg.length), generator=gen))
            return nn.functional.cross_entropy(model(x), y), cfg.batch_size

        def evaluate() -> dict[str, float]:
            x, y = batch(val_bits)
            return {"val_acc": (model(x).argmax(1) == y).float().mean().item()}

        return Run(model, loss_step, evaluate)


SPACE = SearchSpace.from_dict({"name": "majority", "task": "majority", "decisions": [
    {"name": "cell", "choices": ["rnn", "gru", "lstm"]},
    {"name": "hidden", "choices": [8, 16, 32]},
    {"name": "lr", "range": [1.0e-3, 3.0e-2], "steps": 4, "log": True}]})


def main(argv: list[str] | None = None) -> tuple[dict, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8, help="ask/tell rounds")
    parser.add_argument("--per-round", type=int, default=2, help="configs per round")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--steps", type=int, default=30, help="steps per epoch")
    parser.add_argument("--length", type=int, default=7, help="bits per sequence")
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    task, ctrl = MajorityTask(), Controller(SPACE, seed=0)
    best: tuple[dict, float] = ({}, -1.0)
    for round_ in range(1, args.rounds + 1):
        configs = ctrl.ask(args.per_round)
        rewards = []
        for config in configs:
            fixed = {**config, "steps_per_epoch": args.steps, "length": args.length}
            metrics = list(task.train(fixed, epochs=args.epochs, device="cpu", seed=round_))
            reward = max(m[task.metric] for m in metrics)        # accuracy is already in [0, 1]
            rewards.append(reward)
            best = max(best, (config, reward), key=lambda pair: pair[1])
        ctrl.tell(configs, rewards)
        print(f"round {round_}: " + ", ".join(f"{c['cell']}/{c['hidden']}/lr={c['lr']:.3g} -> {r:.3f}"
                                             for c, r in zip(configs, rewards)))
    print(f"best {task.metric} {best[1]:.3f} with {best[0]}")
    return best


if __name__ == "__main__":
    main()
