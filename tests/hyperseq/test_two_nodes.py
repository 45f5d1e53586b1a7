"""`hyperseq submit` to a two-node Ray cluster on one machine, tracked by MLflow on PostgreSQL;
then the worker node is lost mid-job.

Two ``ray start --block`` processes (dashboard and MLflow on loopback; Ray 2.60's ``ray start``
replaces ``--node-ip-address 127.0.0.1`` by the machine's routable IP), each with its own temp dir, CPUs and a custom
resource: the head (1 CPU, ``head_node``; it also runs the job's driver, which takes no CPU)
and a worker node (2 CPUs, ``worker_node``), token auth on. Each trial's run records the node
that ran it (tag ``hyperseq.node``, the Ray node id: both nodes share one IP). Losing the
worker node is SIGKILL of its whole process tree (``ray start``, raylet, agents, workers): the
trials it ran are retried on the head (`--max-failures`), the retried attempts' runs end FAILED
with ``hyperseq.retried``, and the job still ends with one FINISHED run per trial.

Teardown kills exactly what this module started (process groups, trees, and whatever mentions
its two temp dirs); ``ray stop`` is never used (it would stop every Ray on the machine).
"""
from __future__ import annotations

import json
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Iterator

import pytest
from click.testing import CliRunner

from hyperseq.cli import cli
from hyperseq.cluster.ray_jobs import connect_client
from hyperseq.jobs.options import JobOptions
from hyperseq.tracking import tags as T
from hyperseq.tracking.store import open_store
from servers import (BIN, Tracking, clean_env, free_port, http_ok, kill_mentioning, kill_tree,
                     mlflow_on_postgres, stop_group, wait_until)

JOB_TIMEOUT = 240            # s for a submitted job to end
# RACE: hyperseq runs Tune with reuse_actors=True. When a trial ends, its (warm) actor is given
# to a pending trial even if that trial's own actor is still starting on another node, and the
# starting actor is removed (Tune's `_maybe_reuse_cached_actor`). A fresh actor on the worker
# node (process start, runtime_env, imports: 5-30 s on a loaded 2-core machine) therefore only
# gets a trial if it starts before a head trial ends: so the jobs here are as many trials as the
# concurrency (3: 1 on the head's CPU, 2 on the worker's), each longer than that start-up.
NO_FINAL = ["--final-top", "0"] if "final_top" in {f.name for f in fields(JobOptions)} else []
NODE = "hyperseq.node"
SPACE = """\
name: two_nodes
task: noop
decisions:
  - {name: a, choices: [1, 2, 3, 4, 5, 6]}
  - {name: b, choices: [x, y]}
  - {name: sleep, choices: [SLEEP]}
"""


@dataclass
class Node:
    proc: subprocess.Popen
    temp_dir: str
    log: Path

    def node_id(self) -> str | None:
        """The Ray node id, from its raylet's command line (once the raylet runs)."""
        for path in Path("/proc").iterdir():
            try:
                cmd = (path / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if "raylet/raylet" in cmd and self.temp_dir in cmd:
                match = re.search(r"--node_id=([0-9a-f]+)", cmd)
                if match:
                    return match.group(1)
        return None

    def kill(self) -> list[int]:
        """SIGKILL the node: its `ray start`, everything below it, its group and its temp dir's."""
        killed = kill_tree(self.proc.pid)
        stop_group(self.proc, signal.SIGKILL, grace=5)
        return killed + [int(line.split()[0]) for line in kill_mentioning(self.temp_dir)]


@dataclass
class Cluster:
    address: str             # dashboard URL (the job server)
    tracking: Tracking
    token_file: Path
    head: Node
    worker: Node
    head_id: str
    worker_id: str


def _ray_start(args: list[str], tmp: Path, name: str, env: dict[str, str]) -> Node:
    temp_dir = tempfile.mkdtemp(prefix=f"hs{name[0]}", dir="/tmp")    # short: socket paths
    log = tmp / f"{name}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(BIN / "ray"), "start", "--block", "--node-ip-address", "127.0.0.1", "--num-gpus", "0",
             "--object-store-memory", str(100 * 2**20), "--temp-dir", temp_dir, "--disable-usage-stats",
             "--dashboard-agent-listen-port", str(free_port()), "--metrics-export-port", str(free_port()),
             *args], env=env, cwd=tmp, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return Node(proc, temp_dir, log)


def _nodes_alive(address: str, headers: dict[str, str]) -> int:
    import requests
    try:
        reply = requests.get(f"{address}/api/v0/nodes", headers=headers, timeout=3).json()
        return sum(n.get("state") == "ALIVE" for n in reply["data"]["result"]["result"])
    except (requests.RequestException, ValueError, KeyError, TypeError):
        return 0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("two_nodes")
    token_file = tmp / "ray_token"
    token_file.write_text(secrets.token_hex(24))
    token_file.chmod(0o600)
    env = clean_env(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token_file),
                    RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S="0")
    headers = {"Authorization": f"Bearer {token_file.read_text()}"}
    gcs, dash = free_port(), free_port()
    nodes: list[Node] = []
    with mlflow_on_postgres(tmp) as tracking:
        try:
            nodes.append(_ray_start(
                ["--head", "--port", str(gcs), "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dash),
                 "--ray-client-server-port", str(free_port()), "--num-cpus", "1",
                 "--resources", '{"head_node": 1}'], tmp, "head", env))
            address = f"http://127.0.0.1:{dash}"
            wait_until(lambda: http_ok(f"{address}/api/jobs/", headers),
                       {"head": (nodes[0].proc, nodes[0].log)}, "Ray head")
            nodes.append(_ray_start(
                ["--address", f"127.0.0.1:{gcs}", "--num-cpus", "2", "--resources", '{"worker_node": 1}'],
                tmp, "worker", env))
            wait_until(lambda: _nodes_alive(address, headers) == 2 and nodes[1].node_id(),
                       {n.log.stem: (n.proc, n.log) for n in nodes}, "two Ray nodes")
            yield Cluster(address, tracking, token_file, *nodes, nodes[0].node_id(), nodes[1].node_id())
        finally:
            for node in reversed(nodes):
                stop_group(node.proc)                      # clean: SIGTERM to `ray start --block`
                left = kill_tree(node.proc.pid) + kill_mentioning(node.temp_dir)
                if left:
                    print(f"killed leftovers of the test's {node.log.stem} node:", *left, sep="\n  ")
                shutil.rmtree(node.temp_dir, ignore_errors=True)


@pytest.fixture
def client(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> Cluster:
    """A user's shell: token auth on, token file named; no RAY_ADDRESS / MLflow env."""
    for key in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "RAY_AUTH_TOKEN", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(cluster.token_file))
    return cluster


def _hyperseq(*args: str) -> Any:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, (args, result.output)
    return result


def _submit(c: Cluster, name: str, sleep: float, trials: int, epochs: int) -> None:
    space = c.tracking.tmp / f"{name}.yaml"
    space.write_text(SPACE.replace("SLEEP", str(sleep)))
    out = _hyperseq("submit", str(space), "--name", name, "--searcher", "random", "--trials", str(trials),
                    "--concurrency", "3", "--epochs", str(epochs), "--address", c.address,
                    "--tracking-uri", c.tracking.uri, "--storage", str(c.tracking.tmp / "ray_results"),
                    *NO_FINAL)
    assert out.stdout.strip() == name


def _wait_job(c: Cluster, name: str, timeout: float = JOB_TIMEOUT) -> str:
    """Ray's status of job `name` once it ended (or the last one seen at the timeout)."""
    client = connect_client(c.address)
    deadline = time.monotonic() + timeout
    while True:
        status = str(client.get_job_status(name))
        if status in ("SUCCEEDED", "FAILED", "STOPPED") or time.monotonic() > deadline:
            return status
        time.sleep(1)


def _runs(c: Cluster, name: str) -> tuple[Any, list[Any]]:
    [parent] = open_store(c.tracking.uri).job_runs(name)
    return parent, open_store(c.tracking.uri).trial_runs(parent.info.run_id)


def _check_status(c: Cluster, name: str, trials: int) -> None:
    info = json.loads(_hyperseq("status", name, "--address", c.address, "--format", "json").stdout)
    assert info["ray_status"] == "SUCCEEDED" and info["status"] == "FINISHED"
    assert info["trials_done"] == trials == info["trials"]
    best = json.loads(_hyperseq("best", name, "--top", "0", "--format", "json",
                                "--tracking-uri", c.tracking.uri).stdout)
    assert len(best) == trials and {r["status"] for r in best} == {"FINISHED"}


@pytest.mark.slow
def test_trials_run_on_both_nodes(client: Cluster) -> None:
    c, trials = client, 3
    t0 = time.monotonic()
    _submit(c, "both", sleep=10.0, trials=trials, epochs=2)     # see RACE
    final = _wait_job(c, "both")
    assert final == "SUCCEEDED", _hyperseq("logs", "both", "--address", c.address).output[-3000:]
    parent, runs = _runs(c, "both")
    assert parent.info.status == "FINISHED"
    assert Counter(r.info.status for r in runs) == {"FINISHED": trials}
    assert len({r.data.tags[T.TAG_TRIAL] for r in runs}) == trials
    nodes = Counter(r.data.tags[NODE] for r in runs)
    assert set(nodes) == {c.head_id, c.worker_id}, (nodes, c.head_id, c.worker_id)
    assert len({r.data.tags["hyperseq.node_ip"] for r in runs}) == 1       # one machine
    _check_status(c, "both", trials)
    print(f"two-node job took {time.monotonic() - t0:.1f} s; trials per node: "
          f"head {nodes[c.head_id]}, worker {nodes[c.worker_id]}")


def _wait_worker_trial(c: Cluster, name: str, timeout: float = JOB_TIMEOUT) -> None:
    """Until a trial on the worker node has reported (its run is RUNNING with the node tag)."""
    client = connect_client(c.address)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = str(client.get_job_status(name))
        assert status in ("PENDING", "RUNNING"), client.get_job_logs(name)[-3000:]
        if open_store(c.tracking.uri).job_runs(name):
            _, runs = _runs(c, name)
            if any(r.info.status == "RUNNING" and r.data.tags.get(NODE) == c.worker_id for r in runs):
                return
        time.sleep(0.5)
    raise AssertionError("no trial ever ran on the worker node")


@pytest.mark.slow
def test_lost_worker_node_trials_retried_on_head(client: Cluster) -> None:
    c, trials = client, 3
    t0 = time.monotonic()
    _submit(c, "lost", sleep=6.0, trials=trials, epochs=3)      # see RACE
    _wait_worker_trial(c, "lost")
    killed = c.worker.kill()
    killed_at = time.monotonic() - t0
    assert killed and c.worker.proc.poll() is not None
    final = _wait_job(c, "lost")
    logs = _hyperseq("logs", "lost", "--address", c.address).output
    assert final == "SUCCEEDED", logs[-3000:]

    parent, runs = _runs(c, "lost")
    counts = Counter(r.info.status for r in runs)
    retried = [r for r in runs if r.info.status == "FAILED"]
    assert parent.info.status == "FINISHED"
    assert counts == {"FINISHED": trials, "FAILED": len(retried)} and retried, counts   # none RUNNING
    assert all(r.data.tags.get("hyperseq.retried") == "true" for r in retried)
    finished = [r for r in runs if r.info.status == "FINISHED"]
    assert len({r.data.tags[T.TAG_TRIAL] for r in finished}) == trials
    assert {r.data.tags[T.TAG_TRIAL] for r in retried} <= {r.data.tags[T.TAG_TRIAL] for r in finished}
    lost = {r.data.tags[T.TAG_TRIAL] for r in retried if r.data.tags.get(NODE) == c.worker_id}
    assert lost, [(r.data.tags.get(NODE), r.data.tags.get(T.TAG_ERROR)) for r in retried]
    for run in finished:                         # the lost trials' retries ran on the head
        if run.data.tags[T.TAG_TRIAL] in lost:
            assert run.data.tags[NODE] == c.head_id
    _check_status(c, "lost", trials)
    print(f"worker node killed after {killed_at:.1f} s; job ended after {time.monotonic() - t0:.1f} s; "
          f"runs {dict(counts)}; retried trials {len(lost)} (errors: "
          f"{sorted({r.data.tags.get(T.TAG_ERROR, '')[:80] for r in retried})})")
