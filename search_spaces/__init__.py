"""Declarative search spaces: YAML/dict specs compiled to token sequences (no torch/Ray/MLflow)."""
from __future__ import annotations

from .space import SearchSpace, builtin_names, load_space
from .spec import Slot, SpecError

__all__ = ["SearchSpace", "SpecError", "Slot", "load_space", "builtin_names"]
