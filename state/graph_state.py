"""The graph state shared by every node. Per-turn fields are reset by ``enrich``."""

from __future__ import annotations

from typing import Annotated, Any

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages
from typing_extensions import TypedDict

RESET = {"reset": True}


def add_or_reset(left: list | None, right: list | None) -> list:
    """Append ``right`` to ``left``; a list starting with RESET starts over."""
    right = right or []
    if right and right[0] == RESET:
        return list(right[1:])
    return list(left or []) + list(right)


def sum_usage(left: dict | None, right: dict | None) -> dict:
    """Add token counts per step; RESET as a key starts over."""
    if right and right.get("reset"):
        return {}
    merged = {step: dict(counts) for step, counts in (left or {}).items()}
    for step, counts in (right or {}).items():
        target = merged.setdefault(step, {})
        for key, value in counts.items():
            target[key] = target.get(key, 0) + value
    return merged


def count_or_reset(left: int | None, right: int | None) -> int:
    """Add ``right`` to the count; 0 starts over."""
    return 0 if not right else (left or 0) + right


class AgentState(TypedDict, total=False):
    """Everything a turn of the agent reads and writes."""

    request: str  # the user's request, as typed
    messages: Annotated[list[AnyMessage], add_messages]  # the conversation (the session)
    history: list[dict]  # a bounded window of recent turns, for plan and argument extraction
    standalone_request: str  # the request made self-contained by the plan; search uses it
    plan: dict  # PlanReply of this turn
    force_synthesis: bool  # the user explicitly asked to create a tool
    search: dict  # SearchResult: candidates, scores, the library's decision
    decision: str  # reuse | synthesize | multi | error
    judge: dict  # JudgeReply, when a verify-band candidate was judged
    spec: dict  # ToolSpec of the tool being built
    tests: str  # the frozen pytest suite
    tests_hash: str  # sha256 of the suite when it was frozen
    implementation: str  # the current implementation
    report: dict  # the last VerifyReport
    retry_limit: int  # reflections allowed after failed verifications
    attempts: Annotated[int, count_or_reset]  # implementations verified this turn
    tool: dict  # name, version, status of the tool in use
    arguments: dict  # validated arguments of the call
    result: Any  # the raw result of the call
    call: dict  # the CallResult
    error: str  # a clear error that ends the turn
    answer: str  # the short natural-language answer
    route: Annotated[list[str], add_or_reset]  # the nodes this turn went through
    events: Annotated[list[dict], add_or_reset]  # progress events of this turn
    usage: Annotated[dict, sum_usage]  # token usage per step of this turn
