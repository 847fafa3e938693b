"""answer: a short natural-language answer; the raw result stays in the state."""

from __future__ import annotations

import json

from langchain_core.messages import AIMessage
from langgraph.runtime import Runtime

from state.replies import AnswerReply

from .kit.context import Context
from .kit.model import StepError, invoke_structured
from .kit.node import event, model, node

INSTRUCTIONS = ("Answer the user's request in one or two sentences from the tool's result. "
                "State the result exactly; do not invent anything.")
EXPERIMENTAL = "Warning: {name} is experimental: {why}, so check this result. "


def why_experimental(report: dict) -> str:
    """Say why a tool is experimental, from the verification of this turn (if any)."""
    if report.get("status") == "passed":
        return "its tests pass but are too weak to trust (the mutation gate)"
    return "it did not pass all of its tests" if report else "it is not verified"


@node("answer")
def answer(state: dict, runtime: Runtime[Context]) -> dict:
    """Write the answer (or the error) and add it to the conversation."""
    usage: dict = {}
    tool = state.get("tool") or {}
    if state.get("error"):
        text = f"Sorry, I could not complete this: {state['error']}"
    elif state.get("answer"):
        text = state["answer"]  # decided without running a tool (multi-step, existing tool)
    else:
        result = json.dumps(state.get("result"))[:2000]
        try:
            reply, step_usage = invoke_structured(
                model(runtime), "answer", INSTRUCTIONS, state["standalone_request"],
                f"Tool {tool.get('name')} returned: {result}", AnswerReply)
            text, usage = reply.answer, {"answer": step_usage}
        except StepError:
            text = f"{tool.get('name')} returned {result}."  # the result, said plainly
    if tool.get("status") == "experimental" and not state.get("error"):
        text = EXPERIMENTAL.format(name=tool["name"],
                                   why=why_experimental(state.get("report") or {})) + text
    event("answer", text)
    return {"answer": text, "messages": [AIMessage(text)], "usage": usage}
