"""The RNN controller (torch + search_spaces only). The service layer (cli, jobs, searcher)
lives beside it but is imported lazily so the policy runs where Ray is not installed."""
from __future__ import annotations

from .controller import Controller, ControllerOptions
from .policy import Policy, PolicyConfig

__all__ = ["Controller", "ControllerOptions", "Policy", "PolicyConfig"]
