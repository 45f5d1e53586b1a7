"""pointer_net: a pointer network (Vinyals et al. 2015) for sorting numbers or finding the
planar convex hull (``problem``; data and ground truth in pointer_data.py).

Encoder: Linear(d, H) embedding -> RNN. Memory slot 0 is a learned END vector, slots 1..n the
encoder outputs. Decoder: an RNN fed the embedding of the previously pointed input (a learned
start vector first), initialised with the encoder's final state. Each step points with
additive attention u_j = v^T tanh(W1 e_j + W2 q) over the memory; with ``glimpse`` the query q
is first replaced by an attention-weighted sum of the memory (Bello et al. 2016). With
``mask_visited`` (default) slots already pointed at are masked, so a pointer never repeats;
END is always allowed.

Metrics on a fixed validation set (VAL_PER_N examples for every n in val_n_min..val_n_max),
greedy decoding until END or n + 1 steps: ``val_seq_acc`` (whole output, END included, exactly
right), ``val_pos_acc`` (share of target positions, END excluded, pointed right) and, for the
hull, ``val_area_coverage`` (|shoelace area| of the predicted polygon / true hull area; 0 when
the output has fewer than 3 points or never ends; mean over examples).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tasks import pointer_data as data
from tasks.attention import Attention
from tasks.base import Run, Task, TrainConfig, param
from tasks.rnn import FUSED


@dataclass
class PointerConfig(TrainConfig):
    """pointer_net hyperparameters (the shared optimisation keys come from TrainConfig)."""

    problem: str = param("sort", choices=data.PROBLEMS)  # what the pointers must output
    cell: str = param("lstm", choices=tuple(FUSED))  # encoder and decoder cell
    hidden: int = param(128, low=1, high=2048)  # embedding, state and attention size
    layers: int = param(1, low=1, high=4)  # layers of the encoder and of the decoder
    glimpse: bool = param(False)  # one glimpse before pointing (Bello et al. 2016)
    mask_visited: bool = param(True)  # forbid pointing at an input twice (Bello et al.);
    #                   False = unconstrained pointers as in Vinyals et al. (harder)
    n_min: int = param(5, low=1, high=200)  # shortest training input (n drawn per batch)
    n_max: int = param(10, low=1, high=200)  # longest training input
    val_n_min: int = param(5, low=1, high=200)  # validation lengths: keep fixed within a search
    val_n_max: int = param(10, low=1, high=200)  # (every n in between, VAL_PER_N examples each)
    lr: float = param(4e-3, low=0.0)  # learning rate
    batch_size: int = param(128, low=1)  # sequences per step
    steps_per_epoch: int = param(100, low=1)  # optimisation steps per epoch


class PointerNet(nn.Module):
    """Encoder-decoder whose outputs are pointers into its input (see the module docstring)."""

    def __init__(self, cfg: PointerConfig, in_dim: int):
        super().__init__()
        H = cfg.hidden
        self.embed = nn.Linear(in_dim, H)
        self.encoder = FUSED[cfg.cell](H, H, num_layers=cfg.layers, batch_first=True)
        self.decoder = FUSED[cfg.cell](H, H, num_layers=cfg.layers, batch_first=True)
        self.end = nn.Parameter(torch.randn(H) * 0.1)  # memory slot 0 (the END pointer)
        self.start = nn.Parameter(torch.randn(H) * 0.1)  # first decoder input
        self.pointer = Attention("mlp", H, H)
        self.glimpse = Attention("mlp", H, H) if cfg.glimpse else None
        self.mask_visited = cfg.mask_visited

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor, object]:
        """x (B, n, d) -> memory (B, n+1, H), slot inputs (B, n+1, H), decoder init state."""
        B = x.size(0)
        emb = self.embed(x)  # (B, n, H)
        out, state = self.encoder(emb)  # (B, n, H)
        end = self.end.expand(B, 1, -1)
        return torch.cat([end, out], 1), torch.cat([end, emb], 1), state

    def point(self, query: Tensor, memory: Tensor, allowed: Tensor) -> Tensor:
        """query (B, T, H), memory (B, S, H), allowed (B, T, S) -> pointer scores (B, T, S)."""
        if self.glimpse is not None:
            scores = self.glimpse.scores(query, self.glimpse.keys(memory), allowed)
            query = torch.bmm(torch.softmax(scores, -1), memory)  # (B, T, H) the glimpse
        return self.pointer.scores(query, self.pointer.keys(memory), allowed)

    def forward(self, x: Tensor, targets: Tensor) -> Tensor:
        """Teacher-forced pass, all steps at once. targets (B, T) -> scores (B, T, n+1)."""
        memory, slots, state = self.encode(x)
        B, S, _ = memory.shape
        prev = targets[:, :-1].clamp(min=0)  # (B, T-1) slot pointed at the previous step
        picked = torch.gather(slots, 1, prev.unsqueeze(-1).expand(-1, -1, slots.size(-1)))
        inputs = torch.cat([self.start.expand(B, 1, -1), picked], 1)  # (B, T, H)
        query, _ = self.decoder(inputs, state)  # (B, T, H)
        chosen = F.one_hot(targets.clamp(min=0), S).cumsum(1) - F.one_hot(targets.clamp(min=0), S)
        allowed = (chosen == 0) | (not self.mask_visited)  # (B, T, S): not pointed at before t
        allowed[..., data.END] = True
        return self.point(query, memory, allowed)

    @torch.no_grad()
    def decode(self, x: Tensor) -> Tensor:
        """Greedy decoding -> pointers (B, n+1); IGNORE after the first END."""
        memory, slots, state = self.encode(x)
        B, S, _ = memory.shape
        allowed = torch.ones(B, S, dtype=torch.bool, device=x.device)
        done = torch.zeros(B, dtype=torch.bool, device=x.device)
        inp, out = self.start.expand(B, 1, -1), []
        for _ in range(S):
            query, state = self.decoder(inp, state)  # (B, 1, H)
            choice = self.point(query, memory, allowed.unsqueeze(1))[:, 0].argmax(-1)  # (B,)
            out.append(torch.where(done, data.IGNORE, choice))
            done = done | (choice == data.END)
            rows = torch.arange(B, device=x.device)
            if self.mask_visited:
                allowed[rows, choice] = False
                allowed[:, data.END] = True
            inp = slots[rows, choice].unsqueeze(1)
            if bool(done.all()):
                break
        return torch.stack(out, 1)


def hull_coverage(points: list[tuple[float, float]], pred: list[int], true: list[int]) -> float:
    """|area(predicted polygon)| / area(true hull); pointer ids include END (see module doc)."""
    if data.END not in pred:
        return 0.0
    vertices = [p - 1 for p in pred[: pred.index(data.END)]]
    if len(vertices) < 3 or len(set(vertices)) < len(vertices):
        return 0.0
    truth = [t - 1 for t in true[: true.index(data.END)]]
    return abs(data.polygon_area(points, vertices)) / data.polygon_area(points, truth)


class PointerNetTask(Task):
    """Pointer network; metric val_seq_acc (max); throughput in seqs_per_s."""

    name = "pointer_net"
    metric = "val_seq_acc"
    mode = "max"
    config_cls = PointerConfig
    throughput_key = "seqs_per_s"
    val_metrics = ("val_seq_acc", "val_pos_acc", "val_area_coverage")   # the last: convex_hull only

    def check(self, cfg: PointerConfig, layered: dict) -> None:
        super().check(cfg, layered)
        smallest = 3 if cfg.problem == "convex_hull" else 1
        for low, high in (("n_min", "n_max"), ("val_n_min", "val_n_max")):
            if getattr(cfg, low) > getattr(cfg, high):
                raise ValueError(f"pointer_net config: {low}={getattr(cfg, low)} exceeds "
                                 f"{high}={getattr(cfg, high)}")
            if getattr(cfg, low) < smallest:
                raise ValueError(f"pointer_net config: {low}={getattr(cfg, low)} is below "
                                 f"{smallest} for problem={cfg.problem}")

    def build(self, cfg: PointerConfig, device: torch.device, seed: int) -> Run:
        model = PointerNet(cfg, in_dim=1 if cfg.problem == "sort" else 2).to(device)
        rng = random.Random(seed)
        val = data.val_set(cfg.problem, cfg.val_n_min, cfg.val_n_max)

        def loss_step() -> tuple[Tensor, int]:
            n = rng.randint(cfg.n_min, cfg.n_max)
            x, targets, _ = data.make_batch(cfg.problem, n, cfg.batch_size, rng)
            x, targets = x.to(device), targets.to(device)
            scores = model(x, targets)  # (B, T, n+1)
            loss = F.cross_entropy(scores.flatten(0, 1), targets.flatten(),
                                   ignore_index=data.IGNORE)
            return loss, cfg.batch_size

        def evaluate() -> dict[str, float]:
            seq_hits = pos_hits = positions = examples = 0
            coverage = 0.0
            for x, targets, raw in val:
                pred = model.decode(x.to(device)).cpu()
                T = max(pred.size(1), targets.size(1))
                pred = F.pad(pred, (0, T - pred.size(1)), value=data.IGNORE)
                true = F.pad(targets, (0, T - targets.size(1)), value=data.IGNORE)
                seq_hits += int((pred == true).all(1).sum())
                real = (true != data.IGNORE) & (true != data.END)
                pos_hits += int(((pred == true) & real).sum())
                positions += int(real.sum())
                examples += len(raw)
                if cfg.problem == "convex_hull":
                    coverage += sum(hull_coverage(pts, p, t) for pts, p, t
                                    in zip(raw, pred.tolist(), true.tolist()))
            metrics = {"val_seq_acc": seq_hits / examples, "val_pos_acc": pos_hits / positions}
            if cfg.problem == "convex_hull":
                metrics["val_area_coverage"] = coverage / examples
            return metrics

        return Run(model=model, loss_step=loss_step, evaluate=evaluate)
