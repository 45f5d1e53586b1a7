"""The architecture, checked: which layer may import what, no import cycles, small modules.

Layers (ARCHITECTURE.md): search_spaces (no in-repo imports, no torch/Ray/MLflow) <- controller
(torch + search_spaces) and tasks (torch only) <- workers (what a Ray worker runs) <- hyperseq
(the service). Nothing below imports hyperseq.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("search_spaces", "controller", "tasks", "workers", "hyperseq")
ALLOWED = {                        # in-repo packages each layer may import
    "search_spaces": {"search_spaces"},
    "controller": {"controller", "search_spaces"},
    "tasks": {"tasks"},
    "workers": {"workers", "tasks", "search_spaces"},
    "hyperseq": set(PACKAGES),
}
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 300, 50


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """In-repo modules `name` imports (anywhere in the file: lazy imports count too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):
                found.add(target)                  # (a package's own __init__ is not an edge)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    known = _modules()
    return {name: _imports(name, path, known) for name, path in known.items()}


def test_layers_import_only_what_they_may(graph: dict[str, set[str]]) -> None:
    bad = [(m, t) for m, targets in graph.items() for t in targets
           if t.split(".")[0] not in ALLOWED[m.split(".")[0]]]
    assert not bad, bad


def test_no_import_cycles(graph: dict[str, set[str]]) -> None:
    state: dict[str, int] = {}                     # 1 = on the stack, 2 = done

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])


@pytest.mark.parametrize("module, absent", [
    ("search_spaces", ("torch", "ray", "mlflow", "optuna")),
    ("controller", ("ray", "mlflow", "optuna")),
    ("tasks", ("ray", "mlflow")),
    ("workers.trainable", ("mlflow",)),
    ("hyperseq", ("ray", "mlflow", "torch")),
    ("hyperseq.searchers", ("ray", "mlflow", "optuna")),
])
def test_import_loads_no_heavy_dependency(module: str, absent: tuple[str, ...]) -> None:
    code = (f"import sys, {module}; heavy = [m for m in {absent!r} if m in sys.modules]; "
            "print(heavy); sys.exit(bool(heavy))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (module, done.stdout, done.stderr[-2000:])


def test_modules_and_functions_are_small() -> None:
    big = []
    for name, path in _modules().items():
        source = path.read_text()
        if len(source.splitlines()) > MAX_MODULE_LINES:
            big.append((name, len(source.splitlines())))
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    big.append((f"{name}.{node.name}", length))
    assert not big, big
