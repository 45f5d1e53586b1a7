"""Reaching a Ray cluster's job server and a shared MLflow server, with bounded waits.

- Address: the dashboard URL (``http://HEAD:8265``), from ``--address`` or ``$RAY_ADDRESS``.
  Ray's own client lets ``$RAY_ADDRESS`` override an explicit address; here the explicit
  address wins (the environment is hidden from Ray while the client is built).
- Auth (Ray 2.60 token auth): with ``RAY_AUTH_MODE=token`` the token comes from
  ``$RAY_AUTH_TOKEN``, else the file named by ``$RAY_AUTH_TOKEN_PATH``, else
  ``~/.ray/auth_token`` — Ray's own order — and is sent as ``Authorization: Bearer ...``.
  Unset or ``disabled``: no token is sent (as Ray does for an explicit address), so a
  token-protected cluster answers 401 and the error says to set ``RAY_AUTH_MODE=token``.
  The header is built here rather than by Ray's process-wide token cache, so one process
  can talk to several clusters. The token never appears in messages or logs.
- Every HTTP request has a connect and a read timeout; an unreachable address fails in
  seconds with one line (`ClusterError`, exit code 1), never a half-done operation.
"""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

from ..tracking.store import is_server, local_path, open_store

CONNECT_TIMEOUT = 5.0            # seconds to open a TCP connection (job server, MLflow)
PROBE_READ_TIMEOUT = 5.0         # seconds for the first answer (version probe, /health)
READ_TIMEOUT = 300.0             # seconds for later answers (a working_dir upload can be slow)
ADDRESS_ENV = ("RAY_API_SERVER_ADDRESS", "RAY_ADDRESS")


class ClusterError(Exception):
    """A one-line failure; `exit_code` 1: unreachable / refused / server error, 2: usage."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# ---- address ----------------------------------------------------------------------------------
def dashboard_address_from_env() -> str | None:
    """``$RAY_ADDRESS`` when it is a dashboard URL (http/https), else None."""
    value = os.environ.get("RAY_ADDRESS", "").strip()
    return value if urlparse(value).scheme in ("http", "https") else None


def resolve_address(address: str | None) -> str:
    """The job server URL without a trailing slash; ClusterError(exit 2) when missing or not http(s)."""
    if not address:
        raise ClusterError("no Ray cluster address: give --address http://HEAD:8265 or set RAY_ADDRESS", 2)
    parsed = urlparse(address.strip())
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ClusterError(f"Invalid value for '--address': {address!r} must be the Ray dashboard URL, "
                           "e.g. http://HEAD:8265", 2)
    try:
        parsed.port
    except ValueError:
        raise ClusterError(f"Invalid value for '--address': {address!r} has an invalid port", 2) from None
    return address.strip().rstrip("/")


# ---- auth -------------------------------------------------------------------------------------
def auth_mode() -> str:
    """``token`` or ``disabled`` from ``$RAY_AUTH_MODE`` (unset = disabled, as Ray's clients do)."""
    mode = os.environ.get("RAY_AUTH_MODE", "").strip().lower() or "disabled"
    if mode not in ("token", "disabled"):
        raise ClusterError(f"RAY_AUTH_MODE={mode!r}: choose token or disabled", 2)
    return mode


def _token() -> tuple[str, str]:
    """(token, where it came from) in Ray's order; ClusterError(exit 2) when none."""
    if os.environ.get("RAY_AUTH_TOKEN", "").strip():
        return os.environ["RAY_AUTH_TOKEN"].strip(), "RAY_AUTH_TOKEN"
    named = os.environ.get("RAY_AUTH_TOKEN_PATH", "").strip()
    path = Path(named).expanduser() if named else Path.home() / ".ray" / "auth_token"
    try:
        token = path.read_text().strip()
    except OSError:
        token = ""
    if token:
        return token, str(path)
    if named:
        raise ClusterError(f"RAY_AUTH_TOKEN_PATH={named}: the file is missing, unreadable or empty", 2)
    raise ClusterError("RAY_AUTH_MODE=token but no token found: set RAY_AUTH_TOKEN or "
                       "RAY_AUTH_TOKEN_PATH, or copy the head's ~/.ray/auth_token (`ray get-auth-token`)", 2)


def auth_headers() -> dict[str, str]:
    """The Authorization header for the job server ({} when auth is disabled)."""
    if auth_mode() == "disabled":
        return {}
    token, _ = _token()
    return {"Authorization": f"Bearer {token}"}


def describe_auth() -> str:
    """Where the token comes from, for messages: never the token itself."""
    if auth_mode() == "disabled":
        return "RAY_AUTH_MODE disabled (no token sent)"
    return f"RAY_AUTH_MODE=token, token from {_token()[1]}"


def first_line(err: Exception) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def reason(err: Exception) -> str:
    """A short cause: 'connection refused', 'timed out after 5 s', or the first line."""
    text = str(err)
    if "Connection refused" in text:
        return "connection refused"
    if "Failed to connect" in text:               # Ray's wording for refused and timed out alike
        return (f"no answer within {CONNECT_TIMEOUT:g} s or connection refused (is `ray start --head` "
                "running there, with that dashboard port?)")
    if "timed out" in text.lower() or "timeout" in type(err).__name__.lower():
        return f"no answer within {CONNECT_TIMEOUT:g} s"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "unknown host"
    return first_line(err)


# ---- the tracking store -----------------------------------------------------------------------
def cluster_tracking_uri(uri: str) -> str:
    """A tracking URI that means the same on the cluster's head node.

    http(s) and database URIs pass through; a sqlite or file store relative to the current
    directory becomes absolute (a path on the head node: this machine's path only helps when
    the head shares this filesystem, which is why a tracking server is recommended).
    """
    uri = uri.strip()
    scheme = urlparse(uri).scheme
    path = local_path(uri)
    if scheme == "sqlite":
        if path is None:
            raise ClusterError(f"Invalid value for '--tracking-uri': {uri!r}: an in-memory store cannot "
                               "be shared with the cluster; use http://HOST:5000 (an MLflow server)", 2)
        return uri if path.is_absolute() else f"sqlite:///{(Path.cwd() / path).resolve()}"
    if scheme in ("", "file"):
        path = path.expanduser()
        return uri if path.is_absolute() and scheme else (Path.cwd() / path).resolve().as_uri()
    return uri


def check_tracking_server(uri: str) -> None:
    """GET ``/health`` of an MLflow server (short timeouts); other stores are not probed."""
    if not is_server(uri):
        return
    import requests
    url = uri.rstrip("/") + "/health"
    try:
        r = requests.get(url, timeout=(CONNECT_TIMEOUT, PROBE_READ_TIMEOUT))
    except requests.exceptions.RequestException as err:
        raise ClusterError(f"cannot reach the MLflow tracking server at {uri}: {reason(err)}") from None
    if r.status_code != 200:
        raise ClusterError(f"the MLflow tracking server at {uri} is not healthy: GET /health answered "
                           f"{r.status_code}")


def tracking_reachable(uri: str) -> bool:
    """Whether the store can be read from here (a server answers, a local store exists)."""
    if is_server(uri):
        try:
            check_tracking_server(uri)
        except ClusterError:
            return False
        return True
    return open_store(uri).exists()
