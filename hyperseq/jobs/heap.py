"""`settle_heap()`: the objects a driver holds when its first search starts sit out its full
garbage collections from then on.

A driver holds the imports of torch, Ray, MLflow, SQLAlchemy and pandas: hundreds of
thousands of objects the collector tracks. Every full (generation-2) collection walks all of
them with Tune's event loop stalled, and the controller's and MLflow's allocations trigger
about one per job of a few hundred short trials. `gc.freeze()` moves them to the permanent
generation; later collections walk only what was made after it.

Once per process, never thawed: a thaw (`gc.unfreeze`) puts the whole heap back while the
collector's count of long-lived objects still reflects the frozen state, so the next full
collection comes almost at once, in whatever the process runs next. The cost of never
thawing is the cyclic garbage alive at the freeze, never reclaimed: a few objects left by
the imports and the first job, once.
"""
from __future__ import annotations

import gc
import threading

_LOCK = threading.Lock()
_SETTLED = False


def settle_heap() -> None:
    """Freeze the heap as it is now, the first time this is called in the process."""
    global _SETTLED
    with _LOCK:
        if not _SETTLED:
            gc.freeze()
            _SETTLED = True
