"""Probing a tracking store before use: one line within seconds instead of MLflow's retries.

MLflow retries an unreachable server or database for minutes and then prints a long traceback;
a directory where the sqlite file should be fails deep inside SQLAlchemy. `probe_store` checks
what can be checked cheaply, with short timeouts, and never creates anything: a local store's
path (a regular SQLite file, or a directory that can be created), a server's ``/health``, a
database's TCP port. Messages never include a password from the URI.
"""
from __future__ import annotations

import os
import socket
import struct
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from .store import DB_PORTS, PROBE_TIMEOUT, StoreError, check_uri, local_path, scheme_of

SQLITE_MAGIC = b"SQLite format 3\x00"


def redact(uri: str) -> str:
    """`uri` with any password replaced by ``***`` (and bounded)."""
    parsed = urlparse(uri)
    if parsed.password:
        uri = uri.replace(f":{parsed.password}@", ":***@", 1)
    return uri if len(uri) <= 200 else uri[:197] + "..."


def probe_store(uri: str, write: bool = False) -> None:
    """StoreError (exit 1) when the store at `uri` cannot be used (for writing, with `write`);
    exit 2 for a URI that can never work (`check_uri`)."""
    check_uri(uri)
    scheme = scheme_of(uri)
    if scheme in ("sqlite", "file", ""):
        _probe_path(uri, Path(local_path(uri) or ""), scheme == "sqlite", write)
    elif scheme in ("http", "https"):
        _probe_http(uri)
    elif scheme in DB_PORTS:
        _probe_tcp(uri, scheme)


def _fail(uri: str, why: str) -> StoreError:
    return StoreError(f"tracking store {redact(uri)}: {why}")


def _probe_path(uri: str, path: Path, sqlite: bool, write: bool) -> None:
    if not path.exists():
        if write:
            _creatable(uri, path)
        return
    if not sqlite:
        if not path.is_dir():
            raise _fail(uri, f"{path} is not a directory")
        return
    if not path.is_file():
        raise _fail(uri, f"{path} is not a file ({'a directory' if path.is_dir() else 'not a regular file'})")
    try:
        with path.open("rb") as f:
            head = f.read(len(SQLITE_MAGIC))
    except OSError as err:
        raise _fail(uri, f"cannot read {path} ({err.strerror or err})") from None
    if head and head != SQLITE_MAGIC:
        raise _fail(uri, f"{path} is not an SQLite database")
    if write and not (os.access(path, os.W_OK) and writable_dir(path.parent)):
        raise _fail(uri, f"{path} (or its directory) is not writable")


def writable_dir(path: Path) -> bool:
    """A directory this process can create files in (read-only mounts count as not)."""
    if not path.is_dir() or not os.access(path, os.W_OK | os.X_OK):
        return False
    return not os.statvfs(path).f_flag & os.ST_RDONLY


def _creatable(uri: str, path: Path) -> None:
    ancestor = path.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not writable_dir(ancestor):
        what = "not a directory" if not ancestor.is_dir() else "not writable"
        raise _fail(uri, f"{path} cannot be created: {ancestor} is {what}")


def _reason(err: BaseException) -> str:
    cause = getattr(err, "reason", err)
    if isinstance(cause, ConnectionRefusedError):
        return "connection refused"
    if isinstance(cause, (socket.timeout, TimeoutError)):
        return f"no answer within {PROBE_TIMEOUT:g} s"
    if isinstance(cause, socket.gaierror):
        return "unknown host"
    text = str(cause).strip().splitlines()
    return text[0][:200] if text else type(cause).__name__


def _probe_http(uri: str) -> None:
    url = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT) as r:  # noqa: S310 - http(s) only
            status = r.status
    except urllib.error.HTTPError as err:
        status = err.code
    except (OSError, ValueError) as err:
        raise _fail(uri, f"cannot reach the MLflow server: {_reason(err)}") from None
    if status != 200:
        raise _fail(uri, f"the MLflow server is not healthy: GET /health answered {status}")


def _probe_tcp(uri: str, scheme: str) -> None:
    """Connect, and for PostgreSQL / MySQL hear the server speak (an SSL request answered
    ``S``/``N``; MySQL's greeting): a port that accepts and stays silent fails too."""
    parsed = urlparse(uri)
    if not parsed.hostname:                      # a Unix socket: nothing cheap to probe
        return
    try:
        port = parsed.port or DB_PORTS[scheme]
    except ValueError:
        raise StoreError(f"tracking URI {redact(uri)}: invalid port", 2) from None
    where = f"the {scheme} database at {parsed.hostname}:{port}"
    try:
        with socket.create_connection((parsed.hostname, port), timeout=PROBE_TIMEOUT) as sock:
            if scheme == "postgresql":
                sock.sendall(struct.pack("!ii", 8, 80877103))      # SSLRequest
            answer = sock.recv(1) if scheme in ("postgresql", "mysql") else b"-"
    except OSError as err:
        raise _fail(uri, f"cannot reach {where}: {_reason(err)}") from None
    if not answer or (scheme == "postgresql" and answer not in (b"S", b"N")):
        raise _fail(uri, f"{where} accepted a connection but did not answer as {scheme}")
