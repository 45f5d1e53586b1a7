"""Jobs: the option table (`options`), validation (`spec`), running and resuming (`run`,
`resume`), the Ray/Tune environment (`ray_env`), the driver's callbacks (`hooks`, `monitor`)
and plots.

    from hyperseq.jobs import run_search, best_configs, list_jobs
    result = run_search("char_lm", searcher="rnn", trials=20, concurrency=2, epochs=3)

Names are imported lazily, so the CLI can read the option table without loading Ray.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {"JobError": "options", "JobFailed": "options", "JobOptions": "options", "JobSpec": "spec", "prepare_job": "spec",
            "JobResult": "run", "execute": "run", "resume_search": "run", "run_search": "run",
            "best_configs": "..tracking.query", "best_across_jobs": "..tracking.query",
            "list_jobs": "..tracking.query"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}".replace("...", ".."), __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
