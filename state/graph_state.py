"""The graph state shared by every node: what the graph needs to run a turn, nothing more.

Progress events and the route a turn took travel in the stream (``custom`` and ``updates``),
not here. Fields of one turn are set afresh by ``enrich``; a field with a reducer is reset
with LangGraph's ``Overwrite`` (the one reset convention).
"""

from __future__ import annotations

import operator
from typing import Annotated, Any

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages
from typing_extensions import TypedDict


def sum_usage(left: dict | None, right: dict | None) -> dict:
    """Add token counts per step."""
    merged = {step: dict(counts) for step, counts in (left or {}).items()}
    for step, counts in (right or {}).items():
        target = merged.setdefault(step, {})
        for key, value in counts.items():
            target[key] = target.get(key, 0) + value
    return merged


class AgentState(TypedDict, total=False):
    """Everything a turn of the agent reads and writes."""

    request: str  # the user's request, as typed
    messages: Annotated[list[AnyMessage], add_messages]  # the conversation (the session)
    history: list[dict]  # a bounded window of recent turns, for plan and argument extraction
    policy: dict  # the policy of this turn: thresholds, retries, minimum tests (resolved once)
    standalone_request: str  # the request made self-contained by the plan; search uses it
    plan: dict  # PlanReply of this turn
    force_synthesis: bool  # the user explicitly asked to create a tool
    new_tool: bool  # the user insists on a new tool: no reuse at all (a new name)
    search: dict  # SearchResult: ranked candidates and the thresholds that apply
    decision: str  # reuse | synthesize | multi
    judge: dict  # JudgeReply and the candidates judged, when the verify band was judged
    spec: dict  # ToolSpec of the tool being built
    tests: str  # the frozen pytest suite
    tests_hash: str  # sha256 of the suite when it was frozen
    implementation: str  # the current implementation
    report: dict  # the last VerifyReport
    attempts: Annotated[int, operator.add]  # implementations verified this turn
    mutation: dict  # MutationReport of the passing suite on its implementation (the gate)
    strengthen: dict  # the last strengthening: outcome, reason, the tests offered
    strengthened: Annotated[int, operator.add]  # strengthening rounds this turn
    tool: dict  # name, version, status of the tool in use
    arguments: dict  # validated arguments of the call
    result: Any  # the raw result of the call
    served: bool  # the tool ran (or came from the cache) without an error
    cached: bool  # the result came from the execution cache
    feedback: dict  # turn input: {"note": ...} marks the session's last answer wrong
    failure: dict  # the failure in use being repaired: kind, arguments, message, output, note
    repairs: Annotated[int, operator.add]  # repair attempts this turn (the repair loop's bound)
    repair: dict  # the repair under way: base version, regression tests, gate verdict, result
    error: str  # a clear error that ends the turn
    warnings: Annotated[list[str], operator.add]  # what the answer must mention (this turn)
    answer: str  # the short natural-language answer
    usage: Annotated[dict, sum_usage]  # token usage per step of this turn
    # Multi-step plans, session data and workflows.
    turn: int  # this turn's number in the session (1 for the first)
    memory: str  # older turns summarized, and the earlier turns most relevant to this request
    items: list[dict]  # a short listing of the session's data (name, kind, shape, turn)
    steps: list[dict]  # the plan's steps (PlanStep dicts; pinned tools when a workflow runs)
    step: int  # the cursor: index of the step being served
    step_results: Annotated[list[dict], operator.add]  # what each finished step gave
    workflow: dict  # the recorded workflow this turn reuses: id, similarity, arguments
