"""Write one section of BENCHMARKS.md (between HTML-comment markers) and describe the machine."""
from __future__ import annotations

import os
import platform
from datetime import date
from pathlib import Path

BENCHMARKS_MD = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"


def machine() -> str:
    gpu = ""
    try:
        import torch
        if torch.cuda.is_available():
            gpu = f", GPU {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    return f"{platform.machine()} {os.cpu_count()} CPUs{gpu}, Python {platform.python_version()}, {date.today()}"


def write_section(key: str, markdown: str, path: Path = BENCHMARKS_MD) -> None:
    """Replace (or append) the block between <!-- key --> and <!-- /key -->."""
    start, end = f"<!-- {key} -->", f"<!-- /{key} -->"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    block = f"{start}\n{markdown.rstrip()}\n{end}"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


def parse_variant(text: str) -> tuple[str, dict]:
    """'char_lm:cell=peephole_lstm,layers=2' -> ('char_lm', {'cell': ..., 'layers': 2})."""
    from controller.pairs import parse_pairs
    name, _, pairs = text.partition(":")
    return name, parse_pairs(pairs)
