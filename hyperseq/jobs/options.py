"""THE option table of a job: one `JobOptions` field per option, with its default, help and check.

Everything else is generated from it: the click options of ``run`` and ``submit``
(`hyperseq.cli.options`), the MLflow params and the typed ``hyperseq.options`` tag a resume
reads back, and the driver command line of a cluster job. Adding an option is one field here.
"""
from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from controller.pairs import format_pairs, parse_pairs

from .. import schedulers, searchers
from .objectives import check_directions, parse_constraint, parse_objective
from ..tracking.store import StoreError, check_uri

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
MAX_SEED = 2 ** 32 - 1          # numpy's (TPE's) seed range; the controller and torch take it too
MIN_SHARE = 1e-4                # Ray rounds resource requests to 4 decimals: less would be 0
FINAL_SUFFIX = ".final"         # a job's final-phase Tune folder is <storage>/<job>.final


class JobError(ValueError):
    """An invalid job option; `param` is its Python name (the CLI shows ``--param-name``)."""

    def __init__(self, param: str, value: Any, reason: str) -> None:
        self.param, self.value, self.reason = param, value, reason
        super().__init__(f"{param}={value!r}: {reason}")


class Unavailable(ValueError):
    """Something the job runs on is misconfigured (`exit_code` 2) or does not answer (1), e.g.
    `$RAY_ADDRESS`; the message is the whole line."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class JobFailed(RuntimeError):
    """A job that ran but has no answer (every search trial failed); its parent run is FAILED.
    The message is the whole line; the CLI exits with `exit_code`."""

    exit_code = 1


# ---- checks: (option name, value) -> normalised value, or JobError --------------------------
def integer(low: int, high: int) -> Callable[[str, Any], int]:
    def check(param: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise JobError(param, value, "must be an integer")
        if value < low:
            raise JobError(param, value, f"must be >= {low}")
        if value > high:
            raise JobError(param, value, f"must be <= {high}")
        return value
    return check


def number(param: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise JobError(param, value, "must be a finite number")
    return value


def gpus(param: str, value: Any) -> float:
    value = number(param, value)
    if value < 0:
        raise JobError(param, value, "must be >= 0")
    if 0 < value < MIN_SHARE:
        raise JobError(param, value, f"must be 0 or >= {MIN_SHARE:g} (Ray's resource granularity)")
    if value > 1 and value != int(value):
        raise JobError(param, value, "above 1 must be a whole number of GPUs")
    return value


def cpus(param: str, value: Any) -> float:
    if number(param, value) <= 0:
        raise JobError(param, value, "must be > 0")
    if value < MIN_SHARE:
        raise JobError(param, value, f"must be >= {MIN_SHARE:g} (Ray's resource granularity)")
    return value


def one_of(names: Callable[[], tuple[str, ...]]) -> Callable[[str, Any], str]:
    def check(param: str, value: Any) -> str:
        if value not in names():
            raise JobError(param, value, f"choose one of {', '.join(names())}")
        return value
    return check


def check_name(param: str, name: Any) -> str:
    """A job name: letters, digits, '_', '-', '.'; no '/', no '..' (it names a directory)."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name) or ".." in name:
        raise JobError(param, name, "must be 1-128 letters, digits, '_', '-' or '.', starting with a "
                       "letter or digit, without '/' or '..'")
    return name


def new_name(param: str, name: Any) -> str:
    """A new job's name: as `check_name`, and not ending in '.final' (any case), the suffix of
    another job's final-phase folder: job ``X.final`` would share it with job ``X``. Existing
    jobs are still looked up by `check_name` alone (resume, warm start)."""
    check_name(param, name)
    if name.lower().endswith(FINAL_SUFFIX):
        raise JobError(param, name, f"must not end in {FINAL_SUFFIX!r}: <storage>/<job>{FINAL_SUFFIX} "
                       "holds a job's final phase")
    return name


def warm_jobs(param: str, value: Any) -> str:
    """``auto`` or comma-separated job names (each checked like --name)."""
    if value == "auto":
        return value
    if not isinstance(value, str) or not value.strip():
        raise JobError(param, value, "must be auto or JOB[,JOB...]")
    for name in value.split(","):
        check_name(param, name.strip())
    return ",".join(name.strip() for name in value.split(","))


def uri(param: str, value: Any) -> str:
    """A tracking URI any process can reach again: a known scheme, not in-memory."""
    if not isinstance(value, str) or not value.strip():
        raise JobError(param, value, "must be a non-empty URI")
    try:
        check_uri(value)
    except StoreError as err:
        raise JobError(param, value, err.reason) from None
    return value


def path(param: str, value: Any) -> str:
    value = os.fspath(value) if isinstance(value, os.PathLike) else value
    if not isinstance(value, str) or not value.strip() or "\0" in value:
        raise JobError(param, value, "must be a non-empty path")
    return value


def pairs(param: str, value: Any) -> dict[str, Any]:
    """``K=V,...`` (the CLI) or a mapping (Python)."""
    try:
        return parse_pairs(value) if isinstance(value, str) else dict(value or {})
    except (TypeError, ValueError) as err:
        raise JobError(param, value, str(err)) from None


def repeated(parse: Callable[[str], Any], whole: Callable[[list], None] | None = None) -> Callable[[str, Any], Any]:
    """A repeatable option: strings, each parsed by `parse`, then `whole` checks them together
    (both raise ValueError); normalised to a tuple of the parsed values' text, None if empty."""
    def check(param: str, value: Any) -> tuple[str, ...] | None:
        texts = (value,) if isinstance(value, str) else value
        if not isinstance(texts, (list, tuple)) or not all(isinstance(t, str) for t in texts):
            raise JobError(param, value, "must be a string or a list of strings")
        parsed = []
        for text in texts:
            try:
                parsed.append(parse(text))
            except ValueError as err:
                raise JobError(param, text, str(err)) from None
        try:
            (whole or (lambda _: None))(parsed)
        except ValueError as err:
            raise JobError(param, list(texts), str(err)) from None
        return tuple(str(p) for p in parsed) or None
    return check


def option(default: Any, help: str, check: Callable[[str, Any], Any] | None = None, *,
           cli: Any = None, metavar: str | None = None, param: bool = True,
           choices: Callable[[], tuple[str, ...]] | None = None, multiple: bool = False) -> Any:
    """A `JobOptions` field. `cli`: its click type (int, float, str; choices make a Choice);
    `multiple`: repeatable on the command line (a tuple of strings);
    `param`: logged as an MLflow param; `check` normalises a given value or raises JobError."""
    meta = {"help": help, "check": check, "cli": cli, "metavar": metavar, "param": param,
            "choices": choices, "multiple": multiple}
    if isinstance(default, dict):
        return dataclasses.field(default_factory=dict, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class JobOptions:
    """A job's options (None = decided when the job is prepared)."""

    searcher: str = option("rnn", "What proposes configurations.", one_of(searchers.names),
                           cli=str, choices=searchers.names)
    trials: int = option(20, "Child models to train.", integer(1, 1_000_000), cli=int)
    concurrency: int = option(2, "Trials at once.", integer(1, 10_000), cli=int)
    epochs: int = option(3, "Epoch budget per trial.", integer(1, 1_000_000), cli=int)
    scheduler: str = option("auto", "Early stopping of trials; auto = hyperband for rnn from "
                            f"{schedulers.HYPERBAND_MIN_EPOCHS} epochs, else none.",
                            one_of(schedulers.option_names), cli=str, choices=schedulers.option_names)
    gpus_per_trial: float = option(0.0, "GPU share per trial; 0.25 packs four trials on one GPU.",
                                   gpus, cli=float)
    cpus_per_trial: float = option(1.0, "CPUs per trial.", cpus, cli=float)
    name: str | None = option(None, "Job name [default: <space>-<searcher>-<timestamp>].",
                              new_name, cli=str, param=False)
    tracking_uri: str | None = option(None, "MLflow store [default: $MLFLOW_TRACKING_URI or "
                                      "sqlite:///mlflow.db].", uri, cli=str, metavar="URI", param=False)
    seed: int = option(0, "Seeds the searcher and each child.", integer(0, MAX_SEED), cli=int)
    max_failures: int = option(2, "Retries of a trial whose worker crashed.", integer(0, 1000), cli=int)
    storage: str | None = option(None, "Ray Tune results [default: ~/ray_results].", path, cli=str,
                                 metavar="DIR", param=False)
    final_top: int = option(3, "Best distinct configs retrained at the final budget, with the "
                            "task's default (0: no final phase).", integer(0, 1000), cli=int)
    final_epochs: int | None = option(None, "Epochs of the final phase [default: 3 x --epochs].",
                                      integer(1, 1_000_000), cli=int)
    warm_start: str | None = option(None, "Pre-train on the trials of earlier jobs: JOB[,JOB...], or "
                                    "auto (every finished job of the same space).", warm_jobs,
                                    cli=str, metavar="JOBS")
    objective: tuple[str, ...] | None = option(
        None, "A metric to optimise, NAME:min or NAME:max; repeatable: several make a "
        "multi-objective job, the first ranks the answer [default: the task's metric].",
        repeated(parse_objective, check_directions), cli=str, metavar="NAME:min|max", multiple=True)
    constraint: tuple[str, ...] | None = option(
        None, "A bound a trial must respect to be feasible (only feasible configs are retrained "
        "and answer), e.g. \"params<=50000\" (or >=); repeatable [default: none].",
        repeated(parse_constraint), cli=str, metavar="NAME<=V", multiple=True)
    controller_options: dict = option({}, "rnn Controller options, e.g. lr=0.01,elite_size=0 (see "
                                      "ControllerOptions).", pairs, cli=str, metavar="K=V,...", param=False)

    @classmethod
    def fields(cls) -> tuple[dataclasses.Field, ...]:
        return dataclasses.fields(cls)

    @classmethod
    def checked(cls, **given: Any) -> "JobOptions":
        """Options with every given value checked (JobError names the first bad one)."""
        known = {f.name: f for f in cls.fields()}
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise TypeError(f"unknown job option(s): {', '.join(unknown)}")
        values = {}
        for key, value in given.items():
            if value is None:                       # not given: the default
                continue
            check = known[key].metadata["check"]
            values[key] = check(key, value) if check is not None else value
        return cls(**values)

    def replace(self, **changes: Any) -> "JobOptions":
        return dataclasses.replace(self, **changes)

    def saved(self) -> dict[str, Any]:
        """The options a resume needs, typed (JSON-able): all but where the job lives."""
        out = dataclasses.asdict(self)
        for key in ("name", "tracking_uri", "storage"):
            out.pop(key)
        return out

    def params(self) -> dict[str, Any]:
        """MLflow params: the options shown in the UI, and each controller option."""
        out = {f.name: getattr(self, f.name) for f in self.fields() if f.metadata["param"]}
        for key in [f.name for f in self.fields() if f.metadata["multiple"]]:
            if out.get(key):
                out[key] = ",".join(out[key])
            else:                                      # not given: no param (unchanged jobs)
                out.pop(key, None)
        out.update({f"controller.{k}": v for k, v in self.controller_options.items()})
        return out

    def command_line(self) -> list[str]:
        """``--option value`` for every option set (the driver command of a cluster job)."""
        args: list[str] = []
        for f in self.fields():
            value = getattr(self, f.name)
            if value is None or value == {}:
                continue
            if f.metadata["multiple"]:
                args += [arg for text in value for arg in ("--" + f.name.replace("_", "-"), text)]
                continue
            text = format_pairs(value) if isinstance(value, Mapping) else (
                repr(float(value)) if f.metadata["cli"] is float else str(value))
            args += ["--" + f.name.replace("_", "-"), text]
        return args
