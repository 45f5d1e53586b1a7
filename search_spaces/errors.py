"""`SpecError` and the bounded value display its messages use."""
from __future__ import annotations

import reprlib
from typing import Any

_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 80
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxtuple, _SHORT.maxdict = 2, 6, 6, 6


def show(value: Any, limit: int = 200) -> str:
    """A bounded repr for messages: a spec value can be megabytes (or an alias bomb)."""
    text = _SHORT.repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def path_part(key: Any) -> str:
    """A mapping key as a path component, bounded."""
    text = str(key) if isinstance(key, (str, int, float, bool)) else show(key)
    return text if len(text) <= 40 else text[:37] + "..."


class SpecError(ValueError):
    """An invalid search-space spec. The message names the path and the bad value."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(f"{path}: {message}")
