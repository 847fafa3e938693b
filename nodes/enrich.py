"""enrich: start a turn; resolve its policy once; window the session's recent turns."""

from __future__ import annotations

from langchain_core.messages import HumanMessage
from langgraph.runtime import Runtime
from langgraph.types import Overwrite

from .kit.context import Context
from .kit.model import StepError
from .kit.node import event, library, node

MAX_REQUEST_CHARS = 4000
# Fields that belong to one turn; the checkpointer keeps the state across turns.
PER_TURN = {"standalone_request": "", "plan": {}, "force_synthesis": False, "search": {},
            "decision": "", "judge": {}, "spec": {}, "tests": "", "tests_hash": "",
            "implementation": "", "report": {}, "mutation": {}, "strengthen": {},
            "tool": {}, "arguments": {},
            "result": None, "error": "", "answer": ""}


def turn_policy(policy: dict, thresholds: dict, overrides: dict) -> dict:
    """Return the values a turn runs by: the library's policy under the run's overrides."""
    resolved = {"reuse": thresholds["reuse"], "verify": thresholds["verify"],
                "max_retries": int(policy["max_retries"]),
                "min_tests": int(policy["min_tests"]),
                "history_turns": int(policy["history_turns"]),
                "min_mutation_score": float(policy["min_mutation_score"]),
                "max_mutants": int(policy["max_mutants"]),
                "max_strengthen": int(policy["max_strengthen"])}
    return {**resolved, **overrides}


@node("enrich")
def enrich(state: dict, runtime: Runtime[Context]) -> dict:
    """Reset the turn, fix its policy, and window the recent conversation."""
    request = (state.get("request") or "").strip()
    if not request:
        raise StepError("the request is empty")
    if len(request) > MAX_REQUEST_CHARS:
        raise StepError(f"the request is longer than {MAX_REQUEST_CHARS} characters")
    lib = library(runtime)
    stored = lib.policy()
    policy = turn_policy(stored, lib.thresholds(stored), runtime.context.overrides())
    turns = [{"role": "user" if m.type == "human" else "assistant", "content": str(m.content)}
             for m in state.get("messages", []) if m.type in ("human", "ai")]
    window = turns[-2 * policy["history_turns"]:] if policy["history_turns"] else []
    event("enrich", f"{len(window)} earlier messages in context")
    return {**PER_TURN, "request": request, "history": window, "policy": policy,
            "messages": [HumanMessage(request)], "usage": Overwrite({}),
            "attempts": Overwrite(0), "strengthened": Overwrite(0)}
