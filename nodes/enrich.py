"""enrich: start a turn; resolve its policy once; window the session's recent turns."""

from __future__ import annotations

import os

from langchain_core.messages import HumanMessage
from langgraph.runtime import Runtime
from langgraph.types import Overwrite

from .kit.checks import check_request
from .kit.context import Context
from .kit.model import StepError
from .kit.node import event, library, node

MAX_REQUEST_CHARS = 4000
# Fields that belong to one turn; the checkpointer keeps the state across turns.
PER_TURN = {"standalone_request": "", "plan": {}, "force_synthesis": False, "new_tool": False,
            "search": {}, "decision": "", "judge": {}, "spec": {}, "tests": "",
            "tests_hash": "", "implementation": "", "report": {}, "mutation": {},
            "strengthen": {}, "tool": {}, "arguments": {}, "result": None, "served": False,
            "cached": False, "error": "", "answer": "", "failure": {}, "repair": {}}


def turn_policy(policy: dict, rule: dict, overrides: dict) -> dict:
    """Return the values a turn runs by: the library's policy under the run's overrides."""
    resolved = {**rule, "cache_ttl_seconds": int(policy["cache_ttl_seconds"]),
                "max_retries": int(policy["max_retries"]),
                "min_tests": int(policy["min_tests"]),
                "history_turns": int(policy["history_turns"]),
                "replay_limit": int(policy["replay_limit"]),
                "experimental_limits": dict(policy["experimental_limits"]),
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
    try:
        check_request(request)
    except ValueError as exc:
        raise StepError(str(exc)) from None
    unreadable = [f for f in runtime.context.input_files if not os.access(f, os.R_OK)
                  or not os.path.isfile(f)]
    if unreadable:
        raise StepError(f"the input file {unreadable[0]} cannot be read")
    lib = library(runtime)
    stored = lib.policy()
    policy = turn_policy(stored, lib.decision_rule(stored), runtime.context.overrides())
    turns = [{"role": "user" if m.type == "human" else "assistant", "content": str(m.content)}
             for m in state.get("messages", []) if m.type in ("human", "ai")]
    window = turns[-2 * policy["history_turns"]:] if policy["history_turns"] else []
    event("enrich", f"{len(window)} earlier messages in context")
    # The user's verdict on the last answer ({"note": ...}) is this turn's failure to repair;
    # the tool that gave that answer is the one the last turn used.
    verdict = state.get("feedback") or {}
    failure = ({"kind": "marked_wrong", "note": str(verdict.get("note") or "")[:2000],
                "tool": (state.get("tool") or {}).get("name", "")} if verdict else {})
    return {**PER_TURN, "request": request, "history": window, "policy": policy,
            "messages": [HumanMessage(request)], "usage": Overwrite({}),
            "attempts": Overwrite(0), "warnings": Overwrite([]), "repairs": Overwrite(0),
            "strengthened": Overwrite(0), "feedback": {}, "failure": failure}
