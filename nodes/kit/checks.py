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
    without = [f.name for f in functions if not any(
        isinstance(n, ast.Assert) or (isinstance(n, ast.With) and "raises" in ast.unparse(n))
        for n in ast.walk(f))]
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
