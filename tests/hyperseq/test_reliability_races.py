"""Reliability races on a shared tracking store: a plain MLflow client creating a new sqlite
store while a job opens it, and two drivers starting a job of the same name at once.

Real local Ray and a real sqlite MLflow store; the other party is a real separate process (a
plain ``MlflowClient``, or a second ``hyperseq run`` driver).
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

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
