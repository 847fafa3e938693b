"""answer: a short natural-language answer; the raw result stays in the state.

The turn's outcome becomes evidence here, once, when it is known: the judge's verdict
(strong; a "serves" only when the tool then ran) and a successful run (weak: it never
allows a direct reuse on its own). A plan's earlier steps leave theirs as the next step
starts (``retrieve``).

A plan's failure names the step and why, and lists what the steps that ran kept as session
data (nothing of it is lost).
"""

from __future__ import annotations

import json

from langchain_core.messages import AIMessage
from langgraph.runtime import Runtime

from state.replies import AnswerReply
from tools_store.errors import LibraryError
from tools_store.models import Evidence

from .kit.context import Context
from .kit.dataflow import step_label
from .kit.model import StepError, invoke_structured
from .kit.node import event, library, model, node

INSTRUCTIONS = ("Answer the user's request in one or two sentences from the tool's result. "
                "State the result exactly; do not invent anything.")
SORRY = "Sorry, I could not complete this: "
EXPERIMENTAL = "Warning: {name} is experimental: {why}, so check this result. "
CACHED = (" (Served from the cache: {name} v{version} computed this result earlier for the "
          "same arguments and inputs.)")


def outcome_evidence(state: dict, session_id: str) -> list[Evidence]:
    """Return the evidence a finished turn leaves (see the module's docstring)."""
    request = state.get("standalone_request") or ""
    tool = state.get("tool") or {}
    judge = state.get("judge") or {}
    served = bool(state.get("served")) and not state.get("error")
    items: list[Evidence] = []
    judged = judge.get("candidates", [])
    if judged and not judge.get("serves"):
        items += [Evidence(request=request, tool=c["name"], version=c["version"], serves=False,
                           source="judge", reason=judge.get("reason", ""),
                           session_id=session_id) for c in judged]
    elif judged and served and tool.get("name") in {c["name"] for c in judged}:
        items.append(Evidence(request=request, tool=tool["name"], version=tool["version"],
                              serves=True, source="judge", reason=judge.get("reason", ""),
                              session_id=session_id))
    elif served and tool:
        items.append(Evidence(request=request, tool=tool["name"], version=tool["version"],
                              serves=True, source="execution", session_id=session_id,
                              reason="it ran without an error"))
    return items


def unrepaired(state: dict, label: str = "") -> str:
    """Say what failed in use (in which step of a plan) and why a repair could not fix it."""
    failure, repair = state["failure"], state.get("repair") or {}
    text = SORRY + (f"{label} failed: " if label else "") + f"{failure['message'].rstrip('.')}."
    why = state.get("error") or repair.get("refused")
    if state.get("repairs") or why:
        name = (state.get("tool") or {}).get("name", "the tool")
        text += (f" A repair was tried and could not fix it: "
                 f"{(why or 'it failed again').rstrip('.')}. "
                 f"{name} v{failure['version']} stays current.")
    return text


def repaired(state: dict) -> str:
    """Say which version the tool was repaired into, when it was."""
    repair = state.get("repair") or {}
    if not repair.get("to_version"):
        return ""
    return (f" ({state['tool']['name']} v{repair['from_version']} failed on this; it was "
            f"repaired into v{repair['to_version']}, which passes its old tests, the new "
            f"regression test {', '.join(repair['tests_added'])} and a replay of "
            f"{repair.get('replayed', 0)} past executions.)")


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


def plain_text(state: dict) -> str:
    """Say the result without a model: the tool's, or every step's for a plan."""
    if len(state.get("steps") or []) < 2 or not state.get("step_results"):
        name = (state.get("tool") or {}).get("name")
        return f"{name} returned {json.dumps(state.get('result'))[:2000]}."
    return results_text(state) + "."


def why_experimental(report: dict) -> str:
    """Say why a tool is experimental, from the verification of this turn (if any)."""
    if report.get("status") == "passed":
        return "its tests pass but are too weak to trust (the mutation gate)"
    return "it did not pass all of its tests" if report else "it is not verified"


@node("answer")
def answer(state: dict, runtime: Runtime[Context]) -> dict:
    """Write the answer (or the error), keep the turn's evidence, add it to the conversation."""
    usage: dict = {}
    update: dict = {}
    tool = state.get("tool") or {}
    label = step_label(state)
    kept = kept_text(state.get("step_results") or [])
    if (state.get("failure") or {}).get("message"):
        text = unrepaired(state, label)
        update["error"] = text.removeprefix(SORRY)  # the turn ends in an error, as any other
        text += kept
    elif state.get("error"):
        text = f"{SORRY}" + (f"{label} failed: " if label else "") + state["error"] + kept
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
            text = plain_text(state)  # the result, said plainly
    if not state.get("error") and not state.get("failure"):
        if tool.get("status") == "experimental":
            text = EXPERIMENTAL.format(name=tool["name"],
                                       why=why_experimental(state.get("report") or {})) + text
        text += repaired(state)
    text += "".join(f"\nNote: {warning}." for warning in state.get("warnings") or [])
    if state.get("cached") and not state.get("error"):
        text += CACHED.format(name=tool.get("name"), version=tool.get("version"))
    try:
        library(runtime).add_evidence(outcome_evidence(state, runtime.context.session_id))
    except LibraryError as exc:  # the answer stands; only what it teaches is lost
        event("answer", f"the turn's evidence could not be kept: {exc}", level="warning")
    event("answer", text)
    return {**update, "answer": text, "messages": [AIMessage(text)], "usage": usage}
