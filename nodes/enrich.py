"""enrich: start a turn; resolve its policy once; window the session's recent turns.

It also gives the turn the session's data (the user's new files are kept as items first)
and its memory beyond the window: older turns summarized, and the earlier turns most
relevant to the new request.
"""

from __future__ import annotations

import os
from pathlib import Path

from langchain_core.messages import HumanMessage
from langgraph.runtime import Runtime
from langgraph.types import Overwrite

from .kit.checks import check_request
from .kit.context import Context
from .kit.dataflow import short_item
from .kit.model import StepError
from .kit.node import event, library, node, session_of

MAX_REQUEST_CHARS = 4000
# Fields that belong to one turn; the checkpointer keeps the state across turns.
PER_TURN = {"standalone_request": "", "plan": {}, "force_synthesis": False, "new_tool": False,
            "search": {}, "decision": "", "judge": {}, "spec": {}, "tests": "",
            "tests_hash": "", "implementation": "", "report": {}, "mutation": {},
            "strengthen": {}, "tool": {}, "arguments": {}, "result": None, "served": False,
            "cached": False, "error": "", "answer": "", "failure": {}, "repair": {}, "steps": [],
            "step": 0, "workflow": {}, "memory": ""}


def turn_policy(policy: dict, rule: dict, overrides: dict, model_id: str = "") -> dict:
    """Return the values a turn runs by: the library's policy under the run's overrides."""
    workflow = policy["workflow_thresholds"]
    resolved = {**rule, "cache_ttl_seconds": int(policy["cache_ttl_seconds"]),
                "max_retries": int(policy["max_retries"]),
                "min_tests": int(policy["min_tests"]),
                "history_turns": int(policy["history_turns"]),
                "replay_limit": int(policy["replay_limit"]),
                "experimental_limits": dict(policy["experimental_limits"]),
                "max_steps": int(policy["max_steps"]),
                "workflow_reuse": workflow.get(model_id) or workflow["default"],
                "workflow_min_successes": int(policy["workflow_min_successes"]),
                "promotion": policy["promotion"], "memory": policy["memory"],
                "min_mutation_score": float(policy["min_mutation_score"]),
                "max_mutants": int(policy["max_mutants"]),
                "max_strengthen": int(policy["max_strengthen"])}
    return {**resolved, **overrides}


def conversation_turns(messages: list) -> list[dict]:
    """Return the session's turns so far: number, request, answer."""
    turns: list[dict] = []
    for message in messages:
        if message.type == "human":
            turns.append({"turn": len(turns) + 1, "request": str(message.content),
                          "answer": ""})
        elif message.type == "ai" and turns:
            turns[-1]["answer"] = str(message.content)
    return turns


def memory_text(older: list[dict], relevant: list[dict], limit: int) -> str:
    """Summarize the turns before the window; quote the most relevant ones in full."""
    if not older:
        return ""
    shown = older[-limit:]
    lines = [f"Earlier in this session ({len(older)} turns before the recent ones"
             + (f", the last {len(shown)} summarized" if len(shown) < len(older) else "")
             + "):"]
    lines += [f"{t['turn']}. asked {t['request'][:80]!r} -> {t['answer'][:80]!r}"
              for t in shown]
    if relevant:
        lines.append("Earlier turns most relevant to this request:")
        lines += [f"turn {r['turn']}: {r['text'][:600]}" for r in relevant]
    return "\n".join(lines)


@node("enrich")
def enrich(state: dict, runtime: Runtime[Context]) -> dict:
    """Reset the turn, fix its policy, window the conversation, list the session's data."""
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
    policy = turn_policy(stored, lib.decision_rule(stored), runtime.context.overrides(),
                         lib.model_id)
    turns = conversation_turns(state.get("messages", []))
    kept = policy["history_turns"]
    window = [{"role": role, "content": t[key]} for t in (turns[-kept:] if kept else [])
              for role, key in (("user", "request"), ("assistant", "answer"))]
    older = turns[:-kept] if kept else turns
    session, turn = session_of(runtime), len(turns) + 1
    for path in runtime.context.input_files:  # the user's files become session data
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise StepError(f"cannot read the data file {path}: {exc.strerror}") from exc
        lib.sessions.add_file(session, turn, Path(path).name, data, "upload")
    items = [short_item(i) for i in lib.sessions.items(session)]
    memory = policy["memory"]
    relevant = lib.sessions.relevant_turns(
        session, [(t["turn"], f"user: {t['request']}\nassistant: {t['answer']}")
                  for t in older], request, memory["relevant_turns"],
        memory["min_similarity"]) if older else []
    event("enrich", f"{len(window)} earlier messages in context, {len(older)} older turns "
          f"remembered, {len(items)} session data items")
    # The user's verdict on the last answer ({"note": ..., "execution": the id of the run the
    # user saw, when known}) is this turn's failure to repair; the tool that gave that answer
    # is the one the last turn used.
    verdict = state.get("feedback") or {}
    seen = verdict.get("execution")
    failure = ({"kind": "marked_wrong", "note": str(verdict.get("note") or "")[:2000],
                "tool": (state.get("tool") or {}).get("name", ""),
                "seen": seen if isinstance(seen, int) and not isinstance(seen, bool) else None}
               if verdict else {})
    return {**PER_TURN, "request": request, "history": window, "policy": policy,
            "messages": [HumanMessage(request)], "usage": Overwrite({}),
            "attempts": Overwrite(0), "warnings": Overwrite([]), "repairs": Overwrite(0),
            "strengthened": Overwrite(0), "feedback": {}, "failure": failure,
            "step_results": Overwrite([]), "turn": turn, "items": items,
            "memory": memory_text(older, relevant, memory["summary_turns"])}
