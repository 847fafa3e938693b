"""Static checks on generated code, run before anything reaches the sandbox."""

from __future__ import annotations

import ast
import hashlib

from sandbox.core import declared_tests
from tools_store.models import ToolSpec, check_arguments  # noqa: F401  (re-exported)
from tools_store.text import unstorable

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


def check_request(request: str) -> None:
    """Raise ValueError for a request no storage can hold (a NUL, a lone surrogate)."""
    problem = unstorable(request)
    if problem:
        raise ValueError(f"the request contains {problem}, which cannot be stored; remove it "
                         "and ask again")


def check_tests(tests: str, spec: ToolSpec, min_tests: int) -> None:
    """Raise ValueError unless enough tests call the tool and assert what could fail."""
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
