"""``--storage`` on a full disk, at the start and mid-run: one line, never a traceback; a job
stopped mid-run is resumed once space is freed.

The disk is a real small tmpfs (needs root, or the test is skipped); the jobs run on a real
local Ray with a real sqlite MLflow store kept off that disk.
"""
from __future__ import annotations

import contextlib
import errno
import subprocess
import uuid
from pathlib import Path
from typing import Iterator

import pytest
from click.testing import CliRunner
from drivers import driver, resume_finishes, trial_runs, usage_error, wait_until

from hyperseq.cli import cli
from hyperseq.tracking.store import open_store

SPACE = "name: sleepy\ntask: noop\ndecisions:\n  - {name: a, choices: [1, 2, 3, 4, 5, 6, 7, 8]}\n" \
        "  - {name: sleep, choices: [1.0]}\n"
TRIALS = 8


@contextlib.contextmanager
def _tmpfs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", f"hyperseq-{uuid.uuid4().hex[:8]}",
                       str(where)], capture_output=True).returncode:
        pytest.skip("needs a tmpfs mount (root)")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def _fill(disk: Path) -> Path:
    """Take every free byte of `disk`; returns the file to delete to free them."""
    fill = disk / "fill"
    with open(fill, "wb", buffering=0) as out:        # unbuffered: nothing left to fail at close
        try:
            while True:
                out.write(b"\0" * 65536)
        except OSError as err:
            assert err.errno == errno.ENOSPC, err
    return fill


@pytest.fixture
def env(tmp_path: Path) -> tuple[Path, str]:
    (tmp_path / "s.yaml").write_text(SPACE)
    return tmp_path, f"sqlite:///{tmp_path / 'mlflow.db'}"


# ---- 6. at the start: a usage error, nothing written ------------------------------------------
@pytest.mark.parametrize("how", ["full", "nearly full"])
def test_storage_on_a_full_disk_is_refused_before_ray_starts(env, how: str) -> None:
    tmp, uri = env
    with _tmpfs(tmp / "disk", "64k" if how == "full" else "1m") as disk:
        if how == "full":
            _fill(disk)
        result = CliRunner().invoke(cli, ["run", str(tmp / "s.yaml"), "--name", "full", "--tracking-uri", uri,
                                          "--storage", str(disk / "ray")])
        usage_error(result, ["'--storage'", str(disk / "ray"), str(disk)])
        assert "No space left on device" in result.stderr and "Traceback" not in result.output
        assert not (disk / "ray").exists()
    assert not (tmp / "mlflow.db").exists()


# ---- 6. mid-run: exit 1 in one line, the parent FAILED, resumed once space is freed -----------
@pytest.mark.slow
def test_storage_filling_up_mid_run_stops_in_one_line_and_resumes(env) -> None:
    tmp, uri = env
    with _tmpfs(tmp / "disk", "32m") as disk:
        storage = disk / "ray"
        args = [str(tmp / "s.yaml"), "--trials", str(TRIALS), "--concurrency", "2", "--epochs", "2",
                "--final-top", "0", "--name", "filled", "--tracking-uri", uri, "--storage", str(storage)]
        with driver(tmp, *args) as proc:
            wait_until(proc, lambda: (storage / "filled").exists() and any(
                r.info.status == "FINISHED" for r in trial_runs(uri, "filled")))
            fill = _fill(disk)
            code = proc.wait(120)
            err = proc.stderr.read().decode()
        lines = err.strip().splitlines()
        assert code == 1, err[-3000:]
        assert "Traceback" not in err and lines[-1].startswith("Error: storage"), err[-3000:]
        for words in (str(storage), "No space left on device", "filled", "hyperseq resume filled"):
            assert words in lines[-1], (words, lines[-1])
        [job] = open_store(uri).job_runs("filled")
        assert job.info.status == "FAILED"

        fill.unlink()
        resume_finishes(uri, storage, "filled", TRIALS)
