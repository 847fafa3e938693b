"""answer: a short natural-language answer; the raw result stays in the state.

A plan's failure names the step and why, and lists what the steps that ran kept as session
data (nothing of it is lost).
"""

from __future__ import annotations

import json

from langchain_core.messages import AIMessage
from langgraph.runtime import Runtime

from state.replies import AnswerReply

from .kit.context import Context
from .kit.dataflow import step_label
from .kit.model import StepError, invoke_structured
from .kit.node import event, model, node

INSTRUCTIONS = ("Answer the user's request in one or two sentences from the tool's result. "
                "State the result exactly; do not invent anything.")
EXPERIMENTAL = ("Warning: {name} is experimental: it did not pass all of its tests, so "
                "check this result. ")


def kept_text(results: list[dict]) -> str:
    """Say what the finished steps kept as session data."""
    if not results:
        return ""
    kept = "; ".join(f"step {r['step']} ({r['tool']['name']}): " + ", ".join(r["items"])
                     for r in results)
    return f" Kept as session data from the steps that ran: {kept}."


def results_text(state: dict) -> str:
    """Describe what the tool (or every step of a plan) returned, for the answer's prompt."""
    results = state.get("step_results") or []
    if len(state.get("steps") or []) < 2 or not results:
        tool = state.get("tool") or {}
        return f"Tool {tool.get('name')} returned: {json.dumps(state.get('result'))[:2000]}"
    return "\n".join(f"Step {r['step']} ({r['request']}): {r['tool']['name']} returned "
                     f"{json.dumps(r['result'])[:800]}"
                     + (f" and wrote {', '.join(r['files'])}" if r["files"] else "")
                     for r in results)


@node("answer")
def answer(state: dict, runtime: Runtime[Context]) -> dict:
    """Write the answer (or the error) and add it to the conversation."""
    usage: dict = {}
    tool = state.get("tool") or {}
    if state.get("error"):
        label = step_label(state)
        text = ("Sorry, I could not complete this: " + (f"{label} failed: " if label else "")
                + state["error"] + kept_text(state.get("step_results") or []))
    elif state.get("answer"):
        text = state["answer"]  # decided without running a tool (an existing tool)
    else:
        request = (state.get("plan") or {}).get("standalone_request") or state.get(
            "standalone_request", "")
        try:
            reply, step_usage = invoke_structured(
                model(runtime), "answer", INSTRUCTIONS, request, results_text(state),
                AnswerReply)
            text, usage = reply.answer, {"answer": step_usage}
        except StepError:
            text = results_text(state) + "."  # the result, said plainly
    if tool.get("status") == "experimental" and not state.get("error"):
        text = EXPERIMENTAL.format(name=tool["name"]) + text
    event("answer", text)
    return {"answer": text, "messages": [AIMessage(text)], "usage": usage}
