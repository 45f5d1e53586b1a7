"""The RNN controller: an LSTM policy that writes a configuration token by token, trained by
policy gradient behind an ask/tell `Controller` (torch + search_spaces only)."""
from __future__ import annotations

from .controller import Controller
from .policy import Policy, PolicyConfig
from .sampling import SpaceExhausted
from .settings import ControllerOptions

__all__ = ["Controller", "ControllerOptions", "Policy", "PolicyConfig", "SpaceExhausted"]
