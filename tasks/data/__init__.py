"""Bundled data files of the child tasks (see README.md here for provenance)."""

from __future__ import annotations

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent  # folder holding the bundled files
TINY_SHAKESPEARE = DATA_DIR / "tinyshakespeare.txt"  # char_lm's default corpus
