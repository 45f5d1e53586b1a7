"""Attention scores shared by seq2seq (context vectors) and pointer_net (pointers, glimpses).

For a decoder query z and memory vectors h_j (encoder outputs):
  dot       score_j = z . h_j                      (Luong; needs equal sizes)
  bilinear  score_j = z^T W h_j                    (Luong "general")
  mlp       score_j = v^T tanh(W1 h_j + W2 z)      (Bahdanau / Vinyals pointer)
Queries are (B, T, Q) so T decoder steps can be scored at once (T = 1 for step-wise decoding).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

ATTENTIONS = ("dot", "bilinear", "mlp")


class Attention(nn.Module):
    """Scores T queries against S memory slots; masked softmax gives the weights."""

    def __init__(self, kind: str, query_size: int, memory_size: int):
        super().__init__()
        if kind not in ATTENTIONS:
            raise ValueError(f"attention={kind!r} is not one of {', '.join(ATTENTIONS)}")
        if kind == "dot" and query_size != memory_size:
            raise ValueError(f"dot attention needs query_size == memory_size, got "
                             f"{query_size} and {memory_size}")
        self.kind = kind
        if kind == "bilinear":
            self.w = nn.Linear(memory_size, query_size, bias=False)  # W h_j
        elif kind == "mlp":
            self.w_mem = nn.Linear(memory_size, query_size, bias=False)  # W1 h_j
            self.w_query = nn.Linear(query_size, query_size)  # W2 z (+ bias)
            self.v = nn.Linear(query_size, 1, bias=False)

    def keys(self, memory: Tensor) -> Tensor:
        """Per-slot precomputation, done once per source: (B, S, M) -> (B, S, K)."""
        if self.kind == "bilinear":
            return self.w(memory)
        if self.kind == "mlp":
            return self.w_mem(memory)
        return memory

    def scores(self, query: Tensor, keys: Tensor, mask: Tensor | None = None) -> Tensor:
        """query (B, T, Q), keys (B, S, K), mask (B, S) or (B, T, S) True = may attend
        -> scores (B, T, S), -inf where masked."""
        if self.kind == "mlp":
            hidden = torch.tanh(keys.unsqueeze(1) + self.w_query(query).unsqueeze(2))  # (B,T,S,Q)
            scores = self.v(hidden).squeeze(-1)  # (B, T, S)
        else:
            scores = torch.bmm(query, keys.transpose(1, 2))  # (B, T, S)
        if mask is not None:
            scores = scores.masked_fill(~(mask.unsqueeze(1) if mask.dim() == 2 else mask),
                                        float("-inf"))
        return scores

    def forward(self, query: Tensor, keys: Tensor, memory: Tensor,
                mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """-> context (B, T, M) = weights @ memory, weights (B, T, S)."""
        weights = torch.softmax(self.scores(query, keys, mask), dim=-1)  # (B, T, S)
        return torch.bmm(weights, memory), weights
