"""enrich: start a turn; give later steps a bounded window of the session's recent turns."""

from __future__ import annotations

from langchain_core.messages import HumanMessage
from langgraph.runtime import Runtime

from graph.context import Context
from state.graph_state import RESET

from .common import event, node

# Fields that belong to one turn; the checkpointer keeps the state across turns.
PER_TURN = {"standalone_request": "", "plan": {}, "force_synthesis": False, "search": {},
            "decision": "", "judge": {}, "spec": {}, "tests": "", "tests_hash": "",
            "implementation": "", "report": {}, "attempts": 0, "tool": {}, "arguments": {},
            "result": None, "call": {}, "error": "", "answer": ""}


@node("enrich")
def enrich(state: dict, runtime: Runtime[Context]) -> dict:
    """Reset the turn, and window the recent conversation for planning and arguments."""
    request = (state.get("request") or "").strip()
    if not request:
        raise ValueError("the request is empty")
    if len(request) > 4000:
        raise ValueError("the request is longer than 4000 characters")
    turns = [{"role": "user" if m.type == "human" else "assistant", "content": str(m.content)}
             for m in state.get("messages", []) if m.type in ("human", "ai")]
    window = turns[-2 * runtime.context.history_turns:]
    return {**PER_TURN, "request": request, "history": window,
            "messages": [HumanMessage(request)], "route": [RESET], "usage": {"reset": True},
            "events": [RESET, event("enrich", f"{len(window)} earlier messages in context")]}
