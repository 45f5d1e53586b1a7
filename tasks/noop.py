"""The built-in no-op child (`task: noop`): instant, deterministic, for overhead benchmarks.

Its metric `score` (mode max, in [0, 1]) is the mean over config entries of a hash of
"key=value", so each decision contributes independently and a policy can learn it. Two
optional config keys exercise the failure paths end to end:

- ``outcome``: ``"ok"`` (default), ``"diverge"`` (reports ``diverged=True`` at the last epoch),
  or ``"crash"`` (raises ``RuntimeError`` before the first epoch);
- ``sleep``: seconds to sleep per epoch (to keep trials alive for schedulers).

Like the models it reports its cost: ``params`` 0 (it has none) and ``step_ms``, the measured
wall time of its epochs (each one "step": the sleep, if any) divided by their count.

For crash tests, ``$HYPERSEQ_NOOP_PID_DIR`` (when set in the worker's environment) makes each
child write an empty file named after its process id there before its first epoch, so a test
can ``kill -9`` the worker process mid-trial.
"""
from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any, Iterator, Mapping

OUTCOMES = ("ok", "diverge", "crash")
PID_DIR_ENV = "HYPERSEQ_NOOP_PID_DIR"


def score(config: Mapping[str, Any]) -> float:
    """Deterministic value in [0, 1] of a config (control keys excluded)."""
    parts = [f"{k}={config[k]!r}" for k in sorted(config) if k not in ("outcome", "sleep")]
    if not parts:
        return 0.5
    unit = [int.from_bytes(hashlib.sha256(p.encode()).digest()[:8], "big") / 2.0 ** 64 for p in parts]
    return sum(unit) / len(unit)


class NoopTask:
    """Task-protocol stand-in that trains nothing."""

    name = "noop"
    metric = "score"
    mode = "max"
    val_metrics = ("score",)
    defaults: dict[str, Any] = {}

    def parse(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Accept any scalar config; check the control keys."""
        outcome = config.get("outcome", "ok")
        if outcome not in OUTCOMES:
            raise ValueError(f"noop config: outcome={outcome!r} is not one of {', '.join(OUTCOMES)}")
        sleep = config.get("sleep", 0)
        if isinstance(sleep, bool) or not isinstance(sleep, (int, float)) or sleep < 0:
            raise ValueError(f"noop config: sleep={sleep!r} must be a number >= 0")
        return dict(config)

    def train(self, config: Mapping[str, Any], epochs: int = 1, device: str = "auto",
              seed: int = 0) -> Iterator[dict[str, Any]]:
        cfg = self.parse(config)
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"epochs={epochs!r} must be a positive integer")
        return self._epochs(cfg, epochs)

    def _epochs(self, cfg: dict[str, Any], epochs: int) -> Iterator[dict[str, Any]]:
        if cfg.get("outcome") == "crash":
            raise RuntimeError("noop child crashed on purpose (outcome=crash)")
        pid_dir = os.environ.get(PID_DIR_ENV)
        if pid_dir:
            Path(pid_dir, str(os.getpid())).touch()
        value = score(cfg)
        busy_s = 0.0  # wall time of the epochs' work so far
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            if cfg.get("sleep"):
                time.sleep(cfg["sleep"])
            diverged = cfg.get("outcome") == "diverge" and epoch == epochs
            # A slowly improving curve: the last epoch reaches `value`.
            metric = 0.0 if diverged else value * (0.5 + 0.5 * epoch / epochs)
            busy_s += time.perf_counter() - start
            yield {"epoch": epoch, "score": metric, "train_loss": 1.0 - metric, "params": 0,
                   "step_ms": 1000.0 * busy_s / epoch, "diverged": diverged}
            if diverged:
                return
