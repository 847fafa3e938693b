"""Checks on what the model and the tools produce.

Generated code and tests are checked statically, before anything reaches the sandbox; call
arguments, results and replayed outputs are checked against the spec and the log.

Why this module is long: the three ways a suite is written or grown (the first suite, a
repair's regression tests, the mutation gate's added tests) must be judged by the same AST
helpers, so that no path accepts a test another would refuse as hollow or as a rewrite.
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import json
import math

from sandbox.core import declared_tests
from tools_store.models import ToolSpec, check_arguments  # noqa: F401  (re-exported)
from tools_store.text import check_storable

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
    except (ValueError, RecursionError, MemoryError) as exc:  # null bytes, absurd nesting
        raise ValueError(f"the {what} does not parse ({type(exc).__name__})") from exc


def check_request(request: str) -> None:
    """Raise ValueError for a request no storage can hold (a NUL, a lone surrogate)."""
    check_storable("request", request)


def _check_tool_imports(tree: ast.Module) -> None:
    """Raise ValueError when an import from ``tool`` could replace a name the tests trust.

    ``tool`` is the implementation under test. A star import, or a name imported from it
    that is a builtin (``abs``) or another import's (``pytest``), would let the
    implementation answer the very checks the tests make of it.
    """
    trusted, from_tool = set(dir(builtins)), set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        for alias in node.names:
            module = node.module if isinstance(node, ast.ImportFrom) else alias.name
            is_tool = (module or "").split(".")[0] == "tool"
            if is_tool and alias.name == "*":
                raise ValueError("`from tool import *` is not allowed: import each name the "
                                 "tests use from tool by name")
            (from_tool if is_tool else trusted).add(alias.asname or alias.name.split(".")[0])
    clash = sorted(from_tool & trusted)
    if clash:
        raise ValueError(f"the tests import {', '.join(clash)} from tool, which would replace "
                         "the builtin or library name the tests rely on; import the tool's own "
                         "names only")


def check_tests(tests: str, spec: ToolSpec, min_tests: int) -> None:
    """Raise ValueError unless enough tests call the tool and assert what could fail."""
    tree = _parse(tests, "test suite")
    _check_tool_imports(tree)
    imports = any(isinstance(n, ast.ImportFrom) and n.module == "tool"
                  and any(a.name == spec.name for a in n.names) for n in ast.walk(tree))
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
    hollow = [f.name for f in functions if not any(_can_fail(n) for n in _reachable(f.body))]
    if hollow:
        raise ValueError(f"tests whose assertions cannot fail (constant or unreachable, or "
                         f"swallowed by an except): {', '.join(hollow)}")
    users = _tool_users(tree, spec.name)
    idle = [f.name for f in functions if not _uses(f, users)]
    if idle:
        raise ValueError(f"tests that never call {spec.name}: {', '.join(idle)}")


_STOPS = ("pytest.skip", "pytest.fail", "pytest.xfail", "pytest.exit")
_CATCHES_ASSERTION = {"AssertionError", "Exception", "BaseException"}


def _fixed(node: ast.expr) -> bool:
    """Tell whether a condition reads nothing a test computes (its value never changes)."""
    return not any(isinstance(n, ast.Name | ast.Call | ast.Attribute | ast.Subscript |
                              ast.NamedExpr | ast.Await) for n in ast.walk(node))


def _always_true(node: ast.expr) -> bool:
    """Tell whether an assertion's condition holds whatever the code under test does."""
    if _fixed(node):
        return True  # constant: it cannot tell a right result from a wrong one
    if isinstance(node, ast.Tuple | ast.List | ast.Set | ast.Dict):
        return True  # a non-empty display is always true: `assert (x == 1, "message")`
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
        return any(_always_true(v) for v in node.values)
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(
            node.ops[0], ast.Eq | ast.Is | ast.LtE | ast.GtE):
        return ast.dump(node.left) == ast.dump(node.comparators[0])  # `x == x`
    return False


def _branch_truth(node: ast.expr) -> bool | None:
    """Return a branch condition's value when it is fixed (`if False:`), else None."""
    if isinstance(node, ast.Constant):
        return bool(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        inner = _branch_truth(node.operand)
        return None if inner is None else not inner
    return None


def _reachable(body: list[ast.stmt], swallowed: bool = False):
    """Yield (statement, swallowed) for statements that can run, in order."""
    for stmt in body:
        yield stmt, swallowed
        if isinstance(stmt, ast.If | ast.While):
            truth = _branch_truth(stmt.test)
            if truth is not False:
                yield from _reachable(stmt.body, swallowed)
            if truth is not True:
                yield from _reachable(stmt.orelse, swallowed)
        elif isinstance(stmt, ast.For | ast.AsyncFor):
            empty = isinstance(stmt.iter, ast.List | ast.Tuple) and not stmt.iter.elts
            if not empty:
                yield from _reachable(stmt.body, swallowed)
            yield from _reachable(stmt.orelse, swallowed)
        elif isinstance(stmt, ast.With | ast.AsyncWith):
            yield from _reachable(stmt.body, swallowed)
        elif isinstance(stmt, ast.Try):
            catches = any(h.type is None or any(
                isinstance(n, ast.Name | ast.Attribute) and ast.unparse(n).split(".")[-1]
                in _CATCHES_ASSERTION for n in ast.walk(h.type)) for h in stmt.handlers)
            yield from _reachable(stmt.body, swallowed or catches)
            for handler in stmt.handlers:
                yield from _reachable(handler.body, swallowed)
            yield from _reachable(stmt.orelse + stmt.finalbody, swallowed)
        if isinstance(stmt, ast.Return | ast.Raise | ast.Continue | ast.Break) or (
                isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)
                and ast.unparse(stmt.value.func) in _STOPS):
            return  # what follows in this block never runs


def _can_fail(item: tuple[ast.stmt, bool]) -> bool:
    """Tell whether a reachable statement is an assertion that can fail."""
    stmt, swallowed = item
    if swallowed:
        return False
    if isinstance(stmt, ast.Assert):
        return not _always_true(stmt.test)
    if isinstance(stmt, ast.With):
        raises = any("raises" in ast.unparse(i.context_expr) for i in stmt.items)
        return raises and any(isinstance(n, ast.Call) for s in stmt.body for n in ast.walk(s))
    return False


def _referenced(node: ast.AST) -> set[str]:
    return {n.id if isinstance(n, ast.Name) else n.attr for n in ast.walk(node)
            if isinstance(n, ast.Name | ast.Attribute)}


def _tool_users(tree: ast.Module, name: str) -> set[str]:
    """Return the tool's name and the helpers and fixtures that reach it, however deeply."""
    helpers = {n.name: _referenced(n) for n in ast.walk(tree)
               if isinstance(n, ast.FunctionDef) and not n.name.startswith("test")}
    users = {name}
    while grown := {h for h, refs in helpers.items() if h not in users and refs & users}:
        users |= grown
    return users


def _uses(function: ast.FunctionDef, users: set[str]) -> bool:
    """Tell whether a test calls the tool (directly, through a helper or a fixture)."""
    parameters = {a.arg for a in function.args.args}
    return bool((_referenced(function) | parameters) & users)


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
    _check_tool_imports(_parse(f"{frozen}\n{test}", "grown suite"))  # appended: sees both
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


def extend_suite(frozen: str, added: str, label: str, frozen_hash: str | None = None) -> str:
    """Return the frozen suite, byte-for-byte, with ``added`` appended under a comment.

    Both ways a suite grows (a repair's regression tests, the mutation gate's strengthening)
    come through here, so neither can weaken the frozen tests: with ``frozen_hash`` the suite
    must still be the one that was frozen, and the result must start with it unchanged.
    """
    if frozen_hash is not None and tests_hash(frozen) != frozen_hash:
        raise ValueError("the suite changed after it was frozen")
    joint = "" if frozen.endswith("\n") or not frozen else "\n"
    extended = f"{frozen}{joint}\n\n# Tests added by {label}\n{added.strip()}\n"
    if not extended.startswith(frozen) or (
            frozen_hash is not None and tests_hash(extended[:len(frozen)]) != frozen_hash):
        raise ValueError("the frozen suite would not be kept byte for byte")
    return extended


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
    _check_tool_imports(_parse(f"{suite}\n{added}", "grown suite"))
    if any(isinstance(n, ast.Global | ast.Nonlocal) for n in ast.walk(tree)):
        raise ValueError("added tests may not use global or nonlocal")
    without = [f.name for f in tests if not _asserts(f)]
    if without:
        raise ValueError(f"tests without assertions: {', '.join(without)}")
