"""MkDocs hooks: the reference tables generated from the code, and BENCHMARKS.md's files.

- A line ``<!-- generated: NAME -->`` in a page is replaced by the table `TABLES[NAME]` builds:
  ``job-options`` from `hyperseq.jobs.options.JobOptions` (the one option table ``run`` and
  ``submit`` are generated from) and ``controller-options`` from the dataclass
  `controller.settings.ControllerOptions` (each field's ``#`` comment is its documentation).
  No option table is copied by hand, so a renamed or added option shows up in the docs at the
  next build, and ``tests/docs/test_reference.py`` fails if one is missing.
- ``BENCHMARKS.md`` is included whole in ``benchmarks.md`` (pymdownx.snippets). The repository
  files it links to (plots under ``benchmarks/``) are added to the site at the same relative
  path, so its links work in the docs as they do on the repository's page.

The functions here import nothing heavy at module level: the test suite imports this file.
"""
from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
MARKER = re.compile(r"^<!-- generated: ([a-z-]+) -->$", re.M)
INCLUDED = ("BENCHMARKS.md",)            # repository files the docs include whole
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s#]+)(?:#[^)]*)?\)")


def _cell(text: Any) -> str:
    """Text safe inside a Markdown table cell."""
    text = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("|", "\\|").replace("\n", " ").strip()


def _code(text: Any) -> str:
    """Text inside a code span in a table cell (the tables extension leaves its pipes alone)."""
    return str(text).replace("\n", " ").strip()


# ---- job options -----------------------------------------------------------------------------
def _job_default(field: dataclasses.Field) -> str:
    if field.default_factory is not dataclasses.MISSING:          # type: ignore[misc]
        return "(none)"
    if field.default is None:
        return "see meaning"
    return f"`{field.default}`"


def job_option_rows() -> list[dict[str, str]]:
    """One row per `JobOptions` field: CLI flag, Python keyword, type, default, meaning."""
    from hyperseq.jobs.options import JobOptions

    rows = []
    for f in JobOptions.fields():
        meta = f.metadata
        kind = ", ".join(meta["choices"]()) if meta["choices"] else (
            meta["metavar"] or getattr(meta["cli"], "__name__", str(meta["cli"])).upper())
        rows.append({"flag": "--" + f.name.replace("_", "-"), "keyword": f.name, "type": kind,
                     "default": _job_default(f), "help": meta["help"],
                     "param": "yes" if meta["param"] else "no"})
    return rows


def job_options_table() -> str:
    lines = ["| option (Python keyword) | value | default | meaning | MLflow param |",
             "| --- | --- | --- | --- | --- |"]
    for r in job_option_rows():
        lines.append(f"| `{r['flag']}` (`{r['keyword']}`) | {_cell(r['type'])} | {_cell(r['default'])} "
                     f"| {_cell(r['help'])} | {r['param']} |")
    return "\n".join(lines)


# ---- controller options ----------------------------------------------------------------------
SETTINGS = ROOT / "controller" / "settings.py"
SECTION = re.compile(r"^\s*# -+ (.+?) -*$")


def controller_option_rows(path: Path = SETTINGS) -> list[dict[str, str]]:
    """One row per field of the `ControllerOptions` dataclass, read from its source: name, type,
    default, the section it sits under and its ``#`` comment (without importing torch)."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    tree = ast.parse(source)
    cls = next(node for node in tree.body
               if isinstance(node, ast.ClassDef) and node.name == "ControllerOptions")
    rows, section = [], ""
    previous = cls.lineno
    for node in cls.body:
        if not isinstance(node, ast.AnnAssign) or not isinstance(node.target, ast.Name):
            continue
        for line in lines[previous:node.lineno - 1]:              # section headers above it
            match = SECTION.match(line)
            if match:
                section = match.group(1)
        previous = node.lineno
        text = lines[node.lineno - 1]
        comment = text.split("#", 1)[1].strip() if "#" in text else ""
        rows.append({"name": node.target.id, "type": ast.unparse(node.annotation),
                     "default": ast.unparse(node.value) if node.value is not None else "",
                     "section": section, "help": comment})
    return rows


def controller_options_table() -> str:
    out, section = [], None
    for r in controller_option_rows():
        if r["section"] != section:
            section = r["section"]
            out += ["", f"**{section.capitalize()}**", "", "| field | type | default | meaning |",
                    "| --- | --- | --- | --- |"]
        out.append(f"| `{r['name']}` | `{_code(r['type'])}` | `{_code(r['default'])}` | {_cell(r['help'])} |")
    return "\n".join(out).strip()


TABLES: dict[str, Callable[[], str]] = {"job-options": job_options_table,
                                        "controller-options": controller_options_table}


def render(markdown: str) -> str:
    """`markdown` with every ``<!-- generated: NAME -->`` line replaced by its table."""
    def table(match: re.Match) -> str:
        name = match.group(1)
        if name not in TABLES:
            raise ValueError(f"docs: unknown generated table {name!r} (known: {', '.join(TABLES)})")
        return TABLES[name]()
    return MARKER.sub(table, markdown)


# ---- files that included pages link to ----------------------------------------------------------
def linked_files(name: str) -> list[str]:
    """Relative paths of the repository files that `name` (a file at the root) links to."""
    text = (ROOT / name).read_text(encoding="utf-8")
    out = []
    for target in LINK.findall(text):
        if "://" in target or target.startswith(("/", "mailto:")) or target.endswith(".md"):
            continue
        if (ROOT / target).is_file() and target not in out:
            out.append(target)
    return out


# ---- MkDocs events ---------------------------------------------------------------------------
def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    for name in INCLUDED:
        for target in linked_files(name):
            if files.get_file_from_path(target) is None:
                files.append(File(target, str(ROOT), config["site_dir"], config["use_directory_urls"]))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    return render(markdown)
