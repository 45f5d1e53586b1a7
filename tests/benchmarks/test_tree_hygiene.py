"""The tree describes the product, not the lab it was built in.

Docstrings say what and why: a measured figure ("36 -> 19 ms", "~7.6 ms") goes stale the day
the code changes and belongs in BENCHMARKS.md; a docstring or comment that names a module path
or a method that does not exist misleads the next reader; per-seed result files belong in git
history, not in `benchmarks/`; and no text talks about the machines the project was developed
on. Reads files only, so it runs in a second.
"""
from __future__ import annotations

import ast
import io
import re
import subprocess
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("hyperseq", "controller", "workers", "tasks", "search_spaces", "benchmarks")
TOP_DIRS = (*PACKAGES, "tests", "docs", "examples")

UNIT = r"(?:ms|s|x|%|MB|GiB|kB)"
# A measured figure: an approximate quantity with a unit ("~7.6 ms", "~650k objects"), a
# before/after pair with a unit ("36 -> 19 ms", "0.317 -> 0.243 s"), or fractional
# milliseconds ("8.5 ms"), which no design constant is written in.
FIGURE = re.compile(
    rf"~\s?\d[\d.,]*\s?(?:k\b|{UNIT}\b)"
    rf"|\b\d+(?:\.\d+)?\s?{UNIT}?\s?->\s?\d+(?:\.\d+)?\s?{UNIT}\b"
    r"|\b\d+\.\d+(?:-\d+(?:\.\d+)?)?\s?ms\b")
# A repository path named in prose: `controller/options.py`, benchmarks/final_race.py, ...
# (not the tail of another project's path, and not a pattern such as benchmarks/data/NAME.csv)
PATH = re.compile(rf"(?<![\w/.])(?:{'|'.join(TOP_DIRS)})/[\w./-]*\w\.(?:py|md|yaml|yml|sh|json|csv)\b")
PLACEHOLDER = re.compile(r"(?<![A-Za-z])[A-Z]{1,8}(?![a-z])|\*")
# Text about the development environment: machines lent to a task, what a remote run must
# carry along, a dependency folder made for such a machine.
ENVIRONMENT = re.compile(
    r"\blent\b|\blend(?:s|ing)? (?:a|the|no) (?:GPU|machine|device)|\bnot drawn\b|device tool"
    r"|\.devdeps|\bcarry\b[^.\n]{0,40}\b(?:remote|device|devdeps)\b|\bthe GPU machine\b"
    r"|\bthis (?:session|task)\b", re.IGNORECASE)


def tracked(*patterns: str) -> list[Path]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", *patterns],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [ROOT / line for line in out.splitlines() if (ROOT / line).is_file()]


def python_files(dirs: tuple[str, ...]) -> list[Path]:
    return [p for p in tracked(*(f"{d}/*.py" for d in dirs)) if p.name != Path(__file__).name]


def docstrings(tree: ast.AST) -> list[tuple[int, str]]:
    nodes = [tree, *(n for n in ast.walk(tree)
                     if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)))]
    out = []
    for node in nodes:
        text = ast.get_docstring(node, clean=False)
        if text:
            out.append((node.body[0].lineno, text))
    return out


def comments(source: str) -> list[tuple[int, str]]:
    toks = tokenize.generate_tokens(io.StringIO(source).readline)
    return [(t.start[0], t.string) for t in toks if t.type == tokenize.COMMENT]


def prose(path: Path) -> list[tuple[int, str]]:
    source = path.read_text()
    return docstrings(ast.parse(source)) + comments(source)


def test_no_docstring_in_the_packages_quotes_a_measured_figure():
    hits = [f"{p.relative_to(ROOT)}:{line}: {m.group(0)!r}"
            for p in python_files(PACKAGES) for line, text in docstrings(ast.parse(p.read_text()))
            for m in FIGURE.finditer(text)]
    assert not hits, "measured figures belong in BENCHMARKS.md, not docstrings:\n" + "\n".join(hits)


def test_docstrings_and_comments_name_only_paths_that_exist():
    hits = [f"{p.relative_to(ROOT)}:{line}: {m.group(0)}"
            for p in python_files(TOP_DIRS) for line, text in prose(p)
            for m in PATH.finditer(text)
            if not (ROOT / m.group(0)).exists() and not PLACEHOLDER.search(m.group(0))]
    assert not hits, "paths that do not exist:\n" + "\n".join(hits)


def _classes() -> dict[str, list[ast.ClassDef]]:
    found: dict[str, list[ast.ClassDef]] = {}
    for p in python_files(PACKAGES[:-1]):
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ClassDef):
                found.setdefault(node.name, []).append(node)
    return found


def _members(name: str, classes: dict[str, list[ast.ClassDef]]) -> set[str] | None:
    """Names a package class defines, its package bases' included; None when that cannot be
    known (defined twice, or a base from outside the packages)."""
    if len(classes.get(name, [])) != 1:
        return None
    node, names = classes[name][0], set()
    for stmt in node.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(stmt.name)
            names.update(t.attr for t in ast.walk(stmt) if isinstance(t, ast.Attribute)   # self.x = ...
                         and isinstance(t.value, ast.Name) and t.value.id == "self"
                         and isinstance(t.ctx, ast.Store))
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            names.add(stmt.target.id)
        elif isinstance(stmt, ast.Assign):
            names.update(t.id for t in stmt.targets if isinstance(t, ast.Name))
    for base in node.bases:
        base_name = base.id if isinstance(base, ast.Name) else None
        if base_name in ("object", "ABC", "Exception", "ValueError", "RuntimeError"):
            continue
        inherited = _members(base_name, classes) if base_name else None
        if inherited is None:
            return None
        names |= inherited
    return names


def test_docstrings_name_only_methods_that_exist():
    """`SearchSpace.suggest_optuna` in a docstring, after the method went, is a stale name."""
    classes = _classes()
    ref = re.compile(r"`([A-Z]\w+)\.([a-z_]\w*)")
    hits = []
    for p in python_files(TOP_DIRS):
        for line, text in prose(p):
            for cls, attr in ref.findall(text):
                members = _members(cls, classes)
                if members is not None and attr not in members:
                    hits.append(f"{p.relative_to(ROOT)}:{line}: {cls}.{attr}")
    assert not hits, "names that do not exist:\n" + "\n".join(hits)


def test_the_member_check_knows_a_class_and_its_bases():
    classes = _classes()
    space = _members("SearchSpace", classes)
    assert space is not None and {"encode", "project", "slots"} <= space
    assert "suggest_optuna" not in space
    assert PATH.search("see `controller/options.py`").group(0) == "controller/options.py"
    assert PATH.search("ray's python/ray/tune/tests/test_searchers.py") is None


def test_benchmarks_hold_no_result_files():
    """Results live in BENCHMARKS.md (regenerated by each command) and in git history; the only
    JSON under benchmarks/ is each stored table's build record beside its CSV."""
    stray = [p.relative_to(ROOT).as_posix() for p in tracked("benchmarks")
             if p.suffix == ".json" and not (p.parent.name == "data" and p.with_suffix(".csv").exists())]
    assert not stray, stray
    assert not any(p.suffix in (".log", ".jsonl") or p.name.endswith("_tuning.md") for p in tracked("benchmarks"))


@pytest.mark.parametrize("pattern", ["*.md", "*.py", "*.sh", "*.yaml", "*.yml", "*.toml", ".ci/*"])
def test_no_text_about_the_development_environment(pattern):
    hits = []
    for p in tracked(pattern):
        if p.resolve() == Path(__file__).resolve():
            continue
        for n, line in enumerate(p.read_text(errors="replace").splitlines(), 1):
            if m := ENVIRONMENT.search(line):
                hits.append(f"{p.relative_to(ROOT)}:{n}: {m.group(0)!r} in {line.strip()[:100]!r}")
    assert not hits, "\n".join(hits)


@pytest.mark.parametrize("text, flagged", [
    ("36 -> 19 ms of CPU per run", True),
    ("the plots render in 0.317 -> 0.243 s", True),
    ("~7.6 ms of CPU", True),
    ("~650k objects", True),
    ("8.5 ms per trial run", True),
    ("coerced (e.g. 64.0 -> 64)", False),
    ("two-digit years: 50-99 -> 19xx", False),
    ("TIMEOUT_S = 10.0 (ten seconds)", False),
    ("flushes every 0.5 s", False),
    ("`dedup` on; 3 x --epochs", False),
])
def test_the_figure_pattern_flags_measurements_not_constants(text, flagged):
    assert bool(FIGURE.search(text)) is flagged


@pytest.mark.parametrize("text, flagged", [
    ("No GPU machine was lent to this task", True),
    ("run with carry [\".devdeps\"] on the device", True),
    ("the device tool's `status`: not drawn", True),
    ("so the GPU machine (torch alone) runs it", True),
    ("on a CUDA machine, `bash benchmarks/gpu_run.sh` writes this section", False),
    ("the model may carry its hidden state across steps", False),
    ("silently merged", False),
])
def test_the_environment_pattern_flags_lab_talk_not_product_text(text, flagged):
    assert bool(ENVIRONMENT.search(text)) is flagged
