"""`Forward`: the one Tune callback a job hands to Tune, forwarding to this process's callbacks.

Tune pickles its callbacks with the experiment state and, on `Tuner.restore`, brings back
those copies (there is no public way to replace them). So the job gives Tune a `Forward` that
holds only the job's name and passes every hook to the callbacks the current driver registered
for that job (`active`): after a restore, the new driver's recorder, monitor and probes get
the events, with their live writer, controller and progress bar.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

from ray import tune

_ACTIVE: dict[str, list[Any]] = {}
HOOKS = ("on_step_begin", "on_step_end", "on_trial_start", "on_trial_restore", "on_trial_save",
         "on_trial_result", "on_trial_complete", "on_trial_recover", "on_trial_error",
         "on_checkpoint", "on_experiment_end")


@contextlib.contextmanager
def active(job: str, callbacks: list[Any]) -> Iterator[None]:
    """Route the events of `job` to `callbacks` while the block runs."""
    _ACTIVE[job] = list(callbacks)
    try:
        yield
    finally:
        _ACTIVE.pop(job, None)


def _forwarder(hook: str) -> Any:
    def forward(self: "Forward", *args: Any, **kwargs: Any) -> None:
        for callback in _ACTIVE.get(self.job, ()):
            getattr(callback, hook)(*args, **kwargs)
    forward.__name__ = hook
    return forward


class Forward(tune.Callback):
    """Passes each Tune event to the callbacks `active` registered for `job`."""

    def __init__(self, job: str) -> None:
        self.job = job


for _hook in HOOKS:
    setattr(Forward, _hook, _forwarder(_hook))
