"""Mutants of an implementation, made on the host, and the mutation score of a suite.

A suite that passes proves the code matches the tests, not that the tests pin the behaviour
down. Mutants are small, plausible faults put into the implementation (AST mutations): a
comparison or arithmetic operator swapped, a constant shifted (+1 / -1, so 0 <-> 1 and
True <-> False), a return replaced (``return None`` / the first argument), a branch removed
(the ``if`` body becomes ``pass``, or its condition is negated). The suite runs against every
mutant in one sandbox run (``Sandbox.mutate``); the share it kills is the mutation score.

Mutants that cannot change behaviour are left out where that can be seen: the same code as
the original once normalised (``x + 0`` and ``x - 0`` are both ``x``), duplicates, and code
that only shapes messages (a ``raise``, an f-string, a ``print``) or never runs on import
(``if __name__ == "__main__"``). The selection is deterministic: operators in turn, and within
one operator, each site before a second variant of any site, in an order fixed by a hash.
"""

from __future__ import annotations

import ast
import copy
import difflib
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .core import Sandbox
from .reports import MutantOutcome, MutationReport, VerifyReport, killer, mutant_status

OPERATORS = ("comparison", "arithmetic", "constant", "return", "branch")
MAX_MUTANTS = 20

COMPARISONS: dict[type, type] = {
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot,
    ast.IsNot: ast.Is}
ARITHMETIC: dict[type, type] = {
    ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
    ast.FloorDiv: ast.Div, ast.Mod: ast.FloorDiv, ast.Pow: ast.Mult}
SYMBOLS: dict[type, str] = {
    ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=",
    ast.In: "in", ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not", ast.Add: "+",
    ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%",
    ast.Pow: "**"}
QUIET_CALLS = {"print"}  # calls whose arguments only shape output


@dataclass(frozen=True)
class Mutant:
    """One mutant: which operator made it, where, and its whole module."""

    id: str
    operator: str
    line: int
    description: str
    code: str


@dataclass(frozen=True)
class _Site:
    operator: str
    variant: int
    line: int
    description: str
    apply: Callable[[ast.Module], None]


def _quiet(node: ast.AST) -> bool:
    """Tell whether mutating inside ``node`` could only change a message or dead code."""
    if isinstance(node, ast.Raise | ast.Assert | ast.JoinedStr):
        return True
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and (
            node.func.id in QUIET_CALLS):
        return True
    return isinstance(node, ast.If) and "__name__" in ast.unparse(node.test) and (
        "__main__" in ast.unparse(node.test))


def _preorder(tree: ast.Module) -> list[ast.AST]:
    """Return every node in a fixed order: the same positions in a deep copy of the tree."""
    nodes, stack = [], [tree]
    while stack:
        node = stack.pop()
        nodes.append(node)
        stack.extend(reversed(list(ast.iter_child_nodes(node))))
    return nodes


def _skipped_children(node: ast.AST) -> list[ast.AST]:
    """Return the children that are annotations or docstrings (never mutated)."""
    skipped = [child for child in (getattr(node, "annotation", None),
                                   getattr(node, "returns", None)) if child is not None]
    body = getattr(node, "body", None)
    if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(
            body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
        skipped.append(body[0])
    return skipped


def _walk(tree: ast.Module) -> Iterator[tuple[int, ast.AST, ast.FunctionDef | None]]:
    """Yield (position, node, enclosing function) for every node that may be mutated."""
    nodes = _preorder(tree)
    quiet: set[int] = set()
    owner: dict[int, ast.FunctionDef] = {}
    for node in nodes:
        roots = [node] if _quiet(node) else _skipped_children(node)
        quiet.update(id(inner) for root in roots for inner in ast.walk(root))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            owner.update((id(inner), node) for inner in ast.walk(node))  # inner ones win
    for position, node in enumerate(nodes):
        if id(node) not in quiet:
            yield position, node, owner.get(id(node))


def _sites(tree: ast.Module) -> Iterator[_Site]:
    """Yield every mutation the operators can make in ``tree``."""
    for position, node, function in _walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Compare):
            for index, op in enumerate(node.ops):
                if type(op) in COMPARISONS:
                    yield _Site("comparison", 0, line, _swap_text(op, COMPARISONS),
                                _set_attribute(position, "ops", lambda n, i=index: [
                                    COMPARISONS[type(o)]() if j == i else o
                                    for j, o in enumerate(n.ops)]))
        elif isinstance(node, ast.BinOp | ast.AugAssign) and type(node.op) in ARITHMETIC:
            yield _Site("arithmetic", 0, line, _swap_text(node.op, ARITHMETIC),
                        _set_attribute(position, "op", lambda n: ARITHMETIC[type(n.op)]()))
        elif isinstance(node, ast.Constant) and type(node.value) in (int, float, bool):
            yield from _constant_sites(position, line, node.value)
        elif isinstance(node, ast.Return) and node.value is not None:
            yield from _return_sites(position, line, node, function)
        elif isinstance(node, ast.If):
            yield from _branch_sites(position, line, node)


def _swap_text(op: ast.AST, table: dict[type, type]) -> str:
    return f"`{SYMBOLS[type(op)]}` -> `{SYMBOLS[table[type(op)]]}`"


def _set_attribute(position: int, name: str, make: Callable[[ast.AST], object]
                   ) -> Callable[[ast.Module], None]:
    def apply(tree: ast.Module) -> None:
        node = _preorder(tree)[position]
        setattr(node, name, make(node))
    return apply


def _constant_sites(position: int, line: int, value: int | float | bool) -> Iterator[_Site]:
    if isinstance(value, bool):
        yield _Site("constant", 0, line, f"`{value}` -> `{not value}`",
                    _set_attribute(position, "value", lambda n: not n.value))
        return
    for variant, delta in enumerate((1, -1)):
        shifted = value + delta
        yield _Site("constant", variant, line, f"`{value!r}` -> `{shifted!r}`",
                    _set_attribute(position, "value", lambda n, d=delta: n.value + d))


def _first_argument(function: ast.FunctionDef | None) -> str | None:
    if function is None:
        return None
    arguments = function.args.posonlyargs + function.args.args
    return arguments[0].arg if arguments else None


def _return_sites(position: int, line: int, node: ast.Return,
                  function: ast.FunctionDef | None) -> Iterator[_Site]:
    value = node.value
    if not (isinstance(value, ast.Constant) and value.value is None):
        yield _Site("return", 0, line, f"`return {ast.unparse(value)}` -> `return None`",
                    _set_attribute(position, "value", lambda n: ast.Constant(None)))
    first = _first_argument(function)
    if first and not (isinstance(value, ast.Name) and value.id == first):
        yield _Site("return", 1, line, f"`return {ast.unparse(value)}` -> `return {first}`",
                    _set_attribute(position, "value", lambda n: ast.Name(first, ast.Load())))


def _branch_sites(position: int, line: int, node: ast.If) -> Iterator[_Site]:
    if not all(isinstance(statement, ast.Pass) for statement in node.body):
        yield _Site("branch", 0, line, f"the body of `if {ast.unparse(node.test)}` removed",
                    _set_attribute(position, "body", lambda n: [ast.Pass()]))
    negated = f"`if {ast.unparse(node.test)}` negated"
    yield _Site("branch", 1, line, negated, _set_attribute(
        position, "test", lambda n: n.test.operand if isinstance(n.test, ast.UnaryOp) and (
            isinstance(n.test.op, ast.Not)) else ast.UnaryOp(ast.Not(), n.test)))


class _Normalise(ast.NodeTransformer):
    """Rewrite what cannot matter: ``x + 0``, ``x - 0``, ``x * 1``, ``x ** 1`` become ``x``."""

    NEUTRAL = {ast.Add: 0, ast.Sub: 0, ast.Mult: 1, ast.Pow: 1}

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        right = node.right
        neutral = isinstance(right, ast.Constant) and type(right.value) is int and (
            right.value == self.NEUTRAL.get(type(node.op)))
        return node.left if neutral else node


def normalised(tree: ast.Module) -> str:
    """Return a tree's code with operations that cannot matter folded away."""
    return ast.unparse(_Normalise().visit(copy.deepcopy(tree)))


def mutants(code: str, limit: int = MAX_MUTANTS) -> list[Mutant]:
    """Return up to ``limit`` distinct, non-trivial mutants of ``code``, deterministically."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    original, plain = normalised(tree), ast.unparse(tree)
    seen = {plain}
    found: dict[str, list[tuple[int, str, _Site, str]]] = {op: [] for op in OPERATORS}
    for site in _sites(tree):
        mutated = copy.deepcopy(tree)
        site.apply(mutated)
        ast.fix_missing_locations(mutated)
        try:
            text = ast.unparse(mutated)
        except (ValueError, RecursionError):
            continue
        if text in seen or normalised(mutated) == original:
            continue  # a duplicate, or the original again once what cannot matter is folded
        seen.add(text)
        order = hashlib.sha256(text.encode()).hexdigest()
        found[site.operator].append((site.variant, order, site, text))
    for entries in found.values():
        entries.sort(key=lambda entry: entry[:2])
    chosen: list[tuple[_Site, str]] = []
    while len(chosen) < limit and any(found.values()):
        for operator in OPERATORS:
            if found[operator] and len(chosen) < limit:
                _, _, site, text = found[operator].pop(0)
                chosen.append((site, text))
    return [Mutant(id=f"m{index + 1:02d}", operator=site.operator, line=site.line,
                   description=f"line {site.line}: {site.description}", code=text)
            for index, (site, text) in enumerate(chosen)]


def diff(code: str, mutant: Mutant) -> str:
    """Return the mutant as a unified diff against the original (both as the AST prints)."""
    original = ast.unparse(ast.parse(code)).splitlines()
    return "\n".join(difflib.unified_diff(original, mutant.code.splitlines(), "tool.py",
                                          f"tool.py ({mutant.id})", n=1, lineterm=""))


def variant_budget(report: VerifyReport) -> float:
    """Return how long one mutant may take: generous beside the suite's own time."""
    spent = sum(test.duration for test in report.tests)
    return round(min(5.0, max(1.0, 0.5 + 10 * spent)), 2)


def gate(sandbox: Sandbox, implementation: str, tests: str, verified: VerifyReport,
         files=None, limit: int = MAX_MUTANTS, conftest: str | None = None,
         starting: Callable[[int], None] | None = None) -> MutationReport:
    """Run ``tests`` against the mutants of ``implementation``; return the mutation score.

    ``verified`` (the suite's pass) sets the time; unrun mutants count neither way.
    """
    made = mutants(implementation, limit)
    if starting and made:  # a long step: the caller can say how many mutants run
        starting(len(made))
    reports = sandbox.mutate(implementation, tests, [m.code for m in made], files,
                             variant_timeout=variant_budget(verified), conftest=conftest)
    outcomes = [MutantOutcome(id=m.id, operator=m.operator, line=m.line,
                              description=m.description,
                              status=mutant_status(r), killed_by=killer(r),
                              duration=r.duration if r is not None else 0.0,
                              diff=diff(implementation, m))
                for m, r in zip(made, reports, strict=True)]
    return MutationReport.from_outcomes(outcomes)


def rerun_survivors(sandbox: Sandbox, implementation: str, suite: str,
                    mutation: MutationReport, verified: VerifyReport, files=None,
                    limit: int = MAX_MUTANTS) -> tuple[VerifyReport | None, MutationReport]:
    """Run a grown suite on the implementation (in full) and on the survivors, in one run.

    Returns the suite's report on the implementation and ``mutation`` with the survivors the
    grown suite kills marked killed (the mutants it killed before stay killed: it still holds
    every test that killed them).
    """
    made = {m.id: m for m in mutants(implementation, limit)}
    chosen = [s for s in mutation.survivors() if s.id in made]
    reports = sandbox.mutate(implementation, suite,
                             [implementation] + [made[s.id].code for s in chosen], files,
                             stop_first=[False] + [True] * len(chosen),
                             variant_timeout=variant_budget(verified))
    killed = {s.id: s.model_copy(update={"status": "killed", "killed_by": killer(r)})
              for s, r in zip(chosen, reports[1:], strict=True) if killer(r)}
    return reports[0], MutationReport.from_outcomes([killed.get(m.id, m)
                                                     for m in mutation.mutants])
