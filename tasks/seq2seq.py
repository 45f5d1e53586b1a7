"""seq2seq: a character-level encoder-decoder that rewrites human dates as ISO (see dates.py).

Encoder: embedding -> (bi)RNN over the packed source. Decoder: one RNN cell, Luong-style with
input feeding: state_t = cell([emb(y_{t-1}); a_{t-1}], state_{t-1}); context from attention
over the encoder outputs; a_t = tanh(W [context; z_t]); logits = V a_t. With
``attention: none`` the decoder sees the source only through the encoder's final state.

Metrics on the fixed held-out set (1,000 dates never trained on): ``val_exact_match`` (the
decoded output equals the target up to EOS; greedy when beam_size=1, else beam search),
``val_token_acc`` (per-position accuracy of the decoded output over the 11 target positions,
EOS included) and ``val_loss`` (teacher-forced cross-entropy, nats/char).
After each evaluation the task object's ``last_attention`` holds the greedy decoding of one
validation example (the first in format 0, e.g. "tuesday, 3 march 1998") as
``{"source": [chars], "target": [output chars, "<eos>"], "reference": "1998-03-03",
"weights": [[float] * len(source)] * len(target)}`` (rows: decoder steps), or None when
attention is "none".
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from tasks import dates
from tasks.attention import ATTENTIONS, Attention
from tasks.base import Run, Task, TrainConfig, param
from tasks.dates import BOS, EOS, PAD, TGT_LEN
from tasks.rnn import FUSED

STEP_CELLS = {"rnn": nn.RNNCell, "gru": nn.GRUCell, "lstm": nn.LSTMCell}
MAX_DECODE = TGT_LEN + 1  # decoding steps at evaluation


@dataclass
class Seq2SeqConfig(TrainConfig):
    """seq2seq hyperparameters (the shared optimisation keys come from TrainConfig)."""

    cell: str = param("gru", choices=tuple(STEP_CELLS))  # encoder and decoder cell
    enc_layers: int = param(1, low=1, high=6)  # stacked encoder layers (the decoder has one)
    bidirectional: bool = param(True)  # bidirectional encoder, hidden // 2 units per direction
    hidden: int = param(128, low=2, high=2048)  # encoder output size = decoder state size
    embed: int = param(32, low=1, high=1024)  # character embedding size (source and target)
    attention: str = param("mlp", choices=("none",) + ATTENTIONS)  # see tasks/attention.py
    teacher_forcing: float = param(1.0, low=0.0, high=1.0)  # P(feed the true previous char);
    #                   below 1, the model's own argmax is fed otherwise (scheduled sampling)
    attn_reg: float = param(0.0, low=0.0)  # weight of sum_j (sum_t a_tj - attn_tau)^2 (mean
    #                   over the batch) added to the loss; ignored when attention is "none"
    attn_tau: float = param(1.0, low=0.0)  # attention each source char should receive in total
    beam_size: int = param(1, low=1, high=16)  # evaluation beam width; 1 = greedy decoding
    lr: float = param(3e-3, low=0.0)  # learning rate
    steps_per_epoch: int = param(50, low=1)  # optimisation steps per epoch


@dataclass
class Encoded:
    """Encoder output for a batch, with what attention needs precomputed."""

    memory: Tensor  # (B, S, H) encoder outputs
    keys: Tensor | None  # (B, S, K) attention keys, None without attention
    mask: Tensor  # (B, S) True on real (non-pad) source positions

    def repeat(self, k: int) -> Encoded:
        """Each batch row repeated k times in place (for beam search)."""
        rep = lambda t: None if t is None else t.repeat_interleave(k, 0)  # noqa: E731
        return Encoded(rep(self.memory), rep(self.keys), rep(self.mask))


class Seq2Seq(nn.Module):
    """Character encoder-decoder with optional attention (see the module docstring)."""

    def __init__(self, cfg: Seq2SeqConfig):
        super().__init__()
        H, E, dirs = cfg.hidden, cfg.embed, 2 if cfg.bidirectional else 1
        self.lstm = cfg.cell == "lstm"
        self.src_embed = nn.Embedding(len(dates.SRC_VOCAB), E, padding_idx=PAD)
        self.tgt_embed = nn.Embedding(len(dates.TGT_VOCAB), E)
        self.encoder = FUSED[cfg.cell](E, H // dirs, num_layers=cfg.enc_layers, batch_first=True,
                                       bidirectional=cfg.bidirectional)
        self.attention = None if cfg.attention == "none" else Attention(cfg.attention, H, H)
        feed = H if self.attention is not None else 0  # input feeding of the last a_t
        self.decoder = STEP_CELLS[cfg.cell](E + feed, H)
        self.combine = nn.Linear(2 * H, H) if self.attention is not None else None
        self.head = nn.Linear(H, len(dates.TGT_VOCAB))

    def encode(self, src: Tensor, lengths: Tensor) -> tuple[Encoded, object, Tensor]:
        """src (B, S), lengths (B,) -> encoded source, initial decoder state, initial feed."""
        B, S = src.shape
        packed = pack_padded_sequence(self.src_embed(src), lengths.cpu(), batch_first=True,
                                      enforce_sorted=False)
        out, final = self.encoder(packed)
        memory, _ = pad_packed_sequence(out, batch_first=True, total_length=S)  # (B, S, H)

        def top(h: Tensor) -> Tensor:  # (layers * dirs, B, H/dirs) -> last layer (B, H)
            dirs = 2 if self.encoder.bidirectional else 1
            return h.view(-1, dirs, B, h.size(-1))[-1].transpose(0, 1).reshape(B, -1)

        state = (top(final[0]), top(final[1])) if self.lstm else top(final)
        keys = None if self.attention is None else self.attention.keys(memory)
        return Encoded(memory, keys, src != PAD), state, memory.new_zeros(B, memory.size(-1))

    def step(self, y_prev: Tensor, state: object, feed: Tensor,
             enc: Encoded) -> tuple[Tensor, object, Tensor, Tensor | None]:
        """One decoder step: y_prev (B,) -> logits (B, V), state, feed (B, H), weights (B, S)."""
        x = self.tgt_embed(y_prev)  # (B, E)
        if self.attention is not None:
            x = torch.cat([x, feed], dim=-1)  # (B, E + H)
        state = self.decoder(x, state)
        z = state[0] if self.lstm else state  # (B, H)
        if self.attention is None:
            return self.head(z), state, feed, None
        ctx, weights = self.attention(z.unsqueeze(1), enc.keys, enc.memory, enc.mask)
        feed = torch.tanh(self.combine(torch.cat([ctx.squeeze(1), z], dim=-1)))  # (B, H)
        return self.head(feed), state, feed, weights.squeeze(1)

    def forward(self, src: Tensor, lengths: Tensor, tgt: Tensor, coins: Tensor | None = None,
                teacher_forcing: float = 1.0) -> tuple[Tensor, Tensor | None]:
        """Training pass. tgt (B, T); coins (B, T) uniforms for scheduled sampling.
        -> logits (B, T, V), attention weights (B, T, S) or None."""
        enc, state, feed = self.encode(src, lengths)
        y = torch.full_like(tgt[:, 0], BOS)
        all_logits, all_weights = [], []
        for t in range(tgt.size(1)):
            logits, state, feed, weights = self.step(y, state, feed, enc)
            all_logits.append(logits)
            all_weights.append(weights)
            y = tgt[:, t]
            if coins is not None and teacher_forcing < 1.0:
                y = torch.where(coins[:, t] < teacher_forcing, y, logits.detach().argmax(-1))
        weights = None if self.attention is None else torch.stack(all_weights, 1)
        return torch.stack(all_logits, 1), weights


def _reorder(state: object, index: Tensor) -> object:
    return tuple(s[index] for s in state) if isinstance(state, tuple) else state[index]


@torch.no_grad()
def beam_search(model: Seq2Seq, src: Tensor, lengths: Tensor, beam: int) -> Tensor:
    """Batched beam search (beam=1 is greedy) -> best output ids (B, MAX_DECODE), PAD after
    EOS. Scores are summed log-probabilities (no length penalty: all targets have one length);
    a finished hypothesis keeps its score and emits PAD."""
    enc, state, feed = model.encode(src, lengths)
    B, K = src.size(0), beam
    copies = torch.arange(B * K, device=src.device) // K  # row b -> rows b*K .. b*K+K-1
    enc, state, feed = enc.repeat(K), _reorder(state, copies), feed[copies]
    scores = torch.full((B, K), float("-inf"), device=src.device)
    scores[:, 0] = 0.0  # only the first copy of each row starts alive
    tokens = torch.full((B * K,), BOS, dtype=torch.long, device=src.device)
    finished = torch.zeros(B * K, dtype=torch.bool, device=src.device)
    history: list[Tensor] = []
    for _ in range(MAX_DECODE):
        logits, state, feed, _ = model.step(tokens, state, feed, enc)
        logp = F.log_softmax(logits.float(), dim=-1)  # (B*K, V)
        done_row = torch.full_like(logp[0], float("-inf"))
        done_row[PAD] = 0.0
        logp = torch.where(finished.unsqueeze(1), done_row, logp)
        V = logp.size(1)
        scores, flat = (scores.view(-1, 1) + logp).view(B, K * V).topk(K, dim=1)  # (B, K)
        origin = (torch.arange(B, device=src.device).unsqueeze(1) * K + flat // V).view(-1)
        state, feed, finished = _reorder(state, origin), feed[origin], finished[origin]
        history = [h[origin] for h in history]
        tokens = (flat % V).view(-1)
        history.append(tokens)
        finished = finished | (tokens == EOS)
        if bool(finished.all()):
            break
    out = torch.stack(history, 1).view(B, K, -1)[:, 0]  # topk sorts: beam 0 is the best
    return F.pad(out, (0, MAX_DECODE - out.size(1)), value=PAD)


class Seq2SeqTask(Task):
    """Date normalisation; metric val_exact_match (max); throughput in tokens_per_s (target
    characters, EOS included)."""

    name = "seq2seq"
    metric = "val_exact_match"
    mode = "max"
    config_cls = Seq2SeqConfig
    throughput_key = "tokens_per_s"
    val_metrics = ("val_exact_match", "val_token_acc", "val_loss")

    def __init__(self) -> None:
        self.last_attention: dict | None = None  # see the module docstring

    def check(self, cfg: Seq2SeqConfig, layered: dict) -> None:
        super().check(cfg, layered)
        if cfg.bidirectional and cfg.hidden % 2:
            raise ValueError(f"seq2seq config: hidden={cfg.hidden} must be even when "
                             f"bidirectional=True (hidden // 2 units per direction)")

    def build(self, cfg: Seq2SeqConfig, device: torch.device, seed: int) -> Run:
        model = Seq2Seq(cfg).to(device)
        sample = dates.train_sampler(seed)
        coin_gen = torch.Generator().manual_seed(seed)
        examples = dates.val_examples()
        val_src, val_len, val_tgt = (t.to(device) for t in dates.encode([e[:2] for e in examples]))
        shown = next(i for i, e in enumerate(examples) if e[2] == 0)  # attention example

        def loss_step() -> tuple[Tensor, int]:
            src, lengths, tgt = (t.to(device) for t in dates.encode(sample(cfg.batch_size)))
            coins = torch.rand(tgt.shape, generator=coin_gen).to(device)
            logits, weights = model(src, lengths, tgt, coins, cfg.teacher_forcing)
            loss = F.cross_entropy(logits.flatten(0, 1), tgt.flatten())
            if weights is not None and cfg.attn_reg > 0:
                coverage = weights.sum(1)  # (B, S) attention each source char got over time
                penalty = ((coverage - cfg.attn_tau) ** 2 * (src != PAD)).sum(1).mean()
                loss = loss + cfg.attn_reg * penalty
            return loss, tgt.numel()

        def evaluate() -> dict[str, float]:
            logits, _ = model(val_src, val_len, val_tgt)
            loss = F.cross_entropy(logits.flatten(0, 1), val_tgt.flatten()).item()
            pred = beam_search(model, val_src, val_len, cfg.beam_size)[:, :TGT_LEN]  # (N, 11)
            hits = pred == val_tgt
            self.last_attention = self._attention_example(model, examples[shown][:2],
                                                          val_src[shown: shown + 1],
                                                          val_len[shown: shown + 1])
            return {"val_exact_match": hits.all(1).float().mean().item(),
                    "val_token_acc": hits.float().mean().item(), "val_loss": loss}

        return Run(model=model, loss_step=loss_step, evaluate=evaluate)

    @staticmethod
    def _attention_example(model: Seq2Seq, pair: tuple[str, str], src: Tensor,
                           length: Tensor) -> dict | None:
        """Greedy decoding of one source, with its attention weights per output step."""
        if model.attention is None:
            return None
        enc, state, feed = model.encode(src, length)
        y, out, rows = torch.full((1,), BOS, device=src.device), [], []
        for _ in range(MAX_DECODE):
            logits, state, feed, weights = model.step(y, state, feed, enc)
            y = logits.argmax(-1)
            out.append(int(y))
            rows.append([float(w) for w in weights[0, : len(pair[0])]])
            if out[-1] == EOS:
                break
        chars = dates.decode_target(out) + (["<eos>"] if out[-1] == EOS else [])
        return {"source": list(pair[0]), "target": chars, "reference": pair[1], "weights": rows}
