"""The README and the docs pages say only what the code does.

- The README stays a front door (at most ~200 lines).
- Every ``hyperseq ...`` command in a bash block of the README or a docs page parses with the
  real click commands (names, options, types, choices), so a renamed option or command breaks
  this test instead of the page quietly lying.
- The README's Python snippets compile, import names that exist, and pass `run_search` only
  job options; the Optuna snippet runs as written, the Ray Tune snippet too (slow).
"""
from __future__ import annotations

import ast
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import click
import pytest

import hyperseq
from hyperseq.cli import cli
from hyperseq.jobs.options import JobOptions

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").rglob("*.md"))
MAX_README_LINES = 200


def blocks(path: Path, lang: str) -> list[str]:
    """The fenced code blocks of `path` in language `lang`."""
    return re.findall(rf"^```{lang}\n(.*?)^```", path.read_text(encoding="utf-8"), re.M | re.S)


def commands(path: Path) -> list[list[str]]:
    """Each ``hyperseq`` command of the bash blocks of `path`, as argv (continuations joined,
    comments, pipes and redirections cut off)."""
    out = []
    for block in blocks(path, "bash"):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #", 1)[0].strip()
            if not line.startswith("hyperseq "):
                continue
            argv = shlex.split(re.split(r"\s[|>]\s", line)[0])
            out.append(argv[1:])
    return out


def parse(argv: list[str]) -> None:
    """Parse `argv` as the CLI would, without running the command (UsageError if it is wrong)."""
    ctx = click.Context(cli, info_name="hyperseq")
    command = cli.get_command(ctx, argv[0]) if argv else None
    if command is None:
        raise click.UsageError(f"no such command {argv[:1]}", ctx)
    command.make_context(argv[0], list(argv[1:]), parent=ctx)


def test_readme_is_a_front_door() -> None:
    assert len(README.read_text().splitlines()) <= MAX_README_LINES


def test_readme_keeps_the_quick_start_and_ci_commands() -> None:
    """The README's install and test commands are exactly what `.ci/run` runs."""
    ci = (ROOT / ".ci" / "run").read_text()
    quick = blocks(README, "bash")[0]
    for line in ("pip install torch==2.13.0 -e '.[test]'", "python -m pytest -q"):
        assert line in quick and line in ci, line


@pytest.mark.parametrize("path", [README, *PAGES], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_command_shown_parses(path: Path) -> None:
    for argv in commands(path):
        try:
            parse(argv)
        except click.UsageError as err:
            pytest.fail(f"{path.name}: `hyperseq {shlex.join(argv)}`: {err.format_message()}")


def test_a_wrong_command_is_caught() -> None:
    """The check above can fail: a renamed option or an unknown command is a UsageError."""
    with pytest.raises(click.UsageError):
        parse(["run", "char_lm", "--trails", "3"])
    with pytest.raises(click.UsageError):
        parse(["runn", "char_lm"])
    with pytest.raises(click.UsageError):
        parse(["run", "char_lm", "--searcher", "bayes"])
    assert commands(README), "the README shows no hyperseq command"


def test_readme_python_snippets_use_names_that_exist() -> None:
    snippets = blocks(README, "python")
    assert len(snippets) >= 3
    job_options = {f.name for f in JobOptions.fields()}
    for code in snippets:
        tree = ast.parse(code)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "hyperseq":
                missing = [a.name for a in node.names if a.name not in hyperseq.__all__]
                assert not missing, f"README imports {missing} from hyperseq"
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "run_search":
                unknown = {k.arg for k in node.keywords} - job_options - {"progress", "callbacks"}
                assert not unknown, f"README passes run_search unknown options {unknown}"


def _snippet(word: str) -> str:
    return next(code for code in blocks(README, "python") if word in code)


def test_readme_optuna_snippet_runs() -> None:
    result = subprocess.run([sys.executable, "-c", _snippet("ControllerSampler")], capture_output=True,
                            text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    best = ast.literal_eval([line for line in result.stdout.splitlines() if line.startswith("{")][-1])
    assert set(best) == {"lr", "cell"}


@pytest.mark.slow
def test_readme_ray_tune_snippet_runs(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "MLFLOW_"))}
    env["HOME"] = str(tmp_path)                   # Tune's default results root is ~/ray_results
    code = "import ray; ray.init(num_cpus=2, include_dashboard=False)\n" + _snippet("ControllerSearcher")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                            cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    best = ast.literal_eval([line for line in result.stdout.splitlines() if line.startswith("{")][-1])
    assert set(best) == {"lr", "cell"}


def test_readme_links_resolve() -> None:
    """Every relative link of the README names a file of the repository (the docs pages it
    points to included), so moving a page breaks this test, not the front door."""
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README.read_text())
    local = [t for t in targets if "://" not in t and not t.startswith("mailto:")]
    assert local, "the README links to no page"
    missing = [t for t in local if not (ROOT / t).exists()]
    assert not missing, f"README links to missing files: {missing}"
