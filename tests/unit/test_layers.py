"""The house reads top to bottom: imports run one way, and modules stay short.

The import graph is read with ``ast`` from the sources (nothing is imported or run).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# From the top: a module may import its own package and anything in a lower layer.
LAYERS = [{"cli", "ui"}, {"graph"}, {"nodes"}, {"nodes.kit"}, {"state"},
          {"tools_store"}, {"sandbox"}]
PACKAGES = {name.split(".")[0] for layer in LAYERS for name in layer}
LIBRARIES = {"tools_store", "sandbox"}
LONG_MODULE_LINES = 300
LONG_MODULE_REASON = "Why this module is long:"


def layer_of(module: str) -> int | None:
    """Return the layer index of a project module (the most specific match)."""
    for index in range(len(LAYERS) - 1, -1, -1):
        if any(module == name or module.startswith(name + ".") for name in LAYERS[index]):
            return index
    return None


def unit_of(module: str) -> str:
    """Return the layer member a module belongs to (``nodes.kit``, ``nodes``, ``graph`` ...)."""
    index = layer_of(module)
    return next(n for n in LAYERS[index] if module == n or module.startswith(n + "."))


def project_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def imports_of(module: str, path: Path) -> list[tuple[str, int]]:
    """Return (imported module, line) for every import, relative ones resolved."""
    tree = ast.parse(path.read_text())
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")
                parent = parent[:len(parent) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            found.append((base, node.lineno))
            found += [(f"{base}.{alias.name}", node.lineno) for alias in node.names]
    return found


def violations() -> list[str]:
    problems = []
    modules = project_modules()
    for module, path in sorted(modules.items()):
        own = layer_of(module)
        own_unit = unit_of(module)
        for target, line in imports_of(module, path):
            top = target.split(".")[0]
            where = f"{path.relative_to(ROOT)}:{line} imports {target}"
            if own_unit.split(".")[0] in LIBRARIES and top in ("langgraph", "state"):
                problems.append(f"{where} (a library imports LangGraph or state/)")
                continue
            if top not in PACKAGES or (target not in modules and target.rpartition(".")[0]
                                       not in modules):
                continue
            other = layer_of(target)
            if other < own or (other == own and unit_of(target) != own_unit):
                problems.append(f"{where} (layer {own} may import only below itself)")
            if own_unit == "sandbox" and top == "tools_store":
                problems.append(f"{where} (the sandbox is the bottom of the house)")
    return problems


def test_imports_run_one_way():
    assert violations() == []


def test_the_walker_catches_an_upward_import(tmp_path, monkeypatch):
    # The check itself must be able to fail: a library importing the graph is caught.
    fake_root = tmp_path
    for package in PACKAGES:
        (fake_root / package).mkdir(exist_ok=True)
        (fake_root / package / "__init__.py").write_text("")
    (fake_root / "nodes" / "kit").mkdir()
    (fake_root / "nodes" / "kit" / "__init__.py").write_text("")
    (fake_root / "graph" / "agent.py").write_text("X = 1\n")
    (fake_root / "tools_store" / "bad.py").write_text("from graph.agent import X\n")
    (fake_root / "sandbox" / "worse.py").write_text("import langgraph\n")
    (fake_root / "state" / "up.py").write_text("from ..nodes import kit\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", fake_root)
    found = violations()
    assert any("tools_store/bad.py:1 imports graph.agent" in p for p in found)
    assert any("sandbox/worse.py:1 imports langgraph" in p for p in found)
    assert any("state/up.py:1 imports nodes" in p for p in found)


@pytest.mark.parametrize("module", sorted(project_modules()))
def test_no_module_is_long_without_a_reason(module):
    path = project_modules()[module]
    text = path.read_text()
    if len(text.splitlines()) > LONG_MODULE_LINES:
        docstring = ast.get_docstring(ast.parse(text)) or ""
        assert LONG_MODULE_REASON in docstring, (
            f"{path.relative_to(ROOT)} has {len(text.splitlines())} lines; split it or say "
            f"in its opening docstring '{LONG_MODULE_REASON} ...'")
