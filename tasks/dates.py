"""Date-normalisation data for seq2seq: human-written dates -> ISO ``YYYY-MM-DD``.

Dates span 1950-01-01 .. 2049-12-31 (so two-digit years are unambiguous: 50-99 -> 19xx,
00-49 -> 20xx). A fixed set of VAL_SIZE dates, drawn once with ``random.Random(DATA_SEED)``,
is held out: training never sees those dates in any format. Each example renders its date
with one of FORMATS chosen at random (training: the run's seeded RNG; validation: fixed).
"""

from __future__ import annotations

import datetime as dt
import functools
import random
from typing import Callable

import torch

FIRST_DAY = dt.date(1950, 1, 1)  # first date generated
LAST_DAY = dt.date(2049, 12, 31)  # last date generated
DATA_SEED = 1234  # fixes the held-out dates and their validation formats
VAL_SIZE = 1000  # held-out validation examples (distinct dates)

MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august",
          "september", "october", "november", "december")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def ordinal(n: int) -> str:
    """1 -> '1st', 2 -> '2nd', 11 -> '11th', 23 -> '23rd'."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _parts(d: dt.date) -> dict[str, str]:
    month, weekday = MONTHS[d.month - 1], WEEKDAYS[d.weekday()]
    return {"d": str(d.day), "dd": f"{d.day:02d}", "m": str(d.month), "mm": f"{d.month:02d}",
            "yyyy": str(d.year), "yy": f"{d.year % 100:02d}", "month": month,
            "Month": month.capitalize(), "mon": month[:3], "Mon": month[:3].capitalize(),
            "MON": month[:3].upper(), "weekday": weekday, "Weekday": weekday.capitalize(),
            "wkd": weekday[:3], "dth": ordinal(d.day)}


# Surface formats; ``{m}/{d}/{yy}`` is the only slash order with the year last (US order).
FORMATS: tuple[str, ...] = (
    "{weekday}, {d} {month} {yyyy}",  # tuesday, 3 march 1998
    "{m}/{d}/{yy}",  # 3/3/98
    "{Month} {dth}, {yyyy}",  # March 3rd, 1998
    "{dd}.{mm}.{yyyy}",  # 03.03.1998
    "{d} {Mon} {yyyy}",  # 3 Mar 1998
    "{Mon} {d}, {yyyy}",  # Mar 3, 1998
    "{Weekday}, {Month} {d}, {yyyy}",  # Tuesday, March 3, 1998
    "the {dth} of {month} {yyyy}",  # the 3rd of march 1998
    "{dd}-{MON}-{yyyy}",  # 03-MAR-1998
    "{wkd} {d} {mon} {yy}",  # tue 3 mar 98
    "{yyyy}/{mm}/{dd}",  # 1998/03/03
    "{yyyy}{mm}{dd}",  # 19980303
    "{d} {month} {yyyy}",  # 3 march 1998
)

SRC_CHARS = " ,-./0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
PAD, BOS, EOS = 0, 1, 2  # special ids, shared by both vocabularies (BOS/EOS unused in sources)
SRC_VOCAB = ("<pad>", "<bos>", "<eos>") + tuple(SRC_CHARS)  # source character vocabulary
TGT_VOCAB = ("<pad>", "<bos>", "<eos>") + tuple("0123456789-")  # target character vocabulary
TGT_LEN = 11  # "YYYY-MM-DD" plus EOS
SRC_INDEX = {c: i for i, c in enumerate(SRC_VOCAB)}
TGT_INDEX = {c: i for i, c in enumerate(TGT_VOCAB)}


def render(d: dt.date, fmt: int) -> tuple[str, str]:
    """(human-written date in format ``fmt``, ISO target)."""
    return FORMATS[fmt].format(**_parts(d)), d.isoformat()


@functools.lru_cache(maxsize=1)
def split_dates() -> tuple[tuple[dt.date, ...], tuple[dt.date, ...]]:
    """(train dates, held-out val dates): disjoint, fixed by DATA_SEED."""
    days = [FIRST_DAY + dt.timedelta(k) for k in range((LAST_DAY - FIRST_DAY).days + 1)]
    held = set(random.Random(DATA_SEED).sample(range(len(days)), VAL_SIZE))
    train = tuple(d for k, d in enumerate(days) if k not in held)
    val = tuple(days[k] for k in sorted(held))
    return train, val


def encode(pairs: list[tuple[str, str]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Source ids (B, S_max) right-padded, source lengths (B,), target ids (B, TGT_LEN)."""
    width = max(len(src) for src, _ in pairs)
    src = torch.full((len(pairs), width), PAD, dtype=torch.long)
    for b, (text, _) in enumerate(pairs):
        src[b, : len(text)] = torch.tensor([SRC_INDEX[c] for c in text])
    lengths = torch.tensor([len(text) for text, _ in pairs])
    tgt = torch.tensor([[TGT_INDEX[c] for c in iso] + [EOS] for _, iso in pairs])
    return src, lengths, tgt


@functools.lru_cache(maxsize=1)
def val_examples() -> tuple[tuple[str, str, int], ...]:
    """The fixed validation examples (source, target, format index): every held-out date in
    one format drawn with a fixed RNG."""
    rng = random.Random(DATA_SEED + 1)
    out = []
    for d in split_dates()[1]:
        fmt = rng.randrange(len(FORMATS))
        out.append((*render(d, fmt), fmt))
    return tuple(out)


def train_sampler(seed: int) -> Callable[[int], list[tuple[str, str]]]:
    """A function batch_size -> training pairs, drawn from the train dates with a seeded RNG."""
    rng = random.Random(seed)
    train = split_dates()[0]
    return lambda n: [render(rng.choice(train), rng.randrange(len(FORMATS))) for _ in range(n)]


def decode_target(ids: list[int]) -> list[str]:
    """Target ids -> characters up to the first EOS (specials shown as <pad>, <bos>)."""
    out = []
    for i in ids:
        if i == EOS:
            break
        out.append(TGT_VOCAB[i])
    return out
