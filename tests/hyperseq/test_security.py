"""Security: user text never becomes an MLflow filter, `resume` unpickles only from the local
storage root, `hyperseq ui` leaves no server behind, Ray's auth token is owner-only.

Found by an adversarial pass (before the fix): ``best "a'b"`` printed a 57-line traceback and
``best "x' and ..."`` was pasted into the filter string; `resume` loaded Tune's pickles from
whatever folder the ``hyperseq.storage`` tag named; SIGTERM to `hyperseq ui` left `mlflow ui`,
uvicorn and its workers running; a local run left ``~/.ray/auth_token`` at 0644.
"""
from __future__ import annotations

import json
import os
import pickle
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from hyperseq.cli import cli
from hyperseq.jobs.options import JobOptions
from hyperseq.tracking import tags as T
from hyperseq.tracking.store import open_store
from waiting import wait_for

SPACE = "name: tiny\ntask: noop\ndecisions:\n  - name: a\n    choices: [1, 2]\n"
# A refusal answers at once; this bound only catches a hang (a wait on a server, a retry loop),
# with room for a loaded machine. Not a speed benchmark.
REFUSED_S = 30


def _one_line(result, code: int, words: list[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == code, (result.exit_code, result.output[-3000:])
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr[:3000]
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


# ---- item 12: job names are never pasted into a filter string ------------------------------------
@pytest.fixture(scope="module")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sqlite store with the experiment and no run (built once: a schema takes seconds)."""
    path = tmp_path_factory.mktemp("template") / "m.db"
    open_store(f"sqlite:///{path}").ensure()
    return path


def _copy(db: Path, dest: Path) -> str:
    import sqlite3
    with sqlite3.connect(db) as a, sqlite3.connect(dest) as b:
        a.backup(b)
    return f"sqlite:///{dest}"


@pytest.fixture(scope="module")
def store_with_secret(tmp_path_factory: pytest.TempPathFactory, empty_store: Path) -> str:
    """A store with one job, ``secret``, and one trial run."""
    uri = _copy(empty_store, tmp_path_factory.mktemp("store") / "m.db")
    store = open_store(uri)
    run_id, exp_id = store.start_job("secret", {T.TAG_METRIC: "score"}, {})
    store.open_child(exp_id, run_id, "secret", "t1", {"a": 1}).finish("FINISHED")
    store.set_status(run_id, "FINISHED")
    return uri


@pytest.mark.parametrize("name", ["a'b", "secret' and tags.`hyperseq.kind` = 'job", "secret\n", 'x" or "1'])
def test_best_with_hostile_job_names_finds_nothing(store_with_secret: str, name: str) -> None:
    start = time.monotonic()
    result = CliRunner().invoke(cli, ["best", name, "--tracking-uri", store_with_secret, "--format", "json"])
    _one_line(result, 2, ["no job named"])
    assert result.stdout == "" and time.monotonic() - start < REFUSED_S
    assert [r.info.status for r in open_store(store_with_secret).job_runs()] == ["FINISHED"]


def test_best_of_the_real_name_still_works(store_with_secret: str) -> None:
    result = CliRunner().invoke(cli, ["best", "secret", "--tracking-uri", store_with_secret, "--format", "json"])
    assert result.exit_code == 0 and json.loads(result.stdout)[0]["trial_id"] == "t1"


# ---- item 15: resume reads Tune state only from --storage / JOB, and only the job's own ----------
class Boom:
    """Unpickling this runs code: it touches a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _tune_dir(path: Path, experiment: str, marker: Path) -> Path:
    """A fake Tune experiment directory: a booby-trapped tuner.pkl and an experiment state whose
    trial storage (a pickle, as Tune writes it) names `experiment`."""
    path.mkdir(parents=True)
    (path / "tuner.pkl").write_bytes(pickle.dumps(Boom(marker)))
    storage = {"_type": "CLOUDPICKLE_FALLBACK",
               "value": pickle.dumps({"experiment_dir_name": experiment, "trial_dir_name": "t"}).hex()}
    state = {"trial_data": [[json.dumps({"trial_id": "t", "storage": storage}), "{}"]], "runner_data": {}}
    (path / "experiment_state-2026-01-01_00-00-00.json").write_text(json.dumps(state))
    return path


@pytest.fixture
def interrupted(tmp_path: Path, empty_store: Path):
    """(uri, storage root, make(tag path) -> run id) for a RUNNING job ``j`` with a space artifact."""
    uri = _copy(empty_store, tmp_path / "m.db")
    root = tmp_path / "home" / "ray_results"
    root.mkdir(parents=True)

    def make(tagged: Path) -> str:
        tags = {T.TAG_OPTIONS: json.dumps(JobOptions(searcher="random").saved()), T.TAG_STORAGE: str(tagged)}
        run_id, _ = open_store(uri).start_job("j", tags, {})
        open_store(uri).log_text(run_id, SPACE, "space.yaml")
        return run_id
    return uri, root, make


def _untouched(uri: str, run_id: str, marker: Path) -> None:
    [run] = open_store(uri).search("")
    assert run.info.run_id == run_id and run.info.status == "RUNNING" and not run.data.metrics
    assert not marker.exists(), "a pickle from the tagged folder was loaded"


@pytest.mark.parametrize("where", ["outside", "other_name", "foreign_state"])
def test_resume_refuses_tune_state_that_is_not_this_jobs(tmp_path: Path, interrupted, where: str) -> None:
    uri, root, make = interrupted
    marker = tmp_path / "pwned"
    tagged, words = {
        "outside": (_tune_dir(tmp_path / "evil" / "j", "j", marker), ["is not", "--storage"]),
        "other_name": (_tune_dir(root / "other", "other", marker), ["is not", str(root / "j")]),
        "foreign_state": (_tune_dir(root / "j", "other", marker), ["names ['other']", "not this job"]),
    }[where]
    run_id = make(tagged)
    start = time.monotonic()
    result = CliRunner().invoke(cli, ["resume", "j", "--tracking-uri", uri, "--storage", str(root)])
    _one_line(result, 2, ["'JOB'", "'j'", *words])
    assert time.monotonic() - start < REFUSED_S
    _untouched(uri, run_id, marker)


def test_resume_default_storage_is_home_ray_results(tmp_path: Path, interrupted) -> None:
    uri, root, make = interrupted
    marker = tmp_path / "pwned"
    run_id = make(_tune_dir(tmp_path / "evil" / "j", "j", marker))
    start = time.monotonic()
    result = CliRunner().invoke(cli, ["resume", "j", "--tracking-uri", uri], env={"HOME": str(root.parent)})
    _one_line(result, 2, ["'JOB'", "--storage ~/ray_results", str(root / "j")])
    assert time.monotonic() - start < REFUSED_S
    _untouched(uri, run_id, marker)


def test_resume_accepts_the_jobs_own_directory(tmp_path: Path, interrupted) -> None:
    """All checks pass for ``root / j`` naming ``j`` (stops before Ray: no pickle is read here)."""
    from hyperseq.jobs.resume import prepare_resume
    uri, root, make = interrupted
    marker = tmp_path / "pwned"
    run_id = make(_tune_dir(root / "j", "j", marker))
    spec, parent = prepare_resume("j", uri, str(root))
    assert spec.experiment_path == str(root / "j") and parent.info.run_id == run_id
    _untouched(uri, run_id, marker)


# ---- item 16: `hyperseq ui` stops its whole process group -------------------------------------------
def _group(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group `pgid`."""
    out = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            out.append(int(stat_file.parent.name))
    return out


def _children(pid: int) -> list[int]:
    found = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat_file.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat_file.parent.name))
        except OSError:
            continue
    return found


FAKE_MLFLOW = """
import os, signal, socket, subprocess, sys, time
port = int(sys.argv[sys.argv.index("--port") + 1])
sleeper = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
workers = [subprocess.Popen([sys.executable, "-c", sleeper]) for _ in range(3)]
server = socket.socket(); server.bind(("127.0.0.1", port)); server.listen(1)
time.sleep(600)
"""
# Imported (by `hyperseq ui` itself), the stand-in is the real MLflow; only `python -m mlflow`
# (the server `hyperseq ui` starts) runs it. While `-m` locates a module, sys.argv[0] is "-m".
FAKE_INIT = """
import os, sys
if sys.argv[:1] != ["-m"]:
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    del sys.modules["mlflow"]
    import mlflow  # noqa: F401 - the real one, now in sys.modules
"""


@pytest.mark.slow
def test_ui_sigterm_stops_the_whole_process_group(tmp_path: Path) -> None:
    """`hyperseq ui` with a stand-in `mlflow` (first on PYTHONPATH) whose workers ignore
    SIGTERM, as a server and its workers may: SIGTERM to `hyperseq ui` ends all of them."""
    (tmp_path / "fake" / "mlflow").mkdir(parents=True)
    (tmp_path / "fake" / "mlflow" / "__init__.py").write_text(FAKE_INIT)
    (tmp_path / "fake" / "mlflow" / "__main__.py").write_text(FAKE_MLFLOW)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path = os.pathsep.join([str(tmp_path / "fake"), str(Path(__file__).resolve().parents[2])])
    proc = subprocess.Popen([sys.executable, "-m", "hyperseq.cli", "ui", "--port", str(port),
                             "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}"], env={**os.environ, "PYTHONPATH": path},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_listening(port, 180)                  # polls; generous: imports come first, on a loaded machine
        [server] = _children(proc.pid)
        assert len(_group(server)) == 4                 # the server and its three workers
        proc.send_signal(signal.SIGTERM)
        # `hyperseq ui` gives its group 5 s after SIGTERM, then SIGKILLs it; 30 s leaves a loaded
        # machine room and still catches workers left running (they would sleep for 600 s)
        assert proc.wait(timeout=30) == 128 + signal.SIGTERM
        wait_for(lambda: not _group(server), 30, what="the UI server's process group to end")
        assert _group(server) == [], "processes of the UI server are still running"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def _wait_listening(port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"the UI server did not listen on {port} within {timeout_s} s")


# ---- item 17: a local Ray's auth token is owner-only -------------------------------------------------
@pytest.mark.parametrize("by_env", [False, True])
def test_local_ray_token_is_made_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, by_env: bool) -> None:
    """Ray (stand-in here) writes the token 0644 on start; `ray_session` leaves it 0600."""
    import ray

    from hyperseq.jobs.ray_env import ray_session
    token = tmp_path / ("token" if by_env else ".ray/auth_token")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    if by_env:
        monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(token))
    else:
        monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)

    def init(**_: object) -> None:
        token.parent.mkdir(exist_ok=True)
        token.write_text("t" * 64)
        token.chmod(0o644)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)
    monkeypatch.setattr(ray, "shutdown", lambda: None)
    with ray_session(num_cpus=1) as started:
        assert started
        assert stat.S_IMODE(token.stat().st_mode) == 0o600
