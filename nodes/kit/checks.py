"""Static checks on generated code, run before anything reaches the sandbox."""

from __future__ import annotations

import ast
import hashlib

from sandbox.core import declared_tests
from tools_store.models import ToolSpec, check_arguments  # noqa: F401  (re-exported)

# Names an implementation has no business touching: the suite, pytest, the runner.
FORBIDDEN_IN_IMPLEMENTATION = ("test_tool", "conftest", "pytest", "_pytest", "sea-frame",
                               "runner.py")


def tests_hash(tests: str) -> str:
    """Return the fingerprint that freezes a suite."""
    return hashlib.sha256(tests.encode()).hexdigest()


def _parse(code: str, what: str) -> ast.Module:
    try:
        return ast.parse(code)
    except SyntaxError as exc:
        raise ValueError(f"the {what} does not parse: {exc.msg} (line {exc.lineno})") from exc
    except (ValueError, RecursionError, MemoryError) as exc:  # null bytes, absurd nesting
        raise ValueError(f"the {what} does not parse ({type(exc).__name__})") from exc


def check_tests(tests: str, spec: ToolSpec, min_tests: int) -> None:
    """Raise ValueError unless the suite imports the tool and asserts in enough tests."""
    tree = _parse(tests, "test suite")
    imports = any(isinstance(n, ast.ImportFrom) and n.module == "tool"
                  and any(a.name in (spec.name, "*") for a in n.names) for n in ast.walk(tree))
    if not imports:
        raise ValueError(f"the tests must import the function with `from tool import "
                         f"{spec.name}`")
    names = declared_tests(tests)
    if len(names) < min_tests:
        raise ValueError(f"the suite declares {len(names)} tests; at least {min_tests} needed")
    functions = [n for n in ast.walk(tree)
                 if isinstance(n, ast.FunctionDef) and n.name.startswith("test")]
    without = [f.name for f in functions if not _asserts(f)]
    if without:
        raise ValueError(f"tests without assertions: {', '.join(without)}")


def check_implementation(code: str, spec: ToolSpec) -> None:
    """Raise ValueError unless the code defines the spec's function and leaves tests alone."""
    tree = _parse(code, "implementation")
    lowered = code.lower()
    touched = [name for name in FORBIDDEN_IN_IMPLEMENTATION if name in lowered]
    if touched:
        raise ValueError(f"the implementation refers to {', '.join(touched)}: it may not "
                         "touch the tests or the test runner")
    function = next((n for n in tree.body if isinstance(n, ast.FunctionDef)
                     and n.name == spec.name), None)
    if function is None:
        raise ValueError(f"the implementation defines no top-level function {spec.name!r}")
    params = [a.arg for a in function.args.args]
    expected = [p.name for p in spec.parameters]
    if params != expected:
        raise ValueError(f"{spec.name} takes ({', '.join(params)}); the spec says "
                         f"({', '.join(expected)})")


def _bindings(tree: ast.Module) -> dict[str, str]:
    """Map each top-level name a module binds to how it binds it (imports by their text)."""
    bound: dict[str, str] = {}
    for statement in tree.body:
        if isinstance(statement, ast.Import | ast.ImportFrom):
            module = getattr(statement, "module", None) or ""
            for alias in statement.names:
                name = (alias.asname or alias.name).split(".")[0]
                bound[name] = f"import {module}:{alias.name}:{alias.asname}"
        elif isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound[statement.name] = "definition"
        else:
            for node in ast.walk(statement):
                if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                    bound[node.id] = "assignment"
    return bound


def _asserts(function: ast.FunctionDef) -> bool:
    return any(isinstance(n, ast.Assert) or (isinstance(n, ast.With) and "raises"
                                             in ast.unparse(n)) for n in ast.walk(function))


def check_added_tests(suite: str, added: str) -> None:
    """Raise ValueError unless ``added`` only adds tests to ``suite``, weakening none of it.

    Only new test functions (and imports of names the suite does not bind otherwise) may be
    added: no module-level code, no redefined names, no ``global``, every test asserting.
    """
    tree = _parse(added, "added tests")
    old = _bindings(_parse(suite, "test suite"))
    tests = []
    for statement in tree.body:
        if isinstance(statement, ast.FunctionDef) and statement.name.startswith("test"):
            tests.append(statement)
        elif not isinstance(statement, ast.Import | ast.ImportFrom):
            raise ValueError(f"line {statement.lineno}: only new test functions and imports "
                             "may be added, nothing else at module level")
    if not tests:
        raise ValueError("no new test function (def test_...) was given")
    for name, how in _bindings(tree).items():
        if name in old and (how == "definition" or old[name] != how):
            raise ValueError(f"{name!r} is already defined in the suite: existing tests and "
                             "names cannot be replaced; give new tests new names")
    if any(isinstance(n, ast.Global | ast.Nonlocal) for n in ast.walk(tree)):
        raise ValueError("added tests may not use global or nonlocal")
    without = [f.name for f in tests if not _asserts(f)]
    if without:
        raise ValueError(f"tests without assertions: {', '.join(without)}")


def extend_suite(suite: str, frozen_hash: str, added: str) -> str:
    """Return ``suite`` with ``added`` appended, proving the old suite is kept byte for byte."""
    if tests_hash(suite) != frozen_hash:
        raise ValueError("the suite changed after it was frozen")
    separator = "" if suite.endswith("\n") or not suite else "\n"
    extended = suite + separator + "\n\n" + added.strip("\n") + "\n"
    if not extended.startswith(suite) or tests_hash(extended[:len(suite)]) != frozen_hash:
        raise ValueError("the frozen suite would not be kept byte for byte")
    return extended
