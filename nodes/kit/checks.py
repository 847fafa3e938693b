"""Checks on what the model and the tools produce.

Generated code and tests are checked statically, before anything reaches the sandbox; call
arguments, results and replayed outputs are checked against the spec and the log.
"""

from __future__ import annotations

import ast
import hashlib
import json
import math

from sandbox.core import declared_tests
from tools_store.models import PY_TYPES, ToolSpec

# Names an implementation has no business touching: the suite, pytest, the runner.
FORBIDDEN_IN_IMPLEMENTATION = ("test_tool", "conftest", "pytest", "_pytest", "sea-frame",
                               "runner.py")
JSON_TYPES = {"string": str, "integer": int, "number": (int, float), "boolean": bool,
              "array": list, "object": dict, "null": type(None)}
# What a regression test may add at the top of the suite: no statement that runs on import.
REGRESSION_TOP_LEVEL = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef,
                        ast.ClassDef, ast.Assign, ast.AnnAssign)


def tests_hash(tests: str) -> str:
    """Return the fingerprint that freezes a suite."""
    return hashlib.sha256(tests.encode()).hexdigest()


def _parse(code: str, what: str) -> ast.Module:
    try:
        return ast.parse(code)
    except SyntaxError as exc:
        raise ValueError(f"the {what} does not parse: {exc.msg} (line {exc.lineno})") from exc


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


def check_arguments(arguments: dict, spec: ToolSpec) -> dict:
    """Validate call arguments against the spec; return them with defaults filled in."""
    if not isinstance(arguments, dict):
        raise ValueError("arguments must be a JSON object")
    known = {p.name: p for p in spec.parameters}
    unknown = sorted(set(arguments) - set(known))
    if unknown:
        raise ValueError(f"unknown arguments: {', '.join(unknown)}")
    checked = {}
    for name, param in known.items():
        if name not in arguments:
            if param.required:
                raise ValueError(f"missing argument {name!r} ({param.description})")
            checked[name] = param.default
            continue
        value = arguments[name]
        expected = JSON_TYPES[param.type]
        if isinstance(value, bool) and param.type in ("integer", "number"):
            raise ValueError(f"argument {name!r} must be a {param.type}, not a boolean")
        if param.type == "number" and isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        if not isinstance(value, expected):
            raise ValueError(f"argument {name!r} must be {PY_TYPES[param.type]}, got "
                             f"{type(value).__name__}")
        checked[name] = value
    return checked


def json_type(value) -> str:
    """Return the JSON type name of a value."""
    for name in ("null", "boolean", "integer", "number", "string", "array", "object"):
        if isinstance(value, JSON_TYPES[name]):
            return name
    return type(value).__name__


def check_result(value, spec: ToolSpec) -> str:
    """Return why a result does not match the spec's return type, or '' when it does."""
    declared = spec.returns.type
    actual = json_type(value)
    if actual == declared or (declared == "number" and actual == "integer"):
        return ""
    return f"it returned {actual} {json.dumps(value)[:200]}; the spec declares {declared}"


def _defined(tree: ast.Module) -> set[str]:
    names = set()
    for item in tree.body:
        if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(item.name)
        elif isinstance(item, ast.Assign | ast.AnnAssign):
            targets = item.targets if isinstance(item, ast.Assign) else [item.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return names


def _harmless(item: ast.stmt) -> bool:
    """Tell whether a top-level statement only declares (runs nothing on import)."""
    if isinstance(item, ast.Expr):
        return isinstance(item.value, ast.Constant)  # a docstring
    if isinstance(item, ast.Assign | ast.AnnAssign):
        targets = item.targets if isinstance(item, ast.Assign) else [item.target]
        if not all(isinstance(n, ast.Name | ast.Tuple | ast.List | ast.expr_context)
                   for t in targets for n in ast.walk(t)):
            return False  # e.g. ``tool.function = ...``: a patch, not a constant
        try:
            ast.literal_eval(item.value) if item.value is not None else None
        except (ValueError, TypeError, SyntaxError, RecursionError):
            return False
        return True
    return isinstance(item, REGRESSION_TOP_LEVEL)


def check_regression(test: str, spec: ToolSpec, frozen: str) -> list[str]:
    """Return the new test names, or raise ValueError when the test would touch the suite.

    A regression test adds asserting tests under new names; it may not redefine anything of
    the frozen suite (which is kept byte-for-byte) nor run statements on import.
    """
    check_tests(test, spec, 1)
    tree = _parse(test, "regression test")
    stray = sorted({type(item).__name__ for item in tree.body if not _harmless(item)})
    if stray:
        raise ValueError("the regression test may only add imports, tests, helpers and "
                         "constants (names bound to literals); it has top-level statements "
                         f"({', '.join(stray)})")
    clash = sorted(_defined(tree) & _defined(_parse(frozen, "frozen suite")))
    if clash:
        raise ValueError(f"the regression test redefines {', '.join(clash)} of the frozen "
                         "suite: the old tests are kept byte-for-byte, so add tests under new "
                         "names")
    return sorted(declared_tests(test))


def extend_suite(frozen: str, regression: str, label: str) -> str:
    """Return the frozen suite, byte-for-byte, with the regression tests appended."""
    joint = "" if frozen.endswith("\n") or not frozen else "\n"
    return f"{frozen}{joint}\n\n# Regression tests added by {label}\n{regression.strip()}\n"


def same_output(new, old) -> bool:
    """Tell whether a replayed output equals a logged one (floats to 1e-9 relative)."""
    if isinstance(new, bool) or isinstance(old, bool):
        return new is old
    if isinstance(new, int | float) and isinstance(old, int | float):
        return math.isclose(new, old, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(new, list) and isinstance(old, list):
        return len(new) == len(old) and all(map(same_output, new, old))
    if isinstance(new, dict) and isinstance(old, dict):
        return new.keys() == old.keys() and all(same_output(new[k], old[k]) for k in new)
    return new == old
