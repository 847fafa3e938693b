"""The static check on generated suites: every test must call the tool and could fail."""

from __future__ import annotations

import pytest

from nodes.kit.checks import check_tests
from tools_store.models import ToolSpec

SPEC = ToolSpec.model_validate({"name": "double_number", "description": "Double a number.",
                                "parameters": [{"name": "x", "type": "number"}]})
HEAD = "import pytest\nfrom tool import double_number\n\n"
GOOD = "def test_good():\n    assert double_number(2) == 4\n\n"


@pytest.mark.parametrize("body", [
    "def test_a():\n    assert double_number(2) == pytest.approx(4.0)\n",
    "def test_a():\n    with pytest.raises(ValueError):\n        double_number('x')\n",
    # Through a helper, a fixture, or parametrize's values.
    "def twice(x):\n    return double_number(x)\n\ndef test_a():\n    assert twice(1) == 2\n",
    "@pytest.fixture\ndef four():\n    return double_number(2)\n\n"
    "def test_a(four):\n    assert four == 4\n",
    "@pytest.mark.parametrize('f', [double_number])\ndef test_a(f):\n    assert f(1) == 2\n",
    "class TestIt:\n    def test_a(self):\n        result = double_number(3)\n"
    "        if result:\n            assert result == 6\n",
])
def test_suites_that_can_fail_are_accepted(body):
    check_tests(HEAD + GOOD + body, SPEC, min_tests=2)


@pytest.mark.parametrize("body,message", [
    ("def test_a():\n    double_number(2)\n    assert True\n", "cannot fail"),
    ("def test_a():\n    assert double_number(2)\n    assert 1\n", None),  # one real assert
    ("def test_a():\n    double_number(2)\n    assert 1 == 1\n", "cannot fail"),
    ("def test_a():\n    double_number(2)\n    assert not False\n", "cannot fail"),
    ("def test_a():\n    assert (double_number(2) == 5, 'a tuple is always true')\n",
     "cannot fail"),
    ("def test_a():\n    assert double_number(2) == 5 or True\n", "cannot fail"),
    ("def test_a():\n    r = double_number(2)\n    assert r == r\n", "cannot fail"),
    ("def test_a():\n    if False:\n        assert double_number(2) == 5\n", "cannot fail"),
    ("def test_a():\n    return\n    assert double_number(2) == 5\n", "cannot fail"),
    ("def test_a():\n    pytest.skip('later')\n    assert double_number(2) == 5\n",
     "cannot fail"),
    ("def test_a():\n    for x in []:\n        assert double_number(x) == 5\n", "cannot fail"),
    ("def test_a():\n    try:\n        assert double_number(2) == 5\n"
     "    except AssertionError:\n        pass\n", "cannot fail"),
    ("def test_a():\n    try:\n        assert double_number(2) == 5\n"
     "    except Exception:\n        pass\n", "cannot fail"),
    ("def test_a():\n    def inner():\n        assert double_number(2) == 5\n", "cannot fail"),
    ("def test_a():\n    assert abs(-2) == 2\n", "never call double_number"),
    ("def test_a():\n    pass\n", "without assertions"),
])
def test_suites_whose_assertions_cannot_fail_are_refused(body, message):
    if message is None:
        check_tests(HEAD + GOOD + body, SPEC, min_tests=2)
        return
    with pytest.raises(ValueError, match=message) as refused:
        check_tests(HEAD + GOOD + body, SPEC, min_tests=2)
    assert "test_a" in str(refused.value) and "test_good" not in str(refused.value)


@pytest.mark.parametrize("imports,message", [
    # The implementation defines abs() too: a star import puts it over the builtin.
    ("from tool import *\n", "import \\*"),
    ("from tool import double_number, abs\n", "abs from tool"),
    ("from tool import double_number as pytest\n", "pytest from tool"),
    ("import math\nimport tool as math\n", "math from tool"),
])
def test_imports_from_the_tool_may_not_replace_names_the_tests_trust(imports, message):
    suite = "import pytest\nfrom tool import double_number\n" + imports + "\n" + GOOD + (
        "def test_b():\n    assert abs(double_number(-1)) == 2\n")
    with pytest.raises(ValueError, match=message):
        check_tests(suite, SPEC, min_tests=2)


def test_the_tools_own_names_may_be_imported():
    check_tests("import pytest\nimport tool\nfrom tool import double_number, NotANumber\n\n"
                + GOOD + "def test_b():\n    with pytest.raises(NotANumber):\n"
                "        tool.double_number('x')\n", SPEC, min_tests=2)
