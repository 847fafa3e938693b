"""impl: an implementation written to pass the frozen suite."""

from __future__ import annotations

import json

from langgraph.runtime import Runtime

from state.replies import ImplReply
from tools_store.models import ToolSpec

from .kit.checks import check_implementation
from .kit.context import Context
from .kit.model import invoke_structured
from .kit.node import event, model, node

INSTRUCTIONS = (
    "Implement the specified function as a complete Python module that passes the given "
    "tests. Standard library only (pandas, numpy and openpyxl are also available). Validate "
    "inputs and raise ValueError with a clear message on bad ones. Do not read or modify the "
    "tests.")


def implementation_prompt(state: dict) -> str:
    """Return the spec and the frozen tests, as every implementation step sees them."""
    return ("Specification:\n" + json.dumps(state["spec"], indent=2)
            + "\n\nTests (frozen):\n" + state["tests"])


@node("impl")
def impl(state: dict, runtime: Runtime[Context]) -> dict:
    """Write the first implementation."""
    tool_spec = ToolSpec.model_validate(state["spec"])
    reply, usage = invoke_structured(model(runtime), "impl", INSTRUCTIONS,
                                     state["standalone_request"], implementation_prompt(state),
                                     ImplReply, lambda r: check_implementation(r.code, tool_spec))
    event("impl", "implementation written", code=reply.code)
    return {"implementation": reply.code, "usage": {"impl": usage}}
