"""hyperseq, the service: search jobs (Ray Tune + MLflow), searchers, schedulers, tracking,
cluster submission and the CLI, over the torch-only `controller`, `tasks` and `search_spaces`.

    from hyperseq import run_search, best_configs, list_jobs
    result = run_search("char_lm", searcher="rnn", trials=40)

Names are imported lazily (PEP 562), so ``import hyperseq`` loads neither Ray nor MLflow.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "run_search": "hyperseq.jobs", "resume_search": "hyperseq.jobs", "JobResult": "hyperseq.jobs",
    "best_configs": "hyperseq.tracking.query", "best_across_jobs": "hyperseq.tracking.query",
    "list_jobs": "hyperseq.tracking.query",
    "JobSpec": "hyperseq.jobs.spec", "JobError": "hyperseq.jobs.spec", "prepare_job": "hyperseq.jobs.spec",
    "ControllerSearcher": "hyperseq.searchers.tune", "ControllerSampler": "hyperseq.sampler",
    "Controller": "controller", "SearchSpace": "search_spaces", "load_space": "search_spaces",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'hyperseq' has no attribute {name!r}")
