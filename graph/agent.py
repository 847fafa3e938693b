"""The graph: nodes wired with typed routers. ``graph`` is what langgraph.json serves."""

from __future__ import annotations

from typing import Literal

from langgraph.graph import END, START, StateGraph

from nodes.answer import answer
from nodes.decide import decide
from nodes.enrich import enrich
from nodes.execute import execute
from nodes.impl import impl
from nodes.kit.context import Context
from nodes.learn import learn
from nodes.plan import plan
from nodes.reflect import reflect
from nodes.register import register
from nodes.retrieve import retrieve
from nodes.spec import spec
from nodes.tests import tests
from nodes.verify import verify
from state.graph_state import AgentState


def ok_or_answer(state: AgentState) -> Literal["next", "answer"]:
    """Go on to the next step, or end the turn through ``answer`` on an error."""
    return "answer" if state.get("error") else "next"


def after_plan(state: AgentState) -> Literal["retrieve", "answer"]:
    """Start the plan's first step; a plan refused (or not made) ends the turn."""
    return "answer" if state.get("error") else "retrieve"


def after_decide(state: AgentState) -> Literal["execute", "spec", "answer"]:
    """Reuse runs the tool; otherwise the agent engineers a new one."""
    if state.get("error"):
        return "answer"
    if state.get("decision") == "reuse":
        # "Create a tool that ..." with a near-identical tool present: say so, run nothing.
        return "answer" if state.get("force_synthesis") else "execute"
    return "spec"


def after_verify(state: AgentState) -> Literal["register", "reflect", "answer"]:
    """Register a pass; reflect on a failure while retries remain, then go experimental."""
    if state.get("error"):
        return "answer"
    if state.get("report", {}).get("status") == "passed":
        return "register"
    if state.get("attempts", 0) <= state["policy"]["max_retries"]:
        return "reflect"
    return "register"


def after_execute(state: AgentState) -> Literal["retrieve", "answer"]:
    """Back to ``retrieve`` for the plan's next step while steps remain; a failure stops it."""
    if state.get("error"):
        return "answer"
    return "retrieve" if state.get("step", 0) < len(state.get("steps") or []) else "answer"


def after_answer(state: AgentState) -> Literal["learn", "__end__"]:
    """Learn from multi-step turns (and every run of a learned workflow); others just end."""
    if state.get("workflow") or (len(state.get("steps") or []) > 1 and not state.get("error")):
        return "learn"
    return END


def build_graph() -> StateGraph:
    """Return the uncompiled graph."""
    builder = StateGraph(AgentState, context_schema=Context)
    for name, function in [("enrich", enrich), ("plan", plan), ("retrieve", retrieve),
                           ("decide", decide), ("spec", spec), ("tests", tests), ("impl", impl),
                           ("verify", verify), ("reflect", reflect), ("register", register),
                           ("execute", execute), ("answer", answer), ("learn", learn)]:
        builder.add_node(name, function)
    builder.add_edge(START, "enrich")
    # Steps that either go on or end the turn with a clear error (one path map each).
    for step, following in [("enrich", "plan"), ("retrieve", "decide"), ("spec", "tests"),
                            ("tests", "impl"), ("impl", "verify"), ("reflect", "verify"),
                            ("register", "execute")]:
        builder.add_conditional_edges(step, ok_or_answer, {"next": following,
                                                           "answer": "answer"})
    builder.add_conditional_edges("plan", after_plan)
    # Reuse runs the tool at once; everything else goes through spec, tests and impl.
    builder.add_conditional_edges("decide", after_decide)
    # The bounded repair loop: verify -> reflect -> verify, counted in ``attempts``.
    builder.add_conditional_edges("verify", after_verify)
    # The plan's loop: each step goes retrieve -> decide -> ... -> execute, then the next one.
    builder.add_conditional_edges("execute", after_execute)
    # What a multi-step turn taught (workflows, composites) is written once, at the end.
    builder.add_conditional_edges("answer", after_answer)
    builder.add_edge("learn", END)
    return builder


graph = build_graph().compile()
