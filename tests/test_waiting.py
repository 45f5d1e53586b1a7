"""`waiting.wait_for`: returns what the condition gave as soon as it holds; on timeout fails
naming what it waited for; and `alive` / `all_gone` tell a finished process from a running one."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest
from waiting import alive, all_gone, wait_for


def test_returns_the_first_true_value_without_waiting_out_the_timeout() -> None:
    calls = iter([0, None, "", "ready", "later"])
    start = time.monotonic()
    assert wait_for(lambda: next(calls), timeout=60, interval=0.01, what="x") == "ready"
    assert time.monotonic() - start < 30          # far below the timeout: it polled, not slept it out


def test_timeout_names_what_it_waited_for() -> None:
    with pytest.raises(AssertionError, match=r"waited 0.1 s for the writer to exit"):
        wait_for(lambda: False, timeout=0.1, interval=0.02, what="the writer to exit")


@pytest.mark.parametrize("timeout, interval", [(0, 0.1), (1, 0), (-1, 0.1)])
def test_bad_timeout_or_interval_is_refused(timeout: float, interval: float) -> None:
    with pytest.raises(ValueError, match="timeout and interval must be > 0"):
        wait_for(lambda: True, timeout=timeout, interval=interval)


def test_alive_until_the_process_ends() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        assert alive(proc.pid) and not all_gone([proc.pid])
    finally:
        proc.stdin.close()
    wait_for(lambda: proc.poll() is not None, timeout=60, what="the child to exit")
    assert not alive(proc.pid) and all_gone([proc.pid])
