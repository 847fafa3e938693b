"""The graph: nodes wired with typed routers. ``graph`` is what langgraph.json serves."""

from __future__ import annotations

from typing import Literal

from langgraph.graph import END, START, StateGraph

from graph.context import Context
from nodes.answer import answer
from nodes.decide import decide
from nodes.enrich import enrich
from nodes.execute import execute
from nodes.impl import impl
from nodes.plan import plan
from nodes.reflect import reflect
from nodes.register import register
from nodes.retrieve import retrieve
from nodes.spec import spec
from nodes.tests import tests
from nodes.verify import verify
from state.graph_state import AgentState


def after_enrich(state: AgentState) -> Literal["plan", "answer"]:
    """End the turn at once on an unusable request."""
    return "answer" if state.get("error") else "plan"


def after_plan(state: AgentState) -> Literal["retrieve", "answer"]:
    """Multi-step plans are detected and explained, not run (yet)."""
    return "answer" if state.get("error") or state.get("decision") == "multi" else "retrieve"


def after_retrieve(state: AgentState) -> Literal["decide", "answer"]:
    """End the turn when the library cannot be searched."""
    return "answer" if state.get("error") else "decide"


def after_decide(state: AgentState) -> Literal["execute", "spec", "answer"]:
    """Reuse runs the tool; otherwise the agent engineers a new one."""
    if state.get("error"):
        return "answer"
    if state.get("decision") == "reuse":
        # "Create a tool that ..." with a near-identical tool present: say so, run nothing.
        return "answer" if state.get("force_synthesis") else "execute"
    return "spec"


def after_spec(state: AgentState) -> Literal["tests", "answer"]:
    """Write the tests from the spec alone."""
    return "answer" if state.get("error") else "tests"


def after_tests(state: AgentState) -> Literal["impl", "answer"]:
    """Implement only after the suite is frozen."""
    return "answer" if state.get("error") else "impl"


def after_impl(state: AgentState) -> Literal["verify", "answer"]:
    """Only code that passed the static checks reaches the sandbox."""
    return "answer" if state.get("error") else "verify"


def after_verify(state: AgentState) -> Literal["register", "reflect", "answer"]:
    """Register a pass; reflect on a failure while retries remain, then go experimental."""
    if state.get("error"):
        return "answer"
    if state.get("report", {}).get("status") == "passed":
        return "register"
    if state.get("attempts", 0) <= state.get("retry_limit", 2):
        return "reflect"
    return "register"


def after_reflect(state: AgentState) -> Literal["verify", "answer"]:
    """Verify a corrected implementation against the same suite."""
    return "answer" if state.get("error") else "verify"


def after_register(state: AgentState) -> Literal["execute", "answer"]:
    """Serve the request that asked for the tool just registered."""
    return "answer" if state.get("error") else "execute"


def build_graph() -> StateGraph:
    """Return the uncompiled graph."""
    builder = StateGraph(AgentState, context_schema=Context)
    for name, function in [("enrich", enrich), ("plan", plan), ("retrieve", retrieve),
                           ("decide", decide), ("spec", spec), ("tests", tests), ("impl", impl),
                           ("verify", verify), ("reflect", reflect), ("register", register),
                           ("execute", execute), ("answer", answer)]:
        builder.add_node(name, function)
    builder.add_edge(START, "enrich")
    builder.add_conditional_edges("enrich", after_enrich)
    builder.add_conditional_edges("plan", after_plan)
    builder.add_conditional_edges("retrieve", after_retrieve)
    # The thresholds live in the library's decision; the verify band is judged inside decide.
    builder.add_conditional_edges("decide", after_decide)
    builder.add_conditional_edges("spec", after_spec)
    builder.add_conditional_edges("tests", after_tests)
    builder.add_conditional_edges("impl", after_impl)
    # The bounded repair loop: verify -> reflect -> verify, counted in ``attempts``.
    builder.add_conditional_edges("verify", after_verify)
    builder.add_conditional_edges("reflect", after_reflect)
    builder.add_conditional_edges("register", after_register)
    builder.add_edge("execute", "answer")
    builder.add_edge("answer", END)
    return builder


graph = build_graph().compile()
