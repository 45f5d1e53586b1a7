"""The generated reference pages name every job option, CLI option and `ControllerOptions` field.

The pages are produced at build time by `docs/hooks.py` (job and controller option tables) and
mkdocs-click (the CLI), from the code. These tests call the same generators with the options
the pages give them and check the output against the code's own lists: an option added to
the code but lost by a generator, or a page that stops calling its generator, fails here
without a full docs build.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import re
from pathlib import Path

import click
import pytest

from controller import ControllerOptions
from hyperseq.cli import cli
from hyperseq.jobs.options import JobOptions

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def _hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hooks = _hooks()


def _rows(table: str) -> list[list[str]]:
    """The body rows of the Markdown tables in `table`, as lists of cell texts."""
    rows = []
    for line in table.splitlines():
        if line.startswith("| ") and not line.startswith("| ---"):
            rows.append(_cells(line))
    return rows


def _cells(line: str) -> list[str]:
    """A table row's cells: split on `|` outside code spans and not escaped, as the tables
    extension reads it."""
    cells, cell, code, escaped = [], "", False, False
    for char in line.strip()[1:]:
        if char == "|" and not code and not escaped:
            cells.append(cell.strip())
            cell = ""
            continue
        code = not code if char == "`" else code
        escaped = char == "\\" and not escaped
        cell += char
    return cells


def test_job_option_page_uses_the_generator() -> None:
    page = (DOCS / "reference" / "job-options.md").read_text()
    assert "<!-- generated: job-options -->" in page
    rendered = hooks.render(page)
    assert "<!-- generated:" not in rendered


def test_every_job_option_is_in_the_generated_table() -> None:
    rows = _rows(hooks.job_options_table())
    flags = {row[0].split()[0].strip("`"): row for row in rows[1:]}
    for f in JobOptions.fields():
        flag = "--" + f.name.replace("_", "-")
        assert flag in flags, f"job option {f.name} missing from the generated table"
        row = flags[flag]
        assert row[0] == f"`{flag}` (`{f.name}`)"
        assert row[3], f"{flag} has no help text"
        if f.default not in (None, dataclasses.MISSING) and not isinstance(f.default, dict):
            assert row[2] == f"`{f.default}`", (flag, row[2])
        if f.metadata["choices"]:
            assert all(choice in row[1] for choice in f.metadata["choices"]())
        assert row[4] == ("yes" if f.metadata["param"] else "no")
    assert len(flags) == len(JobOptions.fields())


def test_every_controller_option_is_in_the_generated_table() -> None:
    page = (DOCS / "reference" / "controller-options.md").read_text()
    assert "<!-- generated: controller-options -->" in page
    rows = {row[0].strip("`"): row for row in _rows(hooks.render(page)) if row[0] != "field"}
    for f in dataclasses.fields(ControllerOptions):
        assert f.name in rows, f"ControllerOptions.{f.name} missing from the generated table"
        row = rows[f.name]
        assert row[3], f"ControllerOptions.{f.name} has no comment to document it"
        assert eval(row[2].strip("`")) == f.default, (f.name, row[2])   # literal defaults only
    assert len(rows) == len(dataclasses.fields(ControllerOptions))


def test_controller_rows_read_a_field_without_a_comment_as_undocumented(tmp_path: Path) -> None:
    """The check above can fail: a field without its comment gives an empty meaning."""
    source = tmp_path / "settings.py"
    source.write_text("class ControllerOptions:\n    # ---- policy ----\n    a: int = 1   # the a\n"
                      "    b: float = 2.0\n")
    rows = hooks.controller_option_rows(source)
    assert [(r["name"], r["default"], r["section"], r["help"]) for r in rows] == [
        ("a", "1", "policy", "the a"), ("b", "2.0", "policy", "")]


def _click_block(page: str) -> dict[str, str]:
    """The options of the page's ``::: mkdocs-click`` block."""
    block = page.split("::: mkdocs-click", 1)[1]
    return dict(re.findall(r"^\s+:(\w+):\s*(.*)$", block.split("\n\n", 1)[0], re.M))


def test_every_cli_command_and_option_is_in_the_generated_reference() -> None:
    mkdocs_click = pytest.importorskip("mkdocs_click._extension", reason="the docs extra: pip install -e '.[docs]'")
    page = (DOCS / "reference" / "cli.md").read_text()
    options = _click_block(page)
    assert (options["module"], options["command"]) == ("hyperseq.cli", "cli")
    text = "\n".join(mkdocs_click.replace_command_docs(**options))
    ctx = click.Context(cli)
    assert set(cli.list_commands(ctx)) >= {"run", "submit", "resume", "best", "jobs", "ui", "status", "logs", "cancel"}
    parts = re.split(r"^#+ (?:hyperseq )?(\w+).*$", text, flags=re.M)
    sections = dict(zip(parts[1::2], parts[2::2]))          # heading's command name -> its body
    for name in cli.list_commands(ctx):
        assert name in sections, f"command {name} missing from the CLI reference"
        for param in cli.get_command(ctx, name).params:
            for opt in param.opts:
                label = opt if isinstance(param, click.Option) else opt.upper()
                assert label in sections[name], f"{name}: {label} missing from the CLI reference"
