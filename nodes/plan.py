"""plan: make the request self-contained, and tell one tool from several steps."""

from __future__ import annotations

import re

from langgraph.runtime import Runtime

from state.replies import PlanReply

from .kit.context import Context
from .kit.model import invoke_structured
from .kit.node import event, history_text, model, node

CREATE = re.compile(r"\b(create|build|make|write|generate|develop)\b.{0,40}\b(tool|function)\b",
                    re.IGNORECASE)
INSTRUCTIONS = (
    "You plan how an agent that builds and reuses Python tools will serve a request. Rewrite "
    "the request so it stands alone (resolve 'the same', 'it', 'now for 451' from the "
    "conversation; keep every value). kind is 'single' when one function can do it, 'multi' "
    "when it needs several tools in sequence (then list the steps). new_tool: true only when "
    "the user insists on a new tool even though one may exist ('a new one anyway').")


@node("plan")
def plan(state: dict, runtime: Runtime[Context]) -> dict:
    """Plan the turn; "create a tool that ..." is honoured, insisting on a new one too.

    An explicit request to create a tool reuses one only when the rule finds the same tool;
    a user who insists (the plan says so, or the run's ``new_tool`` setting) gets a new tool
    under a new name: the spec step refuses a taken name.
    """
    reply, usage = invoke_structured(model(runtime), "plan", INSTRUCTIONS, state["request"],
                                     history_text(state), PlanReply)
    forced = bool(CREATE.search(state["request"]))
    new_tool = bool(runtime.context.new_tool or reply.new_tool)
    update = {"plan": reply.model_dump(), "standalone_request": reply.standalone_request,
              "force_synthesis": forced or new_tool, "new_tool": new_tool,
              "usage": {"plan": usage}}
    if reply.kind == "multi":
        steps = "; ".join(reply.steps) or "several steps"
        update.update(decision="multi", answer=(
            f"This needs several tools in sequence ({steps}). Multi-step plans are not "
            "supported yet: ask for one step at a time."))
    message = f"{reply.kind} tool: {reply.standalone_request}" + (
        " (a new tool, as asked)" if new_tool else
        " (explicit request to create a tool)" if forced else "")
    event("plan", message, plan=reply.model_dump())
    return update
