"""A race inside `gpu_search.py`'s final phase: successive halving at the final's own length.

The explore phase ranks configs after a few hundred steps; the final trains one for thousands,
where a rate that won a short rung can be too high (a loss spike) and a config slow per step
trains a third of the epochs of a fast one. So each searcher's finalists train side by side
from the final's start; at `fraction` of its wall budget only the one with the best val_loss so
far (whole validation split, the final's own score) keeps training, on the CPU its rivals
free. Finalists share the device evenly with the default config's run throughout, as before.

Processes talk through files in one directory (the pool's workers are spawned, the race is
decided in the driver): a finalist writes its best val_loss after every epoch and stops at the
first epoch end after its stop file appears. A finalist that has not finished an epoch by the
decision counts as infinitely bad: the race compares configs at equal wall time.
"""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path


class Race:
    """The shared directory; picklable, so each finalist's process gets its own handle."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def report(self, member: str, best: float) -> None:
        """Finalist side: its best val_loss so far (written whole, then renamed into place)."""
        tmp = self.root / f".{member}.{os.getpid()}"
        tmp.write_text(json.dumps(best if math.isfinite(best) else None))
        tmp.replace(self.root / f"{member}.best")

    def stopped(self, member: str) -> bool:
        """Finalist side: whether it lost the race."""
        return (self.root / f"{member}.stop").exists()

    def best(self, member: str) -> float:
        path = self.root / f"{member}.best"
        value = json.loads(path.read_text()) if path.exists() else None
        return math.inf if value is None else value

    def decide(self, groups: dict[str, list[str]]) -> dict[str, dict]:
        """Driver side: in every group of finalists keep the best so far, stop the rest.
        Returns each group's standings ({member: best}, None for no finite best: strict JSON)
        and the member kept."""
        outcome = {}
        for name, members in groups.items():
            bests = {m: self.best(m) for m in members}
            kept = min(members, key=lambda m: (bests[m], members.index(m)))
            for m in members:
                if m != kept:
                    (self.root / f"{m}.stop").touch()
            outcome[name] = {"standings": {m: b if math.isfinite(b) else None for m, b in bests.items()},
                             "kept": kept}
        return outcome

    def run_until(self, at: float, groups: dict[str, list[str]]) -> dict[str, dict]:
        """Wait until wall-clock time `at`, then decide the groups with more than one finalist."""
        time.sleep(max(0.0, at - time.time()))
        return {"at": time.time(), "groups": self.decide({n: ms for n, ms in groups.items() if len(ms) > 1})}
