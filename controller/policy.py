"""The controller's LSTM policy (Zoph & Le 2017; ENAS-style heads).

One step per slot of the search space. A shared token embedding feeds the previously sampled
token back as the next input (a learned start vector before the first one); stacked LSTMCells;
one linear head per slot. A sequence only advances on its *active* slots, so conditional and
repeat decisions give variable-length sequences inside one batch: inactive rows keep their
state and input unchanged (masked update).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import torch
from torch import nn
from torch.nn import functional as F

SCORE_ROWS = 32       # `Policy.score` pads its batch to a multiple of this many rows


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run the tiny policy ops on one intra-op thread: on a busy machine (children training
    beside the driver) OpenMP spinning made ask+tell far slower with 2 threads than with 1."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass
class PolicyConfig:
    hidden_size: int = 32        # LSTM width and token-embedding size
    num_layers: int = 1          # stacked LSTMCells
    temperature: float = 1.0     # logits / temperature (before tanh clipping)
    tanh_c: float | None = 2.5   # logits -> tanh_c * tanh(logits); None disables clipping


class Policy(nn.Module):
    def __init__(self, slot_sizes: Sequence[int], cfg: PolicyConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.slot_sizes = list(slot_sizes)
        offsets = [0]
        for n in self.slot_sizes[:-1]:
            offsets.append(offsets[-1] + n)
        self.register_buffer("offsets", torch.tensor(offsets, dtype=torch.long), persistent=False)
        h = cfg.hidden_size
        self.embedding = nn.Embedding(sum(self.slot_sizes), h)      # shared token vocabulary
        self.start = nn.Parameter(torch.zeros(1, h))                # learned first input
        self.cells = nn.ModuleList(nn.LSTMCell(h, h) for _ in range(cfg.num_layers))
        self.heads = nn.ModuleList(nn.Linear(h, n) for n in self.slot_sizes)
        for p in self.parameters():
            nn.init.uniform_(p, -0.1, 0.1)                           # ENAS / NAS-RL init

    def initial(self, batch: int) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        h = self.cfg.hidden_size
        zeros = self.start.new_zeros(batch, h)
        return self.start.expand(batch, h), [(zeros, zeros) for _ in self.cells]

    def logits(self, slot: int, x: torch.Tensor, state: list) -> tuple[torch.Tensor, list]:
        """One LSTM step at `slot`. x: (B, H) -> logits (B, n_choices), new state."""
        new_state = []
        for cell, (h, c) in zip(self.cells, state):
            h, c = cell(x, (h, c))
            new_state.append((h, c))
            x = h
        out = self.heads[slot](x) / self.cfg.temperature
        if self.cfg.tanh_c:
            out = self.cfg.tanh_c * torch.tanh(out)
        return out, new_state

    def run(self, batch: int, choose: Callable[[int, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
            ) -> tuple[torch.Tensor, torch.Tensor]:
        """Walk every slot once. `choose(slot, logits)` returns (tokens (B,), active (B,) bool);
        returns summed log-probs (B,) and summed entropies (B,) over active slots."""
        logp = self.start.new_zeros(batch)
        ent = self.start.new_zeros(batch)

        def scored(slot: int, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            nonlocal logp, ent
            tokens, active = choose(slot, logits)
            log_probs = F.log_softmax(logits, dim=-1)
            m = active.to(logits.dtype)
            logp = logp + m * log_probs.gather(1, tokens.unsqueeze(1)).squeeze(1)
            ent = ent - m * (log_probs.exp() * log_probs).sum(-1)
            return tokens, active

        self.walk(batch, scored)
        return logp, ent

    def walk(self, batch: int, choose: Callable[[int, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Walk every slot once, feeding back the tokens `choose(slot, logits)` picks (and
        holding a row's state where its slot is inactive; `active` None: every row is active);
        no log-probs, as sampling needs none."""
        x, state = self.initial(batch)
        for slot in range(len(self.slot_sizes)):
            logits, new_state = self.logits(slot, x, state)
            tokens, active = choose(slot, logits)
            embedded = self.embedding(tokens + self.offsets[slot])
            if active is None:                   # every row active: nothing to hold
                state, x = new_state, embedded
                continue
            keep = active.unsqueeze(1)
            state = [(torch.where(keep, h1, h0), torch.where(keep, c1, c0))
                     for (h1, c1), (h0, c0) in zip(new_state, state)]
            x = torch.where(keep, embedded, x)

    def score(self, tokens: torch.Tensor, active: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Re-score stored sequences. tokens, active: (B, S) -> log-probs (B,), entropies (B,).

        Teacher forcing knows every input in advance, so each row's active slots are packed to
        the front and the stacked LSTM runs as one fused op (the same numbers as `run`). The
        batch is padded with empty rows to a multiple of `SCORE_ROWS`: the CPU LSTM kernel
        (oneDNN) builds a new primitive for every new batch size, and the replayed history
        grows by a few rows each update."""
        rows = tokens.shape[0]
        pad = -rows % SCORE_ROWS             # empty rows up to a multiple: few distinct LSTM shapes
        if pad:
            tokens = torch.cat([tokens, tokens.new_zeros(pad, tokens.shape[1])])
            active = torch.cat([active, active.new_zeros(pad, active.shape[1])])
        batch, slots = tokens.shape
        lengths = active.sum(1)
        steps = max(1, int(lengths.max()))
        order = torch.argsort((~active).long() * slots + torch.arange(slots), dim=1)[:, :steps]  # (B, L)
        valid = torch.arange(steps) < lengths[:, None]                                          # (B, L)
        toks = tokens.gather(1, order) * valid
        h = self.cfg.hidden_size
        emb = self.embedding(toks + self.offsets[order])                                        # (B, L, H)
        x = torch.cat([self.start.expand(batch, 1, h), emb[:, :-1]], 1)
        zeros = x.new_zeros(self.cfg.num_layers, batch, h)
        weights = [w for c in self.cells for w in (c.weight_ih, c.weight_hh, c.bias_ih, c.bias_hh)]
        out = torch.lstm(x, (zeros, zeros), weights, True, self.cfg.num_layers, 0.0, False, False, True)[0]
        width = max(self.slot_sizes)
        w = torch.stack([F.pad(hd.weight, (0, 0, 0, width - hd.out_features)) for hd in self.heads])
        b = torch.stack([F.pad(hd.bias, (0, width - hd.out_features)) for hd in self.heads])
        every = (out @ w.reshape(-1, h).T + b.reshape(-1)).view(batch, steps, slots, width)      # all heads
        logits = every.gather(2, order[..., None, None].expand(batch, steps, 1, width)).squeeze(2)  # (B, L, C)
        logits = logits / self.cfg.temperature
        if self.cfg.tanh_c:
            logits = self.cfg.tanh_c * torch.tanh(logits)
        sizes = torch.tensor(self.slot_sizes)[order]
        real = torch.arange(width) < sizes[..., None]                                            # (B, L, C)
        log_probs = F.log_softmax(logits.masked_fill(~real, -1e9), -1)    # finite: no NaN grads
        logp = log_probs.gather(2, toks.unsqueeze(2)).squeeze(2)
        ent = -torch.where(real, log_probs.exp() * log_probs, torch.zeros(()))
        m = valid.to(logits.dtype)
        return (logp * m).sum(1)[:rows], (ent.sum(2) * m).sum(1)[:rows]

    def score_stepwise(self, tokens: torch.Tensor, active: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`score` by walking the slots one at a time, as sampling does (the reference)."""
        return self.run(tokens.shape[0], lambda slot, _: (tokens[:, slot], active[:, slot]))
