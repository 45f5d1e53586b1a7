"""Reliability races on a shared tracking store: a plain MLflow client creating a new sqlite
store while a job opens it, and two drivers starting a job of the same name at once.

Real local Ray and a real sqlite MLflow store; the other party is a real separate process (a
plain ``MlflowClient``, or a second ``hyperseq run`` driver).
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from drivers import driver

from hyperseq.cli import cli
from hyperseq.jobs.run import execute
from hyperseq.jobs.spec import prepare_job
from hyperseq.tracking import tags as T
from hyperseq.tracking.sqlite_file import latest_version, schema_version
from hyperseq.tracking.store import open_store

SPACE = "name: tiny\ntask: noop\ndecisions:\n  - {name: a, choices: [1, 2]}\n"

PLAIN_CLIENT = """\
import sys
from mlflow import MlflowClient
print("ready", flush=True)
sys.stdin.readline()
MlflowClient(sys.argv[1]).search_experiments()     # creates the store: tables, then migrations
print("done", flush=True)
"""


# ---- 8. a plain MLflow client creating the new store the job opens -----------------------------
@pytest.mark.slow
def test_a_plain_mlflow_client_creating_the_store_does_not_crash_the_job(ray_cluster, tmp_path: Path) -> None:
    """The client (the UI, a notebook) starts MLflow's migrations first; the job opens the store
    while they run, and must neither run them a second time nor fail."""
    (tmp_path / "s.yaml").write_text(SPACE)
    db = tmp_path / "new" / "mlflow.db"
    uri = f"sqlite:///{db}"
    spec = prepare_job(tmp_path / "s.yaml", name="raced", trials=2, epochs=1, final_top=0, searcher="random",
                       tracking_uri=uri, storage=tmp_path / "ray")
    assert not db.exists()
    plain = subprocess.Popen([sys.executable, "-c", PLAIN_CLIENT, uri], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert plain.stdout.readline().strip() == "ready", plain.stderr.read()
        plain.stdin.write("go\n")
        plain.stdin.flush()
        deadline = time.monotonic() + 60
        while not (db.exists() and db.stat().st_size > 0):     # its tables are being made
            assert time.monotonic() < deadline and plain.poll() is None, plain.stderr.read()
            time.sleep(0.005)
        assert schema_version(db) != latest_version()           # ... its migrations not yet done
        result = execute(spec)
        out, err = plain.communicate(timeout=120)
    finally:
        if plain.poll() is None:
            plain.kill()
    assert result.status == "FINISHED"
    assert "done" in out, err[-2000:]                # the client was not broken either
    assert schema_version(db) == latest_version()
    [job] = open_store(uri).job_runs("raced")
    runs = open_store(uri).trial_runs(job.info.run_id)
    assert job.info.status == "FINISHED" and sorted(r.info.status for r in runs) == ["FINISHED"] * 2


# ---- 5. two drivers, one job name, one store, two storages -------------------------------------
@pytest.mark.slow
def test_two_drivers_starting_one_name_together_leave_one_job(tmp_path: Path) -> None:
    """Both pass the name check before either has a parent run; one job runs, the other driver
    stops with one line (exit 2) before any trial, and the store holds one job of that name."""
    (tmp_path / "s.yaml").write_text(SPACE)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    common = [str(tmp_path / "s.yaml"), "--name", "twin", "--trials", "2", "--epochs", "1", "--final-top", "0",
              "--searcher", "random", "--tracking-uri", uri]
    with driver(tmp_path, *common, "--storage", str(tmp_path / "a")) as one, \
            driver(tmp_path, *common, "--storage", str(tmp_path / "b")) as two:
        codes = [one.wait(300), two.wait(300)]
        errors = [one.stderr.read().decode(), two.stderr.read().decode()]
    assert sorted(codes) == [0, 2], (codes, [e[-2000:] for e in errors])
    loser = codes.index(2)
    lines = [line for line in errors[loser].strip().splitlines() if "Error" in line]   # Ray logs a warning too
    assert len(lines) == 1 and errors[loser].strip().endswith(lines[0]), errors[loser]
    assert "Traceback" not in errors[loser] and lines[0].startswith("Error: "), errors[loser]
    assert "'--name'" in lines[0] and "twin" in lines[0] and "already exists" in lines[0], lines[0]
    assert not (tmp_path / "ab"[loser] / "twin").exists()          # no trial ran there
    [job] = open_store(uri).job_runs("twin")
    assert job.info.status == "FINISHED"
    assert job.data.tags[T.TAG_STORAGE] == str(tmp_path / "ab"[1 - loser] / "twin")
    runs = open_store(uri).trial_runs(job.info.run_id)
    assert sorted(r.info.status for r in runs) == ["FINISHED"] * 2
    best = CliRunner().invoke(cli, ["best", "twin", "--format", "json", "--tracking-uri", uri])
    assert best.exit_code == 0 and len(json.loads(best.stdout)) == 2, best.output
