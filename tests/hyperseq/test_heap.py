"""`settle_heap`: a job's driver moves the heap it has at its first search out of the full
garbage collections, once per process, and never puts it back (see `hyperseq.jobs.heap`)."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_settle_heap_freezes_once_and_later_objects_are_still_collected():
    """In a fresh interpreter: objects alive at the first call leave the collector's
    generations; a second call freezes nothing more; objects made later stay collectable."""
    code = textwrap.dedent("""
        import gc
        from hyperseq.jobs.heap import settle_heap
        assert gc.get_freeze_count() == 0
        before = [[i] for i in range(1000)]
        settle_heap()
        frozen = gc.get_freeze_count()
        assert frozen > 1000, frozen
        tracked = {id(o) for o in gc.get_objects()}
        assert not any(id(o) in tracked for o in before)
        after = [[i] for i in range(1000)]
        settle_heap()
        assert gc.get_freeze_count() == frozen
        assert all(gc.is_tracked(o) for o in after)
        tracked = {id(o) for o in gc.get_objects()}
        assert all(id(o) in tracked for o in after)
        cycle = []; cycle.append(cycle); del cycle
        assert gc.collect() >= 1                     # garbage made after the freeze is reclaimed
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
