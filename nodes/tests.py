"""tests: a pytest suite written from the spec alone, then frozen."""

from __future__ import annotations

import json

from langgraph.runtime import Runtime

from state.replies import TestsReply
from tools_store.models import ToolSpec

from .kit.checks import check_tests, tests_hash
from .kit.context import Context
from .kit.model import invoke_structured
from .kit.node import event, model, node

INSTRUCTIONS = (
    "Write a pytest suite for the specified function before it exists. Import it with "
    "`from tool import NAME`. Cover normal cases, the docstring's examples and the edge cases "
    "(pytest.raises for errors). Every test asserts something. Use only the standard library "
    "and pytest; floats compared with pytest.approx. The function runs in another process: "
    "arguments must be JSON values and results arrive JSON-decoded (tuples as lists).")


@node("tests")
def tests(state: dict, runtime: Runtime[Context]) -> dict:
    """Write and freeze the suite."""
    tool_spec = ToolSpec.model_validate(state["spec"])
    min_tests = state["policy"]["min_tests"]
    reply, usage = invoke_structured(
        model(runtime), "tests", INSTRUCTIONS, state["standalone_request"],
        "Specification:\n" + json.dumps(tool_spec.model_dump(), indent=2), TestsReply,
        lambda r: check_tests(r.tests, tool_spec, min_tests))
    event("tests", "tests written and frozen", tests=reply.tests)
    return {"tests": reply.tests, "tests_hash": tests_hash(reply.tests),
            "usage": {"tests": usage}}
