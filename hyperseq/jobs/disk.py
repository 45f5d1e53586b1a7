"""``--storage`` that is full, read-only or refuses files: one line, never a traceback.

Before Ray starts, `write_probe` creates a folder and a small file in the storage and checks
its free space, so a job that could not save its first state is refused as a usage error
(exit 2, nothing written). Space can still run out later, in Ray Tune's saves or in the copy
of them the driver keeps (`state.StateKeeper`); `storage_errors` turns such an error into one
line naming the path and the system's reason: exit 1 once the job's parent run exists (it
ends FAILED and `hyperseq resume` finishes the job once space is freed), exit 2 before.
"""
from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

from ..tracking.store import open_store
from .options import Unavailable

MIN_FREE = 16 * 2 ** 20       # bytes a job's start needs: Tune's first saves and trial folders
PROBE_BYTES = 4096            # written by the probe: a full disk still takes an empty file
FAULTS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def write_probe(directory: Path) -> str | None:
    """Why a folder and a file cannot be created (and removed) in `directory`, or why it is too
    full for a job to start, else None. Permission bits and mount flags do not tell: a special
    filesystem (sysfs, procfs) passes both and refuses the first file Ray Tune writes. The
    probe leaves nothing behind."""
    try:
        folder = tempfile.mkdtemp(prefix=".hyperseq-probe-", dir=directory)
    except OSError as err:
        return f"cannot create a folder in {directory}: {err.strerror or err}"
    try:
        (Path(folder) / "probe").write_bytes(b"\0" * PROBE_BYTES)
        (Path(folder) / "probe").unlink()
    except OSError as err:
        return f"cannot create a file in {directory}: {err.strerror or err}"
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    free = shutil.disk_usage(directory).free
    if free < MIN_FREE:
        return (f"{directory} has {free / 2 ** 20:.1f} MiB free (No space left on device, or nearly): "
                f"a job needs at least {MIN_FREE // 2 ** 20} MiB")
    return None


def storage_fault(err: BaseException, storage: Path) -> OSError | None:
    """The filesystem error behind `err` (itself or what it was raised from) when it concerns a
    path under `storage`, or None."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in FAULTS and _under(current, storage):
            return current
        current = current.__cause__ or current.__context__
    return None


def _under(err: OSError, storage: Path) -> bool:
    names = [str(n) for n in (err.filename, err.filename2) if n is not None]
    root = os.path.join(str(storage), "")
    return any(os.path.abspath(n).startswith(root) or os.path.abspath(n) == str(storage) for n in names)


@contextlib.contextmanager
def storage_errors(spec: Any) -> Iterator[None]:
    """Around a job's run or resume: a storage error becomes `Unavailable`, one line (see the
    module); anything else passes through."""
    try:
        yield
    except Exception as err:                           # noqa: BLE001 - only storage faults are caught
        fault = storage_fault(err, spec.storage)
        if fault is None:
            raise
        raise Unavailable(*_message(spec, fault)) from None


def _message(spec: Any, fault: OSError) -> tuple[str, int]:
    """(the line, the exit code): resumable once the job's parent run exists."""
    path = fault.filename2 if fault.filename2 is not None else fault.filename
    why = f"{fault.strerror or os.strerror(fault.errno)} (writing {path})"
    try:
        started = bool(open_store(spec.tracking_uri).job_runs(spec.name))
    except Exception:                                  # noqa: BLE001 - the store may be on that disk
        started = True
    if not started:
        return (f"storage {spec.storage}: {why}, so job {spec.name} did not start and nothing was "
                f"recorded: free space (or fix the storage), then run it again"), 2
    return (f"storage {spec.storage}: {why}, so job {spec.name} stopped (parent run FAILED, its Ray Tune "
            f"state kept in {spec.experiment_path}): free space (or fix the storage), then run "
            f"`hyperseq resume {spec.name}`"), 1
