"""`K=V,...` option strings (CLI `--controller-options`, benchmark variants): stdlib only, so the
torch-only device scripts can use it too."""
from __future__ import annotations

import json
from typing import Any, Mapping


def parse_pairs(text: str) -> dict[str, Any]:
    """'lr=0.01,elite_size=0' -> {'lr': 0.01, 'elite_size': 0} (JSON values, else strings)."""
    out: dict[str, Any] = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"needs KEY=VALUE pairs separated by commas (got {pair!r})")
        try:
            out[key.strip()] = json.loads(raw)
        except ValueError:
            out[key.strip()] = raw  # bare strings such as peephole_lstm
    return out


def format_pairs(options: Mapping[str, Any]) -> str:
    """The inverse of `parse_pairs` (for a command line)."""
    return ",".join(f"{k}={json.dumps(v)}" for k, v in options.items())
