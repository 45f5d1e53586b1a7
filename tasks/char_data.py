"""Character-level text data for char_lm: load, encode, split 90/10 by position, and batch
as parallel contiguous streams (truncated BPTT with the hidden state carried between steps).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import torch

from tasks.data import TINY_SHAKESPEARE

TRAIN_FRACTION = 0.9  # first 90% of the characters train, the last 10% validate
EVAL_STREAMS = 64  # the validation subset is read as this many parallel contiguous streams


@dataclass(frozen=True)
class Corpus:
    """An encoded text: vocabulary plus train/val id tensors (int64, CPU)."""

    chars: tuple[str, ...]  # vocabulary: the sorted distinct characters of the whole file
    train: torch.Tensor  # (N_train,) character ids
    val: torch.Tensor  # (N_val,) character ids

    @property
    def vocab_size(self) -> int:
        return len(self.chars)


@functools.lru_cache(maxsize=8)
def load_corpus(path: str | None = None) -> Corpus:
    """Read a UTF-8 text file (default: bundled tiny-shakespeare) and split it 90/10 by position.

    Cached by path, so several runs in one process share the (read-only) tensors.
    """
    text = Path(path or TINY_SHAKESPEARE).read_text(encoding="utf-8")
    chars = tuple(sorted(set(text)))
    index = {c: i for i, c in enumerate(chars)}
    ids = torch.tensor([index[c] for c in text], dtype=torch.long)
    cut = int(len(ids) * TRAIN_FRACTION)
    return Corpus(chars=chars, train=ids[:cut], val=ids[cut:])


class StreamBatcher:
    """Cuts the train split into ``batch_size`` contiguous streams and serves consecutive
    ``seq_len`` windows of all of them, wrapping around at the end.

    Yields (x, y) with y the next characters of x; since window k+1 continues window k in every
    stream, the model may carry its hidden state across steps (detached).
    """

    def __init__(self, ids: torch.Tensor, batch_size: int, seq_len: int, device: torch.device):
        length = (len(ids) - 1) // batch_size
        if length < seq_len + 1:
            raise ValueError(f"text too short for batch_size={batch_size}, seq_len={seq_len}")
        self.x = ids[: length * batch_size].view(batch_size, length).to(device)  # (B, L)
        self.y = ids[1 : length * batch_size + 1].view(batch_size, length).to(device)  # (B, L)
        self.seq_len = seq_len
        self.pos = 0
        self.wrapped = False  # True on the step where the streams restart from their beginning

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.pos + self.seq_len > self.x.size(1):
            self.pos, self.wrapped = 0, True
        else:
            self.wrapped = False
        window = slice(self.pos, self.pos + self.seq_len)
        self.pos += self.seq_len
        return self.x[:, window], self.y[:, window]  # (B, T), (B, T)


def eval_streams(ids: torch.Tensor, eval_chars: int,
                 device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed validation subset: the first ``eval_chars`` characters of the val split (capped
    by its length, rounded down to a multiple of EVAL_STREAMS), as (inputs, targets) each
    (EVAL_STREAMS, L) contiguous streams. Every target character is predicted exactly once."""
    usable = min(eval_chars, len(ids) - 1) // EVAL_STREAMS * EVAL_STREAMS
    if usable < EVAL_STREAMS:
        raise ValueError(f"validation split of {len(ids)} characters is too short to evaluate")
    x = ids[:usable].view(EVAL_STREAMS, -1)
    y = ids[1 : usable + 1].view(EVAL_STREAMS, -1)
    return x.to(device), y.to(device)
