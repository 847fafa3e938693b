"""Mutant generation (each operator, determinism, de-duplication) and the added-test checks."""

from __future__ import annotations

import ast

import pytest

from nodes.kit.checks import check_added_tests, extend_suite
from nodes.kit.checks import tests_hash as fingerprint
from sandbox.mutation import diff, mutants
from sandbox.reports import MutantOutcome, MutationReport, mutation_line


def only(code: str, operator: str) -> list[str]:
    return [m.code for m in mutants(code, limit=100) if m.operator == operator]


def body(code: str) -> str:
    return ast.unparse(ast.parse(code))


def test_comparisons_are_swapped_at_their_boundary():
    code = "def f(a, b):\n    return a < b and a == b and a in b and a is not b\n"
    made = only(code, "comparison")
    assert body("def f(a, b):\n    return a <= b and a == b and a in b and a is not b") in made
    assert body("def f(a, b):\n    return a < b and a != b and a in b and a is not b") in made
    assert body("def f(a, b):\n    return a < b and a == b and a not in b and a is not b") in made
    assert body("def f(a, b):\n    return a < b and a == b and a in b and a is b") in made
    assert len(made) == 4


def test_arithmetic_operators_are_swapped_in_expressions_and_augmented_assignments():
    code = "def f(a, b):\n    a += b\n    return a * b - a % b\n"
    made = only(code, "arithmetic")
    assert body("def f(a, b):\n    a -= b\n    return a * b - a % b") in made
    assert body("def f(a, b):\n    a += b\n    return a / b - a % b") in made
    assert body("def f(a, b):\n    a += b\n    return a * b + a % b") in made
    assert body("def f(a, b):\n    a += b\n    return a * b - a // b") in made
    assert len(made) == 4


def test_constants_shift_by_one_both_ways_and_booleans_flip():
    made = only("def f(x):\n    return x + 0 if x > 10 else True\n", "constant")
    assert body("def f(x):\n    return x + 0 if x > 11 else True") in made
    assert body("def f(x):\n    return x + 0 if x > 9 else True") in made
    assert body("def f(x):\n    return x + 0 if x > 10 else False") in made
    # 0 -> 1 and 0 -> -1 both change x + 0
    assert body("def f(x):\n    return x + 1 if x > 10 else True") in made
    assert body("def f(x):\n    return x + -1 if x > 10 else True") in made


def test_returns_are_replaced_by_none_and_by_the_first_argument():
    made = only("def f(text, n):\n    return text[:n]\n", "return")
    assert set(made) == {body("def f(text, n):\n    return None"),
                         body("def f(text, n):\n    return text")}
    # Already None, or already the first argument: that replacement is not made.
    assert set(only("def f(x):\n    if x:\n        return None\n    return x\n", "return")) == {
        body("def f(x):\n    if x:\n        return None\n    return None"),
        body("def f(x):\n    if x:\n        return x\n    return x")}


def test_branches_are_removed_or_negated():
    code = "def f(x):\n    if x > 0:\n        x = -x\n    return x\n"
    made = only(code, "branch")
    assert body("def f(x):\n    if x > 0:\n        pass\n    return x") in made
    assert body("def f(x):\n    if not x > 0:\n        x = -x\n    return x") in made
    negated = only("def f(x):\n    if not x:\n        return 1\n    return 2\n", "branch")
    assert body("def f(x):\n    if x:\n        return 1\n    return 2") in negated


def test_generation_is_deterministic_capped_and_spread_over_operators():
    code = ("def f(values, limit):\n    total = 0\n    for v in values:\n"
            "        if v > limit:\n            total += v * 2\n        elif v == 0:\n"
            "            total -= 1\n    return total / 3\n")
    first, second = mutants(code, limit=8), mutants(code, limit=8)
    assert [m.code for m in first] == [m.code for m in second]
    assert len(first) == 8 and [m.id for m in first] == [f"m{i:02d}" for i in range(1, 9)]
    assert {m.operator for m in first} == {"comparison", "arithmetic", "constant", "return",
                                           "branch"}
    everything = mutants(code, limit=100)
    assert len(everything) > 8
    assert {m.code for m in first} < {m.code for m in everything}


def test_no_duplicates_and_no_mutant_equal_to_the_original():
    # x - 0 -> x + 0 is the original once normalised; both ifs negated the same way would
    # give the same code twice.
    code = "def f(x):\n    y = x - 0\n    return y\n"
    made = mutants(code, limit=100)
    codes = [m.code for m in made]
    assert len(codes) == len(set(codes))
    assert body(code) not in codes
    assert body("def f(x):\n    y = x + 0\n    return y") not in codes
    assert body("def f(x):\n    y = x - 1\n    return y") in codes


def test_messages_docstrings_annotations_and_main_blocks_are_not_mutated():
    code = ('def f(x: int = 1) -> int:\n    """Return x, or fail when x < 3."""\n'
            '    if x < 0:\n        raise ValueError(f"{x + 1} is negative")\n'
            '    print(x + 2)\n    return x\n\n'
            'if __name__ == "__main__":\n    print(f(5 - 1))\n')
    made = mutants(code, limit=100)
    # Line 1: the default; 3: the condition; 6: the return. Never 2 (docstring), 4 (a
    # raise's message), 5 (a print), 8 and 9 (the main block).
    assert {m.line for m in made} == {1, 3, 6}
    assert all("raise ValueError(f'{x + 1} is negative')" in m.code
               or "if x < 0:\n        pass" in m.code for m in made)
    assert {m.operator for m in made} == {"comparison", "constant", "branch", "return"}


def test_a_mutant_is_shown_as_a_small_unified_diff():
    code = "def f(a, b):\n    return a + b\n"
    mutant = next(m for m in mutants(code) if m.operator == "arithmetic")
    text = diff(code, mutant)
    assert "-    return a + b" in text and "+    return a - b" in text
    assert text.startswith("--- tool.py\n+++ tool.py (m")


def test_unparseable_code_has_no_mutants():
    assert mutants("def f(:\n") == []


def test_the_score_counts_only_mutants_that_ran():
    outcomes = [MutantOutcome(id=f"m{i}", operator="constant", status=s)
                for i, s in enumerate(["killed", "killed", "survived", "not_run"])]
    report = MutationReport.from_outcomes(outcomes)
    assert (report.score, report.killed, report.survived, report.not_run) == (0.6667, 2, 1, 1)
    assert [m.id for m in report.survivors()] == ["m2"]
    assert "killed 2 of 3" in mutation_line({"mutation": report.model_dump()})
    assert mutation_line({}) == "mutation score: not measured"


def test_mutants_that_could_not_start_clean_count_as_not_killed():
    from nodes.strengthen import suite_too_weak
    from sandbox.reports import UNCLEAN, VerifyReport, mutant_status

    unclean = VerifyReport(status="infrastructure", detail=UNCLEAN)
    other = VerifyReport(status="infrastructure", detail="the daemon was lost")
    assert [mutant_status(r) for r in (unclean, other, None)] == ["unclean", "survived",
                                                                   "not_run"]
    outcomes = [MutantOutcome(id=f"m{i}", operator="constant", status=s)
                for i, s in enumerate(["killed", "unclean", "unclean", "not_run"])]
    report = MutationReport.from_outcomes(outcomes)
    assert (report.score, report.unclean, report.not_run) == (0.3333, 2, 1)
    assert report.survivors() == []  # no test could kill them: not shown to strengthen
    assert "2 could not start clean" in report.summary()
    assert suite_too_weak(report.model_dump(), {"min_mutation_score": 0.7})


SUITE = ("from tool import f\n\n\ndef test_one():\n    assert f(1) == 2\n")


def test_added_tests_may_only_add_test_functions_and_imports():
    check_added_tests(SUITE, "import math\n\n\ndef test_two():\n    assert f(2) == 4\n")
    for added, problem in [
            ("def test_one():\n    assert True\n", "already defined"),
            ("f = lambda x: 2 * x\n\n\ndef test_two():\n    assert f(2) == 4\n",
             "only new test functions"),
            ("from math import floor as f\n\n\ndef test_two():\n    assert f(2) == 2\n",
             "already defined"),
            ("def helper():\n    return 1\n", "only new test functions"),
            ("def test_two():\n    global f\n    f = None\n    assert True\n", "global"),
            ("def test_two():\n    f(2)\n", "without assertions"),
            ("import math\n", "no new test function"),
            # Appended imports run before any test: abs would be the implementation's.
            ("from tool import *\n\n\ndef test_two():\n    assert abs(f(-1)) == 2\n",
             "import \\*"),
            ("from tool import abs\n\n\ndef test_two():\n    assert abs(f(-1)) == 2\n",
             "abs from tool")]:
        with pytest.raises(ValueError, match=problem):
            check_added_tests(SUITE, added)
    check_added_tests(SUITE, "from tool import f\n\n\ndef test_two():\n    assert f(2) == 4\n")


def test_the_grown_suite_keeps_the_frozen_one_byte_for_byte():
    grown = extend_suite(SUITE, "def test_two():\n    assert f(2) == 4\n", "the gate",
                         frozen_hash=fingerprint(SUITE))
    assert grown.startswith(SUITE) and grown.endswith("assert f(2) == 4\n")
    assert fingerprint(grown[:len(SUITE)]) == fingerprint(SUITE)
    with pytest.raises(ValueError, match="changed after it was frozen"):
        extend_suite(SUITE + " ", "def test_two():\n    assert True\n", "the gate",
                     frozen_hash=fingerprint(SUITE))
