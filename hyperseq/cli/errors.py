"""One-line errors with exit codes: 2 usage (option, spec, unknown job), 1 a server, 130 Ctrl-C."""
from __future__ import annotations

import reprlib
import sys
from typing import Any

import click

MAX_MESSAGE = 500                 # characters of one error line: values can be megabytes


class Fail(click.ClickException):
    """A one-line error with a chosen exit code."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(one_line(message))
        self.exit_code = exit_code


def one_line(message: str) -> str:
    """`message` on one line, at most MAX_MESSAGE characters."""
    text = " ".join(str(message).split())
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE - 3] + "..."


def _show(value: Any) -> str:
    short = reprlib.Repr()
    short.maxstring = short.maxother = 120
    return short.repr(value)


class OneLineErrors(click.Group):
    """Click group whose usage errors are one line on stderr (no usage block), exit 2; a store
    or service that does not answer, or a job with no answer (`JobFailed`), is one line too
    (exit 1)."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        from ..jobs.options import JobFailed, Unavailable
        from ..tracking.store import StoreError
        try:
            return super().main(args, prog_name or "hyperseq", complete_var, standalone_mode=False, **extra)
        except click.ClickException as err:
            click.echo(f"Error: {one_line(err.format_message())}", err=True)
            sys.exit(err.exit_code)
        except (StoreError, Unavailable, JobFailed) as err:
            click.echo(f"Error: {one_line(str(err))}", err=True)
            sys.exit(err.exit_code)
        except click.exceptions.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(130)


def option_error(err: Exception, space: str | None = None) -> Fail:
    """JobError / SpecError / JobNotFound / ClusterError / StoreError -> a message naming the
    option or field (values quoted at bounded length)."""
    from search_spaces import SpecError

    from ..cluster.access import ClusterError
    from ..jobs.options import JobError
    if isinstance(err, JobError):
        flag = "JOB" if err.param == "job" else "--" + err.param.replace("_", "-")
        return Fail(f"Invalid value for '{flag}': {_show(err.value)} {err.reason}")
    if isinstance(err, SpecError):
        where = f" {space}" if space and not str(err).startswith(space) and err.path != "SPACE" else ""
        return Fail(f"Invalid space{where}: {err}")
    if isinstance(err, ClusterError):
        return Fail(str(err), err.exit_code)
    return Fail(str(err), getattr(err, "exit_code", 2))
