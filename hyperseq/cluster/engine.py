"""The cluster-engine interface: where a submitted search job's driver runs.

An engine submits a job (a shell command run as the job's driver, with a working directory
and environment), reports on it, streams its output and stops it. Job ids are hyperseq job
names. `ENGINES` is the registry (name -> "module:class"); a new engine is one module with an
`Engine` subclass and one line there. Errors are `ClusterError`s (exit code 1: unreachable or
refusing, 2: usage, e.g. no such job).
"""
from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from typing import Any, AsyncIterator, Mapping

ENGINES = {"ray": "hyperseq.cluster.ray_jobs:RayJobsEngine"}


class Engine(ABC):
    """One cluster's job server. `info` objects have ``status`` (str() and ``is_terminal()``),
    ``message``, ``start_time``/``end_time`` (ms) and ``metadata`` (dict)."""

    address: str

    @abstractmethod
    def submit(self, name: str, entrypoint: str, runtime_env: Mapping[str, Any],
               metadata: Mapping[str, str]) -> None:
        """Start job `name` running `entrypoint`."""

    @abstractmethod
    def exists(self, name: str) -> bool:
        """Whether the cluster knows a job of that name."""

    @abstractmethod
    def info(self, name: str) -> Any:
        """The job's details; ClusterError (exit 2) when there is no such job."""

    @abstractmethod
    def logs(self, name: str) -> str:
        """The driver's output so far."""

    @abstractmethod
    def tail(self, name: str) -> AsyncIterator[str]:
        """The driver's output as it comes, until the job ends."""

    @abstractmethod
    def stop(self, name: str) -> bool:
        """Ask the job to stop (True when a live job was told)."""

    @abstractmethod
    def jobs(self) -> list[Any]:
        """`info` of every job on the cluster."""


def connect(address: str | None, engine: str = "ray") -> Engine:
    """An engine for `address` (probed: unreachable or refused -> ClusterError)."""
    module, cls = ENGINES[engine].split(":")
    return getattr(importlib.import_module(module), cls)(address)
