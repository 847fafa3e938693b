"""The checks a repair relies on: return types, regression tests, replayed outputs."""

from __future__ import annotations

import pytest

from nodes.kit.checks import check_regression, check_result, extend_suite, same_output
from tools_store.models import ToolSpec

SPEC = ToolSpec(name="double_number", description="Double a number.",
                parameters=[{"name": "x", "type": "number"}], returns={"type": "number"})
FROZEN = ("from tool import double_number\n\nLIMIT = 10\n\n\ndef test_a():\n"
          "    assert double_number(2) == 4\n")


@pytest.mark.parametrize("value,problem", [
    (4, ""), (4.5, ""), (True, "it returned boolean true"), (None, "it returned null"),
    ("4", 'it returned string "4"; the spec declares number')])
def test_a_result_must_have_the_declared_json_type(value, problem):
    found = check_result(value, SPEC)
    assert found.startswith(problem) if problem else found == ""


def test_a_regression_test_adds_tests_under_new_names():
    test = ("from tool import double_number\n\nCASES = [(3, 6), (-1, -2)]\n\n\ndef test_b():\n"
            "    for x, doubled in CASES:\n        assert double_number(x) == doubled\n")
    assert check_regression(test, SPEC, FROZEN) == ["test_b"]
    suite = extend_suite(FROZEN, test, "a repair of v1 (raised)")
    assert suite.startswith(FROZEN) and suite.endswith(test)


@pytest.mark.parametrize("test,message", [
    ("from tool import double_number\n\n\ndef test_a():\n    assert double_number(1) == 2\n",
     "redefines test_a of the frozen suite"),
    ("from tool import double_number\n\nLIMIT = 0\n\n\ndef test_b():\n"
     "    assert double_number(1) == 2\n",
     "redefines LIMIT"),
    ("import tool\nfrom tool import double_number\ntool.double_number = abs\n\n\n"
     "def test_b():\n    assert double_number(3) == 6\n", "top-level statements (Assign)"),
    ("from tool import double_number\n\nCASES = list(range(3))\n\n\ndef test_b():\n"
     "    assert double_number(1) == 2\n", "top-level statements (Assign)"),
    ("from tool import double_number\nprint('x')\n\n\ndef test_b():\n"
     "    assert double_number(1) == 2\n",
     "top-level statements (Expr)"),
    ("from tool import double_number\n\n\ndef test_b():\n    pass\n", "without assertions"),
])
def test_a_regression_test_may_not_touch_the_frozen_suite(test, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_regression(test, SPEC, FROZEN)


def test_a_regression_test_may_not_take_a_name_the_frozen_suite_trusts_from_tool():
    frozen = "import math\n" + FROZEN + "\n\ndef test_c():\n    assert math.isclose(1.0, 1)\n"
    test = ("from tool import double_number, double_number as math\n\n\ndef test_b():\n"
            "    assert double_number(1) == 2\n")  # fine alone; appended, math is the tool's
    with pytest.raises(ValueError, match="math from tool"):
        check_regression(test, SPEC, frozen)


def test_replayed_outputs_compare_as_json_values():
    assert same_output(0.1 + 0.2, 0.3) and same_output({"a": [1, 2.0]}, {"a": [1, 2]})
    assert not same_output(True, 1) and not same_output([1, 2], [1, 2, 3])
    assert not same_output({"a": 1}, {"b": 1}) and not same_output("2", 2)


def test_a_replayed_result_is_compared_as_the_log_holds_it():
    from nodes.gate import changes
    from sandbox.reports import CallResult

    # The log holds a NUL escaped (PostgreSQL cannot store one); the replay gives it raw.
    past = [{"inputs": {"text": "cat dog"}, "output": "cat\\x00dog"}]
    assert changes(past, [CallResult(ok=True, status="ok", result="cat\x00dog")]) == []
    assert changes(past, [CallResult(ok=True, status="ok", result="cat dog")]) != []
