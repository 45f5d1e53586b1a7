"""Every script in `examples/` runs, on small settings, as a user would run it.

Each runs as ``python examples/NAME.py ...`` in a fresh process, with the caller's Ray and
MLflow settings removed from the environment. The ones that start Ray are marked slow; the
cluster one starts its own Ray head (token auth, loopback) and MLflow server, as
``tests/hyperseq/test_cluster.py`` does, and stops exactly those process groups after.
"""
from __future__ import annotations

import ast
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from servers import (BIN, clean_env, free_port, http_ok, kill_mentioning, mlflow_server,
                     ray_head_command, stop_group, wait_until)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def run_example(name: str, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
                timeout: float = 600) -> str:
    """stdout of ``python examples/NAME ARGS``; fails with its stderr if it exits non-zero."""
    result = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True,
                            timeout=timeout, env=env or clean_env(), cwd=cwd or ROOT)
    assert result.returncode == 0, f"{name} exited {result.returncode}:\n{result.stderr[-4000:]}"
    return result.stdout


def last_dict(text: str) -> dict:
    """The config printed last: the dict literal at the end of the last line with ' with {'."""
    line = [line for line in text.splitlines() if " with {" in line][-1]
    return ast.literal_eval(line[line.index("{"):])


def test_every_example_has_a_test() -> None:
    tested = set(re.findall(r'"(\w+\.py)"', Path(__file__).read_text()))
    assert {p.name for p in EXAMPLES.glob("*.py")} <= tested


def test_optuna_sampler() -> None:
    out = run_example("optuna_sampler.py", "--trials", "30")
    value = float(re.search(r"best value (\S+)", out).group(1))
    best = last_dict(out)
    assert {"cell", "layers", "hidden", "lr", "dropout"} <= set(best)
    assert 0 <= value < 3.0          # the objective's worst corner is far above, its best is 0


def test_custom_task(tmp_path: Path) -> None:
    out = run_example("custom_task.py", "--rounds", "2", "--per-round", "2", "--epochs", "1", "--steps", "30")
    assert len(re.findall(r"^round \d+:", out, re.M)) == 2
    accuracy = float(re.search(r"best val_acc (\S+)", out).group(1))
    assert accuracy > 0.6            # chance is 0.5 on majority votes of 7 bits
    assert set(last_dict(out)) == {"cell", "hidden", "lr"}


@pytest.mark.slow
def test_ray_tune_searcher(tmp_path: Path) -> None:
    out = run_example("ray_tune_searcher.py", "--samples", "6", "--storage", str(tmp_path / "tune"))
    assert set(last_dict(out)) == {"cell", "layers", "lr", "dropout"}
    assert len(list((tmp_path / "tune").glob("*/trainable_*"))) == 6


@pytest.mark.slow
def test_python_api(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    out = run_example("python_api.py", "--trials", "3", "--epochs", "1", "--concurrency", "2",
                      "--final-top", "1", "--tracking-uri", uri, "--storage", str(tmp_path / "ray_results"),
                      cwd=tmp_path)
    assert re.search(r"^job demo-rnn-\S+: FINISHED$", out, re.M), out
    assert "1 job(s) in the store" in out
    assert not (tmp_path / "mlruns").exists()


# ---- the cluster example: a real Ray head and MLflow server on loopback ----------------------------
@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, dict[str, str]]]:
    """(dashboard URL, tracking URI, a client environment with the token named)."""
    tmp = tmp_path_factory.mktemp("example_cluster")
    ray_tmp = Path(tempfile.mkdtemp(prefix="hsex", dir="/tmp"))        # short: socket paths
    token = tmp / "ray_token"
    token.write_text(secrets.token_hex(24))
    token.chmod(0o600)
    env = clean_env(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token),
                    RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S="0")
    dash = free_port()
    log = tmp / "ray.log"
    with open(log, "w") as out:
        head = subprocess.Popen(
            ray_head_command(ray_tmp, dash), env=env, cwd=tmp, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    address = f"http://127.0.0.1:{dash}"
    auth = {"Authorization": f"Bearer {token.read_text()}"}
    try:
        with mlflow_server(f"sqlite:///{tmp / 'mlflow.db'}", tmp, workers=1) as tracking:
            wait_until(lambda: http_ok(f"{address}/api/jobs/", auth), {"ray": (head, log)}, "Ray head")
            yield address, tracking.uri, env
    finally:
        stop_group(head)
        kill_mentioning(str(ray_tmp))
        shutil.rmtree(ray_tmp, ignore_errors=True)


@pytest.mark.slow
def test_cluster_submit(cluster: tuple[str, str, dict[str, str]], tmp_path: Path) -> None:
    address, uri, env = cluster
    out = run_example("cluster_submit.py", "--address", address, "--tracking-uri", uri, "--trials", "4",
                      "--epochs", "1", "--name", "example-submit", "--storage", str(tmp_path / "ray_results"),
                      env=env)
    assert "submitted example-submit" in out
    assert re.search(r"SUCCEEDED: 4 of 4 trials", out), out
    assert "example-submit" in out and "rank" in out
