"""`RayJobsEngine`: the cluster engine on Ray's Jobs API (the dashboard's job server).

Ray's own client lets ``$RAY_ADDRESS`` override an explicit address; here the explicit address
wins (the environment is hidden from Ray while the client is built). The auth header is built
by `access.auth_headers` rather than Ray's process-wide token cache, so one process can talk
to several clusters. Every HTTP request has a connect and a read timeout.
"""
from __future__ import annotations

from typing import Any, AsyncIterator, Mapping

from ..envvars import temp_env
from .access import (CONNECT_TIMEOUT, PROBE_READ_TIMEOUT, READ_TIMEOUT, ClusterError, auth_headers,
                     describe_auth, first_line, reason, resolve_address)
from .engine import Engine

ADDRESS_ENV = ("RAY_API_SERVER_ADDRESS", "RAY_ADDRESS")


def _client_class(headers: dict[str, str]) -> type:
    from ray.job_submission import JobSubmissionClient

    class BoundedClient(JobSubmissionClient):
        """`JobSubmissionClient` whose every request has a (connect, read) timeout and exactly
        `headers`: after a local `ray.init` in this process Ray would add its cached token even
        with ``RAY_AUTH_MODE=disabled``, so a cluster without auth would see a wrong token."""

        timeout: tuple[float, float] = (CONNECT_TIMEOUT, PROBE_READ_TIMEOUT)

        def _do_request(self, method: str, endpoint: str, **kwargs: Any) -> Any:
            self._headers = dict(headers)
            kwargs.setdefault("timeout", self.timeout)
            return super()._do_request(method, endpoint, **kwargs)

    return BoundedClient


def auth_failure(url: str, err: Exception) -> str:
    """One line for a 401 / 403 from the job server (the token is never shown)."""
    if str(err).startswith("Authentication required"):
        return (f"the Ray cluster at {url} requires a token ({describe_auth()}): set RAY_AUTH_MODE=token "
                "and RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token")
    return f"the Ray cluster at {url} rejected the token ({describe_auth()}): it is not the cluster's token"


def request_error(url: str, err: Exception) -> ClusterError:
    """A job-server call that failed after connecting, as one line."""
    from ray.exceptions import AuthenticationError
    if isinstance(err, AuthenticationError):
        return ClusterError(auth_failure(url, err))
    return ClusterError(f"Ray job server at {url}: {reason(err)}")


def connect_client(address: str | None) -> Any:
    """A job-server client for `address` (probed: unreachable or refused -> ClusterError)."""
    url = resolve_address(address)
    headers = auth_headers()
    try:
        import requests
        from ray.exceptions import AuthenticationError
    except ImportError as err:                       # ray[tune] without ray[default]
        raise ClusterError(f"the Ray Jobs client needs ray[default] ({err})", 2) from None
    try:
        with temp_env(dict.fromkeys(ADDRESS_ENV)):
            client = _client_class(headers)(url, headers=headers)
    except AuthenticationError as err:
        raise ClusterError(auth_failure(url, err)) from None
    except (ConnectionError, requests.exceptions.RequestException) as err:
        raise ClusterError(f"cannot reach the Ray job server at {url}: {reason(err)}") from None
    except RuntimeError as err:                      # e.g. 404 on /api/version: not a dashboard
        raise ClusterError(f"{url} did not answer as a Ray job server: {first_line(err)}") from None
    client.timeout = (CONNECT_TIMEOUT, READ_TIMEOUT)
    client._headers = dict(headers)                  # also for `tail_job_logs` (aiohttp)
    return client


class RayJobsEngine(Engine):
    """Jobs on a Ray cluster: the job name is Ray's ``submission_id``."""

    def __init__(self, address: str | None) -> None:
        self.client = connect_client(address)
        self.address = self.client.get_address()

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as err:                     # noqa: BLE001 - one line, exit 1
            raise request_error(self.address, err) from None

    def submit(self, name: str, entrypoint: str, runtime_env: Mapping[str, Any],
               metadata: Mapping[str, str]) -> None:
        self._call(self.client.submit_job, entrypoint=entrypoint, submission_id=name,
                   runtime_env=dict(runtime_env), metadata=dict(metadata))

    def exists(self, name: str) -> bool:
        try:
            self.client.get_job_info(name)
        except RuntimeError as err:
            if "status code 404" in str(err):
                return False
            raise request_error(self.address, err) from None
        return True

    def info(self, name: str) -> Any:
        try:
            return self.client.get_job_info(name)
        except RuntimeError as err:
            if "status code 404" in str(err):
                raise ClusterError(f"no job named {name!r} on the Ray cluster at {self.address}", 2) from None
            raise request_error(self.address, err) from None

    def logs(self, name: str) -> str:
        self.info(name)
        return self._call(self.client.get_job_logs, name)

    def tail(self, name: str) -> AsyncIterator[str]:
        return self.client.tail_job_logs(name)

    def stop(self, name: str) -> bool:
        return bool(self._call(self.client.stop_job, name))

    def jobs(self) -> list[Any]:
        return list(self._call(self.client.list_jobs))
