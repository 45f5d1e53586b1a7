"""Click options generated from the job option table (`hyperseq.jobs.options.JobOptions`)."""
from __future__ import annotations

from typing import Any

import click

from ..jobs.options import JobOptions


def job_options() -> list[click.Option]:
    """One click option per `JobOptions` field, with its type, default and help."""
    out = []
    for f in JobOptions.fields():
        meta = f.metadata
        kind: Any = click.Choice(meta["choices"]()) if meta["choices"] else meta["cli"]
        default = "" if f.name == "controller_options" else f.default
        if meta["multiple"]:                          # repeatable: a tuple, () when not given
            default = ()
        out.append(click.Option(["--" + f.name.replace("_", "-")], type=kind, default=default,
                                show_default=default not in (None, "", ()), help=meta["help"],
                                metavar=meta["metavar"], multiple=meta["multiple"]))
    return out
