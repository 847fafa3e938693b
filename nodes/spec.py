"""spec: a specification before anything else: name, typed parameters, return, docstring."""

from __future__ import annotations

from langgraph.runtime import Runtime

from state.replies import SpecReply
from tools_store.models import ToolSpec

from .kit.context import Context
from .kit.model import invoke_structured
from .kit.node import event, library, model, node

INSTRUCTIONS = (
    "Write the specification of one pure Python function that serves the request and "
    "similar requests in general (not only these values). name: snake_case, descriptive, "
    "not a standard-library module name. parameters: typed (JSON types) with descriptions "
    "and units. docstring: behaviour, examples and edge cases. examples: three requests in "
    "users' words that the tool serves.")


@node("spec")
def spec(state: dict, runtime: Runtime[Context]) -> dict:
    """Write the tool's specification; a name already taken is sent back once."""
    tools = library(runtime)

    def check(reply: SpecReply) -> None:
        if tools.name_taken(reply.name):
            raise ValueError(f"a tool named {reply.name!r} already exists; choose another name")

    reply, usage = invoke_structured(model(runtime), "spec", INSTRUCTIONS,
                                     state["standalone_request"], "", SpecReply, check)
    tool_spec = ToolSpec.model_validate(reply.model_dump())
    event("spec", f"spec: {tool_spec.signature()}", spec=tool_spec.model_dump())
    return {"spec": tool_spec.model_dump(), "usage": {"spec": usage}}
