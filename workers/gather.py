"""Start a job's trial actors together (Ray Tune with `reuse_actors`, one node).

Tune hands an idle cached actor to a trial whose own actor is still starting, and drops that
starting actor (`TuneController._maybe_reuse_cached_actor`). When trials are shorter than an
actor's start-up (a second or two: a worker process importing torch and the task), the first
actor finishes its trial before the second is up, takes the second's trial, and so on for
every later trial: the job runs one trial at a time while Ray starts and kills a worker
process every few seconds for actors that never run a trial (seen in `benchmarks/overhead.py`
as jobs twice as slow, at random, bare Tune's included).

So each actor's first trial of a job waits until `size` actors of the job are up, or for
`timeout` seconds at most, whichever comes first; later trials in the same actor do not wait.
The actors meet in Ray's GCS key-value store (the store Tune's own registry uses), under a key
the driver makes per experiment and deletes after it (`released`). A barrier only saves time:
any error in it is logged and the trial goes on.
"""
from __future__ import annotations

import contextlib
import logging
import os
import time
from typing import Iterator

NAMESPACE = "hyperseq.gather"
TIMEOUT_S = 10.0          # longest wait for the others (several times an actor's start-up)
POLL_S = 0.01

log = logging.getLogger(__name__)
_joined: set[str] = set()   # keys this process has met under (once per process and key)


def gather(key: str, size: int, timeout: float = TIMEOUT_S) -> float:
    """Register this actor under `key` and wait until `size` actors have; the seconds waited.

    No wait for `size` <= 1, an empty key, or a key this process has met under before.
    """
    if size <= 1 or not key or key in _joined:
        return 0.0
    _joined.add(key)
    start = time.monotonic()
    try:
        import ray
        from ray.experimental import internal_kv as kv
        me = ray.get_runtime_context().get_actor_id() or f"pid{os.getpid()}"
        kv._internal_kv_put(f"{key}/{me}", b"1", namespace=NAMESPACE)
        while len(kv._internal_kv_list(f"{key}/", namespace=NAMESPACE)) < size:
            if time.monotonic() - start >= timeout:
                break
            time.sleep(POLL_S)
    except Exception as err:                             # noqa: BLE001 - an optimisation only
        log.warning("trial actors could not meet under %s (%s); going on", key, err)
    return time.monotonic() - start


@contextlib.contextmanager
def released(key: str) -> Iterator[None]:
    """The driver's side: `key`'s registrations are deleted when the block (the experiment) ends."""
    try:
        yield
    finally:
        release(key)


def release(key: str) -> None:
    """Delete the key's registrations."""
    if not key:
        return
    try:
        from ray.experimental import internal_kv as kv
        kv._internal_kv_del(f"{key}/", del_by_prefix=True, namespace=NAMESPACE)
    except Exception as err:                             # noqa: BLE001 - a few bytes left in the GCS
        log.debug("could not delete %s: %s", key, err)
