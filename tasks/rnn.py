"""Recurrent building blocks shared by the tasks: a layer stack over fused nn.RNN / nn.GRU /
nn.LSTM (one fused module when every layer has the same width) and a peephole LSTM layer
whose time loop is TorchScript-compiled when TorchScript is available.

State convention, for every block in a stack: ``h`` (layers*dirs, B, H) for rnn/gru and a
tuple ``(h, c)`` of such tensors for lstm/peephole_lstm, as nn.LSTM uses.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, List, Tuple

import torch
from torch import Tensor, nn

CELLS = ("rnn", "gru", "lstm", "peephole_lstm")
FUSED = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


def _peephole_loop(gx: Tensor, h: Tensor, c: Tensor, w_hh: Tensor,
                   w_peep: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """Run the peephole recurrence over time. gx: (B, T, 4H) input projections (bias
    included); h, c: (B, H); w_hh: (4H, H); w_peep: (3, H) diagonal peepholes for i, f, o."""
    outs: List[Tensor] = []
    w_t = w_hh.t()  # (H, 4H)
    gx = gx.transpose(0, 1).contiguous()  # (T, B, 4H): contiguous per-step slices
    p_i, p_f, p_o = w_peep[0], w_peep[1], w_peep[2]  # (H,) each
    for t in range(gx.size(0)):
        gates = torch.addmm(gx[t], h, w_t)  # (B, 4H)
        i, f, g, o = gates.chunk(4, 1)
        i = torch.sigmoid(torch.addcmul(i, p_i, c))  # input gate sees c_{t-1}
        f = torch.sigmoid(torch.addcmul(f, p_f, c))  # forget gate sees c_{t-1}
        c = torch.addcmul(f * c, i, torch.tanh(g))
        o = torch.sigmoid(torch.addcmul(o, p_o, c))  # output gate sees the new c_t
        h = o * torch.tanh(c)
        outs.append(h)
    return torch.stack(outs, 1), h, c  # (B, T, H), (B, H), (B, H)


def _compile(fn: Any) -> Any:
    """torch.jit.script ``fn`` (deprecated in recent torch, hence the silenced warning); fall
    back to plain Python where scripting is unavailable."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.jit.script(fn)
    except Exception:  # noqa: BLE001 - any scripting failure means: run it eagerly
        return fn


peephole_loop = _compile(_peephole_loop)


class PeepholeLSTM(nn.Module):
    """One LSTM layer with peephole connections (Gers & Schmidhuber 2000): the i and f gates
    see c_{t-1} and the o gate sees c_t through diagonal (element-wise) weights."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.hidden_size = hidden_size
        self.w_ih = nn.Linear(input_size, 4 * hidden_size)  # gates i, f, g, o from x_t
        self.w_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size))  # ... from h_{t-1}
        self.w_peep = nn.Parameter(torch.empty(3, hidden_size))  # diagonal peepholes i, f, o
        bound = 1.0 / math.sqrt(hidden_size)  # the same init as nn.LSTM
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Any]:
        B = x.size(0)  # x: (B, T, I)
        if state is None:
            zeros = x.new_zeros(1, B, self.hidden_size)
            state = (zeros, zeros)
        gx = self.w_ih(x)  # (B, T, 4H)
        out, h, c = peephole_loop(gx, state[0][0], state[1][0], self.w_hh, self.w_peep)
        return out, (h.unsqueeze(0), c.unsqueeze(0))  # (B, T, H), ((1, B, H), (1, B, H))


class Recurrent(nn.Module):
    """A deep RNN: layers of widths ``hidden_sizes`` with dropout between layers.

    Uses one fused multi-layer nn.RNN/GRU/LSTM when all widths are equal (cuDNN pipelines the
    layers), else one module per layer. batch_first: x (B, T, I) -> out (B, T, H_last * dirs).
    """

    def __init__(self, cell: str, input_size: int, hidden_sizes: list[int], dropout: float = 0.0,
                 bidirectional: bool = False):
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"cell={cell!r} is not one of {', '.join(CELLS)}")
        if bidirectional and cell == "peephole_lstm":
            raise ValueError("peephole_lstm has no bidirectional variant")
        dirs = 2 if bidirectional else 1
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList()
        if cell != "peephole_lstm" and len(set(hidden_sizes)) == 1:
            groups = [(hidden_sizes[0], len(hidden_sizes))]
        else:
            groups = [(h, 1) for h in hidden_sizes]
        for hidden, layers in groups:
            if cell == "peephole_lstm":
                block: nn.Module = PeepholeLSTM(input_size, hidden)
            else:
                block = FUSED[cell](input_size, hidden, num_layers=layers, batch_first=True,
                                    dropout=dropout if layers > 1 else 0.0,
                                    bidirectional=bidirectional)
            self.blocks.append(block)
            input_size = hidden * dirs

    def forward(self, x: Tensor, state: list | None = None) -> tuple[Tensor, list]:
        new_state = []
        for k, block in enumerate(self.blocks):
            if k > 0:
                x = self.dropout(x)
            x, s = block(x, None if state is None else state[k])
            new_state.append(s)
        return x, new_state  # x: (B, T, H_last * dirs)


def detach_state(state: Any) -> Any:
    """The same nested list/tuple of tensors, cut from the autograd graph (truncated BPTT)."""
    if isinstance(state, Tensor):
        return state.detach()
    return type(state)(detach_state(s) for s in state)
