"""char_lm: a character-level recurrent language model on tiny-shakespeare (or any text file).

Training is truncated BPTT over ``batch_size`` contiguous streams of the train split (90%),
the hidden state carried (detached) from one ``seq_len`` window to the next. The metric is
``val_loss``, mean cross-entropy in nats/char on a fixed validation subset: the first
``eval_chars`` characters of the val split read as 64 parallel streams with the hidden state
carried, so every model is scored on the same characters whatever its seq_len
(``val_bpc`` = val_loss / ln 2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tasks.base import Run, Task, TrainConfig, derived, param
from tasks.char_data import StreamBatcher, eval_streams, load_corpus
from tasks.rnn import CELLS, Recurrent, detach_state

EVAL_CHUNK = 512  # validation streams are fed in windows of this many steps (memory bound)


@dataclass
class CharLMConfig(TrainConfig):
    """char_lm hyperparameters (the shared optimisation keys come from TrainConfig)."""

    cell: str = param("lstm", choices=CELLS)  # peephole_lstm: gates also see c (diagonal weights)
    layers: int = param(1, low=1, high=8)  # stacked recurrent layers
    hidden: int = param(256, low=1, high=4096)  # units per layer; keys hidden_1..hidden_L override
    embed: int = param(64, low=1, high=4096)  # character embedding size
    dropout: float = param(0.0, low=0.0, high=0.9)  # on embeddings, between layers, before decoder
    tied: bool = param(False)  # decoder reuses the embedding matrix; if the top layer's width is
    #                            not `embed`, a bias-free Linear(hidden, embed) projects first
    seq_len: int = param(128, low=2, high=4096)  # BPTT window: characters per stream per step
    eval_chars: int = param(32768, low=64)  # size of the fixed validation subset (see module doc)
    data_path: str | None = param(None)  # UTF-8 text to train on instead of tiny-shakespeare
    lr: float = param(4e-3, low=0.0)  # learning rate
    batch_size: int = param(32, low=1, high=4096)  # parallel streams
    steps_per_epoch: int = param(50, low=1)  # optimisation steps per epoch
    layer_hidden: tuple = derived(())  # widths per layer, from hidden_k keys or `hidden`


class CharRNN(nn.Module):
    """Embedding -> deep RNN -> (projection) -> linear decoder over the vocabulary."""

    def __init__(self, cfg: CharLMConfig, vocab_size: int):
        super().__init__()
        widths = list(cfg.layer_hidden) or [cfg.hidden] * cfg.layers
        self.embed = nn.Embedding(vocab_size, cfg.embed)
        self.drop = nn.Dropout(cfg.dropout)
        self.rnn = Recurrent(cfg.cell, cfg.embed, widths, cfg.dropout)
        top = widths[-1]
        needs_proj = cfg.tied and top != cfg.embed
        self.proj = nn.Linear(top, cfg.embed, bias=False) if needs_proj else nn.Identity()
        self.head = nn.Linear(cfg.embed if cfg.tied else top, vocab_size)
        if cfg.tied:
            self.head.weight = self.embed.weight  # (V, E) shared

    def forward(self, x: Tensor, state: list | None = None,
                targets: Tensor | None = None) -> tuple[Tensor, Tensor | None, list]:
        """x: (B, T) ids -> logits (B, T, V), mean loss over targets (B, T) if given, state."""
        h = self.drop(self.embed(x))  # (B, T, E)
        h, state = self.rnn(h, state)  # (B, T, H_top)
        logits = self.head(self.proj(self.drop(h)))  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        return logits, loss, state


class CharLMTask(Task):
    """Character-level LM; metric val_loss (nats/char, min); throughput in tokens_per_s."""

    name = "char_lm"
    metric = "val_loss"
    mode = "min"
    config_cls = CharLMConfig
    throughput_key = "tokens_per_s"
    val_metrics = ("val_loss", "val_bpc")
    per_layer = ("hidden",)
    full_validation = {"eval_chars": 1 << 40}  # capped by the split's length: all of it

    def check(self, cfg: CharLMConfig, layered: dict[str, dict[int, int]]) -> None:
        extra = sorted(k for k in layered.get("hidden", {}) if k > cfg.layers)
        if extra:
            raise ValueError(f"char_lm config: hidden_{extra[0]} given but layers={cfg.layers}")
        if cfg.data_path is not None and not Path(cfg.data_path).is_file():
            raise ValueError(f"char_lm config: data_path={cfg.data_path!r} is not a file")

    def layerwise(self, cfg: CharLMConfig, layered: dict[str, dict[int, int]]) -> dict:
        """hidden_k sets layer k's width; layers without a hidden_k key use ``hidden``."""
        given = layered.get("hidden", {})
        return {"layer_hidden": tuple(given.get(k, cfg.hidden) for k in range(1, cfg.layers + 1))}

    def build(self, cfg: CharLMConfig, device: torch.device, seed: int) -> Run:
        corpus = load_corpus(cfg.data_path)
        model = CharRNN(cfg, corpus.vocab_size).to(device)
        batches = StreamBatcher(corpus.train, cfg.batch_size, cfg.seq_len, device)
        val_x, val_y = eval_streams(corpus.val, cfg.eval_chars, device)
        carried: list = [None]  # the hidden state handed from one step to the next

        def loss_step() -> tuple[Tensor, int]:
            x, y = batches.next()  # (B, T) each
            state = None if batches.wrapped else carried[0]
            _, loss, state = model(x, state, y)
            carried[0] = detach_state(state)
            return loss, x.numel()

        def evaluate() -> dict[str, float]:
            total, state = 0.0, None
            for start in range(0, val_x.size(1), EVAL_CHUNK):
                window = slice(start, start + EVAL_CHUNK)
                logits, _, state = model(val_x[:, window], state)
                total += F.cross_entropy(logits.flatten(0, 1), val_y[:, window].flatten(),
                                         reduction="sum").item()
            loss = total / val_y.numel()
            return {"val_loss": loss, "val_bpc": loss / math.log(2)}

        return Run(model=model, loss_step=loss_step, evaluate=evaluate)
