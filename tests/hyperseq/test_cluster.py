"""`hyperseq submit / status / logs / cancel / best` against a real Ray head and MLflow server.

The module starts, on loopback only, ``ray start --head --block`` (token auth on, its own
ports and temp dir, so a ``ray.init()`` of another test neither finds nor disturbs it) and
``mlflow server`` (sqlite backend, artifact proxy), each in its own process group, and kills
exactly those groups (plus any process left in the Ray temp dir) at teardown. ``ray stop``
is never used: it would stop every Ray on the machine.

The client side runs in-process through click's CliRunner with ``RAY_AUTH_MODE=token`` and
``RAY_AUTH_TOKEN_PATH`` set, as a user's shell would have them.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests
from click.testing import CliRunner

from hyperseq.cluster import access as cluster_access
from hyperseq.cluster import control, submit as cluster_submit
from hyperseq.cluster.ray_jobs import connect_client
from hyperseq.cli import cli
from hyperseq.tracking import tags as T
from hyperseq.tracking.mlflow_store import trial_config
from hyperseq.tracking.store import default_tracking_uri, open_store
from servers import ray_head_command

BIN = Path(sys.executable).parent
AUTH = os.environ.get("HYPERSEQ_TEST_RAY_AUTH", "token")       # or "disabled": both sides without a token
START_TIMEOUT = 120          # s for the head and the server to answer
JOB_TIMEOUT = 120            # s for a submitted job to reach a state
QUICK = """\
name: cluster_quick
task: noop
decisions:
  - {name: a, choices: [1, 2, 3]}
  - {name: b, choices: [x, y]}
"""
SLOW = """\
name: cluster_slow
task: noop
decisions:
  - {name: a, choices: [1, 2, 3]}
  - {name: sleep, choices: [4]}
"""


@dataclass
class Servers:
    address: str
    tracking_uri: str
    token_file: Path
    tmp: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ready(url: str, headers: dict[str, str]) -> bool:
    try:
        return requests.get(url, headers=headers, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _stop(proc: subprocess.Popen, grace: float = 20) -> None:
    """SIGTERM the leader we started (it shuts down its children), then SIGKILL its group."""
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(grace)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(5)


def _kill_leftovers(ray_tmp: Path) -> list[str]:
    """Processes of our head outside its group (workers, the job driver): by temp dir or cwd."""
    import psutil
    killed = []
    for p in psutil.process_iter(["pid", "cmdline", "cwd"]):
        try:
            text = " ".join(p.info["cmdline"] or []) + " " + (p.info["cwd"] or "")
            if str(ray_tmp) in text and p.pid != os.getpid():
                killed.append(f"{p.pid} {text[:80]}")
                p.kill()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return killed


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    tmp = tmp_path_factory.mktemp("cluster")
    ray_tmp = Path(tempfile.mkdtemp(prefix="hsray", dir="/tmp"))      # short: socket paths
    token_file = tmp / "ray_token"
    token_file.write_text(secrets.token_hex(24))
    token_file.chmod(0o600)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("RAY_", "MLFLOW_")) and k != "PYTHONPATH"}
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", RAY_AUTH_MODE=AUTH,
               RAY_AUTH_TOKEN_PATH=str(token_file),
               RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S="0")         # teardown: no 30 s node drain
    dash, ml_port = _free_port(), _free_port()
    ray_log, ml_log = open(tmp / "ray.log", "w"), open(tmp / "mlflow.log", "w")
    ray_proc = subprocess.Popen(
        ray_head_command(ray_tmp, dash, _free_port), env=env, cwd=tmp, stdout=ray_log, stderr=subprocess.STDOUT, start_new_session=True)
    ml_proc = subprocess.Popen(
        [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(ml_port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{tmp / 'mlflow.db'}",
         "--artifacts-destination", str(tmp / "artifacts")],
        env=env, cwd=tmp, stdout=ml_log, stderr=subprocess.STDOUT, start_new_session=True)
    servers = Servers(f"http://127.0.0.1:{dash}", f"http://127.0.0.1:{ml_port}", token_file, tmp)
    auth = {"Authorization": f"Bearer {token_file.read_text()}"} if AUTH == "token" else {}
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not (_ready(f"{servers.address}/api/jobs/", auth)
                   and _ready(f"{servers.tracking_uri}/health", {})):
            for proc, log in ((ray_proc, "ray.log"), (ml_proc, "mlflow.log")):
                assert proc.poll() is None, f"{log} exited:\n{(tmp / log).read_text()[-3000:]}"
            assert time.monotonic() < deadline, "Ray head / MLflow server did not answer in time"
            time.sleep(1)
        yield servers
    finally:
        _stop(ml_proc)
        _stop(ray_proc)
        left = _kill_leftovers(ray_tmp)
        if left:
            print("killed leftovers of the test's Ray head:", *left, sep="\n  ")
        ray_log.close()
        ml_log.close()
        shutil.rmtree(ray_tmp, ignore_errors=True)


@pytest.fixture
def client_env(servers: Servers, monkeypatch: pytest.MonkeyPatch) -> Servers:
    """A user's shell: token auth on, token file named; no RAY_ADDRESS / MLflow env."""
    for key in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "RAY_AUTH_TOKEN", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("RAY_AUTH_MODE", AUTH)
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(servers.token_file))
    return servers


def _hyperseq(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args))


def _space(servers: Servers, text: str, name: str) -> str:
    path = servers.tmp / name
    path.write_text(text)
    return str(path)


def _wait(address: str, job: str, states: set[str], timeout: float = JOB_TIMEOUT) -> str:
    """Poll Ray's status of `job` (one client, once a second) until it is in `states`."""
    client = connect_client(address)
    deadline = time.monotonic() + timeout
    while True:
        status = str(client.get_job_status(job))
        if status in states or time.monotonic() > deadline:
            return status
        time.sleep(1)


def _one_line_error(result: Any, code: int, *words: str) -> str:
    assert result.exit_code == code, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


# ---- against the real head and server --------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:ssl=None is deprecated:DeprecationWarning")   # inside Ray's tail_job_logs
def test_submit_status_logs_best(client_env: Servers) -> None:
    s = client_env
    space = _space(s, QUICK, "quick.yaml")
    t0 = time.monotonic()
    result = _hyperseq("submit", space, "--final-top", "0", "--name", "quick", "--searcher", "random", "--trials", "2",
                       "--concurrency", "2", "--epochs", "2", "--address", s.address,
                       "--tracking-uri", s.tracking_uri, "--storage", str(s.tmp / "ray_results"))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "quick"
    assert "RAY_ADDRESS" not in os.environ                   # validation's override is undone
    # returns at once: a submit that waited on the job would add its Ray job start and two
    # trials of 2 x 4 s; 30 s leaves a loaded machine room for the checks and the upload
    assert time.monotonic() - t0 < 30

    final = _wait(s.address, "quick", {"SUCCEEDED", "FAILED", "STOPPED"})
    logs = _hyperseq("logs", "quick", "--address", s.address)
    assert final == "SUCCEEDED", logs.output[-3000:]
    row = control.job_status(s.address, "quick")
    assert row["status"] == "FINISHED" and row["trials_done"] == 2 and row["trials"] == 2
    assert "job quick" in logs.stdout and "FINISHED" in logs.stdout
    follow = _hyperseq("logs", "quick", "--address", s.address, "--follow")   # ended: all, then returns
    assert follow.exit_code == 0 and "job quick" in follow.stdout and "SUCCEEDED" in follow.stderr

    status = _hyperseq("status", "quick", "--address", s.address, "--format", "json")
    assert status.exit_code == 0, status.output
    info = json.loads(status.stdout)
    assert info["ray_status"] == "SUCCEEDED" and info["tracking_uri"] == s.tracking_uri

    best = _hyperseq("best", "quick", "--tracking-uri", s.tracking_uri, "--format", "json")
    assert best.exit_code == 0, best.output
    rows = json.loads(best.stdout)
    assert len(rows) == 2 and [r["rank"] for r in rows] == [1, 2]
    assert all(r["job"] == "quick" and r["status"] == "FINISHED" for r in rows)

    df, notes = control.jobs_frame(s.address, s.tracking_uri)
    [joined] = df[df["job"] == "quick"].to_dict("records")
    assert joined["ray_status"] == "SUCCEEDED" and joined["status"] == "FINISHED" and not notes

    again = _hyperseq("submit", space, "--name", "quick", "--address", s.address,
                      "--tracking-uri", s.tracking_uri, "--storage", str(s.tmp / "ray_results"))
    _one_line_error(again, 2, "--name", "quick", "already exists")


@pytest.mark.slow
def test_cancel_stops_job_and_closes_runs(client_env: Servers) -> None:
    s = client_env
    space = _space(s, SLOW, "slow.yaml")
    result = _hyperseq("submit", space, "--final-top", "0", "--name", "slow", "--searcher", "random", "--trials", "30",
                       "--concurrency", "2", "--epochs", "3", "--address", s.address,
                       "--tracking-uri", s.tracking_uri, "--storage", str(s.tmp / "ray_results"))
    assert result.exit_code == 0, result.output
    client = connect_client(s.address)
    deadline = time.monotonic() + JOB_TIMEOUT                # until a trial is running
    while not any(open_store(s.tracking_uri).trial_runs(r.info.run_id)
                  for r in open_store(s.tracking_uri).job_runs("slow")):
        status = str(client.get_job_status("slow"))
        assert status in ("PENDING", "RUNNING"), client.get_job_logs("slow")[-3000:]
        assert time.monotonic() < deadline, status
        time.sleep(1)

    t0 = time.monotonic()
    cancel = _hyperseq("cancel", "slow", "--address", s.address)
    took = time.monotonic() - t0
    assert cancel.exit_code == 0, cancel.output
    assert "STOPPED" in cancel.stdout and took < 60       # the driver's grace (30 s) and then some
    [parent] = open_store(s.tracking_uri).job_runs("slow")
    assert parent.info.status in ("KILLED", "FAILED")
    children = open_store(s.tracking_uri).trial_runs(parent.info.run_id)
    assert children and not [c for c in children if c.info.status in ("RUNNING", "SCHEDULED")]
    print(f"cancel took {took:.1f} s; parent {parent.info.status}, closed by "
          f"{parent.data.tags.get(T.TAG_CLOSED_BY, 'the driver')}")

    twice = _hyperseq("cancel", "slow", "--address", s.address)         # idempotent
    assert twice.exit_code == 0 and "already ended: STOPPED" in twice.stdout


@pytest.mark.slow
def test_unreachable_address_submits_nothing(client_env: Servers) -> None:
    s = client_env
    space = _space(s, QUICK, "quick.yaml")
    t0 = time.monotonic()
    result = _hyperseq("submit", space, "--name", "nowhere", "--address", f"http://127.0.0.1:{_free_port()}",
                       "--tracking-uri", s.tracking_uri)
    assert time.monotonic() - t0 < 30        # refused, not retried: connection refused answers at once
    _one_line_error(result, 1, "cannot reach the Ray job server")
    assert open_store(s.tracking_uri).job_runs("nowhere") == []
    for command in (("status", "x"), ("logs", "x"), ("cancel", "x")):
        r = _hyperseq(*command, "--address", f"http://127.0.0.1:{_free_port()}")
        _one_line_error(r, 1, "cannot reach")


@pytest.mark.slow
def test_unreachable_tracking_server_submits_nothing(client_env: Servers) -> None:
    s = client_env
    space = _space(s, QUICK, "quick.yaml")
    t0 = time.monotonic()
    result = _hyperseq("submit", space, "--name", "untracked", "--address", s.address,
                       "--tracking-uri", f"http://127.0.0.1:{_free_port()}")
    assert time.monotonic() - t0 < 30        # refused, not retried: connection refused answers at once
    _one_line_error(result, 1, "MLflow tracking server")
    _one_line_error(_hyperseq("status", "untracked", "--address", s.address), 2, "no job named 'untracked'")


@pytest.mark.slow
@pytest.mark.skipif(AUTH != "token", reason="the head runs without token auth")
def test_token_auth_errors_never_show_the_token(client_env: Servers, monkeypatch: pytest.MonkeyPatch) -> None:
    s = client_env
    token = s.token_file.read_text()
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    r = _hyperseq("status", "quick", "--address", s.address)
    _one_line_error(r, 1, "requires a token", "RAY_AUTH_MODE=token")
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN", "not-the-token")            # takes precedence over the file
    r = _hyperseq("status", "quick", "--address", s.address)
    _one_line_error(r, 1, "rejected the token", "RAY_AUTH_TOKEN")
    assert "not-the-token" not in r.output and token not in r.output
    monkeypatch.setenv("RAY_ADDRESS", s.address)                     # --address from the environment
    monkeypatch.setenv("RAY_AUTH_TOKEN", token)
    r = _hyperseq("status", "no-such-job")
    _one_line_error(r, 2, "no job named 'no-such-job'")
    assert token not in r.output


# ---- no servers ---------------------------------------------------------------------------------
@pytest.mark.parametrize("args, code, words", [
    (["--trials", "0"], 2, ["--trials", "0"]),
    (["--searcher", "grid"], 2, ["--searcher", "grid"]),
    (["--storage", "relative/dir"], 2, ["--storage", "absolute"]),
    (["--tracking-uri", "sqlite:///:memory:"], 2, ["--tracking-uri"]),
    (["--address", "127.0.0.1:8265"], 2, ["--address", "http://HEAD:8265"]),
])
def test_usage_errors_before_contacting_anything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 args: list[str], code: int, words: list[str]) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    space = tmp_path / "q.yaml"
    space.write_text(QUICK)
    closed = f"http://127.0.0.1:{_free_port()}"                     # usage errors win over it
    r = _hyperseq("submit", str(space), "--address", closed, "--tracking-uri", closed, *args)
    _one_line_error(r, code, *words)


def test_missing_address_and_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    _one_line_error(_hyperseq("submit", "char_lm"), 2, "--address", "RAY_ADDRESS")
    _one_line_error(_hyperseq("status", "x"), 2, "RAY_ADDRESS")
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "missing"))
    _one_line_error(_hyperseq("status", "x", "--address", "http://127.0.0.1:1"), 2, "RAY_AUTH_TOKEN_PATH")


def test_submit_takes_exactly_runs_options() -> None:
    run = {p.name for p in cli.commands["run"].params}
    assert {p.name for p in cli.commands["submit"].params} == run | {"address"}


def test_tracking_uri_for_the_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert cluster_access.cluster_tracking_uri("sqlite:///m.db") == f"sqlite:///{tmp_path / 'm.db'}"
    assert cluster_access.cluster_tracking_uri("sqlite:////abs/m.db") == "sqlite:////abs/m.db"
    assert cluster_access.cluster_tracking_uri("mlruns") == (tmp_path / "mlruns").as_uri()
    for uri in ("http://h:5000", "https://h", "postgresql://u@h/db"):
        assert cluster_access.cluster_tracking_uri(uri) == uri


def test_token_sources_in_rays_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("from-home\n")
    (tmp_path / "t").write_text("from-path")
    for key in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    assert cluster_access.auth_headers() == {}                      # unset: like Ray, no token sent
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    assert cluster_access.auth_headers() == {"Authorization": "Bearer from-home"}
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "t"))
    assert cluster_access.auth_headers() == {"Authorization": "Bearer from-path"}
    monkeypatch.setenv("RAY_AUTH_TOKEN", "from-env")
    assert cluster_access.auth_headers() == {"Authorization": "Bearer from-env"}
    assert "from-env" not in cluster_access.describe_auth()


def test_stage_ships_packages_and_space(tmp_path: Path) -> None:
    space = tmp_path / "q.yaml"
    space.write_text(QUICK)
    dest = tmp_path / "stage"
    dest.mkdir()
    assert cluster_submit.stage(str(space), dest) == "_space/q.yaml"
    assert (dest / "_space" / "q.yaml").read_text() == QUICK
    for pkg in cluster_submit.PACKAGES:
        assert (dest / pkg / "__init__.py").is_file()
    assert not list(dest.rglob("__pycache__")) and not list(dest.rglob("*.db"))
    assert cluster_submit.stage("char_lm", tmp_path / "stage2") == "char_lm"


@pytest.mark.slow
def test_close_runs_ends_only_open_runs(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    parent, exp = open_store(uri).start_job("j", {}, {"trials": 3})
    other, _ = open_store(uri).start_job("other", {}, {"trials": 1})
    runs = {t: open_store(uri).open_child(exp, parent, "j", t, {"a": 1}) for t in ("t1", "t2", "t3")}
    runs["t1"].finish("FINISHED")
    runs["t2"].finish("FAILED")
    closed = control.close_runs(uri, "j")
    assert set(closed) == {runs["t3"].run_id, parent}
    c = open_store(uri).client
    statuses = [c.get_run(runs[t].run_id).info.status for t in ("t1", "t2", "t3")]
    assert statuses == ["FINISHED", "FAILED", "KILLED"]
    assert c.get_run(parent).info.status == "KILLED"
    assert c.get_run(parent).data.tags[T.TAG_CLOSED_BY] == "hyperseq cancel"
    assert c.get_run(other).info.status == "RUNNING"                  # another job is left alone
    assert control.close_runs(uri, "j") == []                          # idempotent
