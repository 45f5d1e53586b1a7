"""Real servers for integration tests: PostgreSQL, an MLflow server on it, and process cleanup.

PostgreSQL is Debian's ``postgresql`` package (``initdb``, ``postgres`` from
``/usr/lib/postgresql/<version>/bin``; `.ci/run` installs it). It runs on a free loopback port
with its data and its Unix socket in a fresh ``/tmp/hspg*`` directory (short: socket paths are
limited to ~100 bytes), trust auth on loopback only, fsync off (a throw-away database). As root
it runs as the unprivileged ``postgres`` user (``nobody`` if that user does not exist): the
server refuses to start as root.

The MLflow server is ``mlflow server --backend-store-uri postgresql+psycopg://... --workers 2``:
SQLAlchemy 2.1 (MLflow 3.17) maps plain ``postgresql://`` to psycopg 3 as well; the explicit
driver name says which DBAPI the ``postgres`` extra installs.

Each server is one process group started here, stopped by its leader's clean-shutdown signal
(SIGINT = PostgreSQL's "fast" shutdown; SIGTERM for MLflow's uvicorn), then SIGKILL of the
group. Nothing is found or stopped by name.
"""
from __future__ import annotations

import contextlib
import glob
import os
import pwd
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

BIN = Path(sys.executable).parent           # the venv's mlflow / ray
START_TIMEOUT = 180                          # s: MLflow's migrations on a loaded 2-core machine


def free_port() -> int:
    """A TCP port free on loopback now (the caller binds it soon after)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ray_head_command(ray_tmp: Path, dashboard_port: int, port_of=None) -> list[str]:
    """`ray start --head --block` on loopback: 2 CPUs, no GPU, a small object store, every
    port chosen free (by `port_of`, default `free_port`) and the given dashboard port."""
    port_of = port_of or free_port
    return [str(BIN / "ray"), "start", "--head", "--block", "--node-ip-address", "127.0.0.1",
            "--port", str(port_of()), "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard_port),
            "--ray-client-server-port", str(port_of()), "--dashboard-agent-listen-port", str(port_of()),
            "--num-cpus", "2", "--num-gpus", "0", "--object-store-memory", str(200 * 2**20),
            "--temp-dir", str(ray_tmp), "--disable-usage-stats"]


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without Ray/MLflow settings of the caller's shell, venv first on PATH."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("RAY_", "MLFLOW_")) and k != "PYTHONPATH"}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def http_ok(url: str, headers: dict[str, str] | None = None) -> bool:
    try:
        return requests.get(url, headers=headers or {}, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def stop_group(proc: subprocess.Popen, sig: int = signal.SIGTERM, grace: float = 20) -> None:
    """`sig` to the leader we started (it shuts its children down), then SIGKILL its group."""
    with contextlib.suppress(ProcessLookupError, subprocess.TimeoutExpired):
        proc.send_signal(sig)
        proc.wait(grace)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)


def _procs() -> Iterator[tuple[int, int, str]]:
    """(pid, parent pid, command line + cwd) of every process we may see (Linux /proc; no
    psutil: outside Ray's process it is not importable)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            with contextlib.suppress(OSError):
                cmd += " " + os.readlink(entry / "cwd")
        except (OSError, IndexError, ValueError):
            continue
        yield int(entry.name), ppid, cmd


def _kill(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def kill_tree(pid: int) -> list[int]:
    """SIGKILL `pid` and every descendant (found before any dies); returns the pids killed."""
    children: dict[int, list[int]] = {}
    for child, parent, _ in _procs():
        children.setdefault(parent, []).append(child)
    tree, todo = [], [pid]
    while todo:
        tree.append(todo.pop())
        todo += children.get(tree[-1], [])
    alive = [p for p in tree if Path(f"/proc/{p}").exists()]
    _kill(alive)
    return alive


def kill_mentioning(marker: str) -> list[str]:
    """SIGKILL processes whose command line or cwd contains `marker` (one of our temp dirs):
    Ray workers and job drivers that left their starter's process group."""
    found = [(pid, cmd) for pid, _, cmd in _procs() if marker in cmd and pid != os.getpid()]
    _kill([pid for pid, _ in found])
    return [f"{pid} {cmd[:100]}" for pid, cmd in found]


def wait_until(ready: Any, procs: dict[str, tuple[subprocess.Popen, Path]], what: str,
               timeout: float = START_TIMEOUT) -> None:
    """Poll `ready()` once a second; fail with a log tail if a process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while not ready():
        for name, (proc, log) in procs.items():
            assert proc.poll() is None, f"{name} exited {proc.returncode}:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"{what} did not answer within {timeout} s"
        time.sleep(1)


# ---- PostgreSQL --------------------------------------------------------------------------------
def postgres_bin() -> Path | None:
    """The newest Debian PostgreSQL server binaries, else those on PATH, else None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    initdb = found[-1] if found else shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _run_as() -> dict[str, Any]:
    """Popen keywords that drop root (PostgreSQL refuses to run as root); {} for a normal user."""
    if os.geteuid() != 0:
        return {}
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
    raise RuntimeError("running as root and no unprivileged user (postgres, nobody) to run PostgreSQL")


@dataclass
class Postgres:
    uri: str                 # SQLAlchemy URI of the `mlflow` database
    port: int
    root: Path               # data dir, socket dir and log


@contextlib.contextmanager
def postgres_server() -> Iterator[Postgres]:
    """A throw-away PostgreSQL server on 127.0.0.1 with an empty `mlflow` database."""
    import psycopg
    bindir = postgres_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not found (apt-get install postgresql)")
    who = _run_as()
    root = Path(tempfile.mkdtemp(prefix="hspg", dir="/tmp"))
    if who:
        os.chown(root, who["user"], who["group"])
    root.chmod(0o700)
    log = root / "postgres.log"
    port = free_port()
    proc = None
    try:
        subprocess.run([str(bindir / "initdb"), "-D", str(root / "data"), "-U", "postgres", "-A", "trust",
                        "-E", "UTF8", "--no-locale", "--no-sync"], check=True, capture_output=True,
                       cwd=root, **who)
        with open(log, "w") as out:
            if who:
                os.chown(log, who["user"], who["group"])
            proc = subprocess.Popen(
                [str(bindir / "postgres"), "-D", str(root / "data"), "-p", str(port),
                 "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={root}",
                 "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
                cwd=root, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **who)
        admin = f"host=127.0.0.1 port={port} user=postgres dbname=postgres connect_timeout=2"

        def ready() -> bool:
            try:
                with psycopg.connect(admin, autocommit=True):
                    return True
            except psycopg.OperationalError:
                return False
        wait_until(ready, {"postgres": (proc, log)}, "PostgreSQL", timeout=60)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("CREATE DATABASE mlflow")
        yield Postgres(f"postgresql+psycopg://postgres@127.0.0.1:{port}/mlflow", port, root)
    finally:
        if proc is not None:
            stop_group(proc, signal.SIGINT, grace=30)       # "fast" shutdown: clean, no recovery
        shutil.rmtree(root, ignore_errors=True)


# ---- MLflow on PostgreSQL ---------------------------------------------------------------------
@dataclass
class Tracking:
    uri: str                 # http://127.0.0.1:PORT
    db_uri: str              # the server's backend store
    tmp: Path                # artifacts, logs, scratch for the tests


@contextlib.contextmanager
def mlflow_server(backend_uri: str, tmp: Path, workers: int = 2) -> Iterator[Tracking]:
    """`mlflow server` on a free loopback port, with an artifact proxy under `tmp`."""
    port = free_port()
    log = tmp / "mlflow.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
             "--workers", str(workers), "--backend-store-uri", backend_uri,
             "--artifacts-destination", str(tmp / "artifacts")],
            env=clean_env(MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false"),  # no GenAI job runners:
            cwd=tmp, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)  # 7 fewer processes
    tracking = Tracking(f"http://127.0.0.1:{port}", backend_uri, tmp)
    try:
        wait_until(lambda: http_ok(f"{tracking.uri}/health"), {"mlflow": (proc, log)}, "MLflow server")
        yield tracking
    finally:
        stop_group(proc)


@contextlib.contextmanager
def mlflow_on_postgres(tmp: Path) -> Iterator[Tracking]:
    """PostgreSQL, and an MLflow server (2 workers) whose backend store it is."""
    with postgres_server() as pg, mlflow_server(pg.uri, tmp) as tracking:
        yield tracking


@pytest.fixture(scope="module")
def mlflow_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tracking]:
    """One PostgreSQL-backed MLflow server per test module (import this fixture to use it)."""
    with mlflow_on_postgres(tmp_path_factory.mktemp("mlflow_pg")) as tracking:
        yield tracking
