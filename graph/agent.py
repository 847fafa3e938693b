"""The graph: nodes wired with typed routers. ``graph`` is what langgraph.json serves."""

from __future__ import annotations

from typing import Literal

from langgraph.graph import END, START, StateGraph

from nodes.answer import answer
from nodes.decide import decide
from nodes.enrich import enrich
from nodes.execute import execute
from nodes.feedback import feedback
from nodes.gate import gate
from nodes.impl import impl
from nodes.kit.context import Context
from nodes.learn import learn
from nodes.plan import plan
from nodes.reflect import reflect
from nodes.register import register
from nodes.retrieve import retrieve
from nodes.spec import spec
from nodes.strengthen import strengthen, suite_too_weak
from nodes.tests import tests
from nodes.verify import verify
from sandbox.reports import NOT_A_VERDICT
from state.graph_state import AgentState


def ok_or_answer(state: AgentState) -> Literal["next", "answer"]:
    """Go on to the next step, or end the turn through ``answer`` on an error."""
    return "answer" if state.get("error") else "next"


def after_enrich(state: AgentState) -> Literal["plan", "feedback", "answer"]:
    """Send a turn that marks the last answer wrong to repair the tool that gave it."""
    if state.get("error"):
        return "answer"
    return "feedback" if state.get("failure") else "plan"


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


def after_verify(state: AgentState) -> Literal["register", "reflect", "strengthen", "answer"]:
    """Register a pass; reflect on a failure while retries remain, then go experimental.

    A run that says nothing about the code (the sandbox unavailable, or broken from outside)
    is never reflected on nor registered: the turn ends with its error. A pass whose suite
    killed too few of its implementation's mutants (the mutation gate) is strengthened first,
    while strengthening rounds remain. A repair never comes here: reflect hands it to its gate.
    """
    if state.get("error") or state.get("report", {}).get("status") in NOT_A_VERDICT:
        return "answer"
    if state.get("report", {}).get("status") == "passed":
        return strengthen_or_register(state)
    if state.get("attempts", 0) <= state["policy"]["max_retries"]:
        return "reflect"
    return "register"


def after_reflect(state: AgentState) -> Literal["verify", "gate", "answer"]:
    """Verify a fix for failing tests; a repair goes to its gate, which verifies and replays."""
    if state.get("error"):
        return "answer"
    return "gate" if state.get("failure") else "verify"


def repair_or_answer(state: AgentState) -> Literal["reflect", "answer"]:
    """Send a failure in use to be repaired while the policy's retries last."""
    if state.get("error") or not state.get("failure"):
        return "answer"
    return "reflect" if state.get("repairs", 0) < state["policy"]["max_retries"] else "answer"


def after_gate(state: AgentState) -> Literal["register", "reflect", "answer"]:
    """Register a repair that passed the gate; otherwise try again while retries last."""
    if state.get("error"):
        return "answer"
    if not state["repair"].get("refused"):
        return "register"
    return repair_or_answer(state)


def after_execute(state: AgentState) -> Literal["retrieve", "reflect", "answer"]:
    """Send a failure in use to be repaired; else go on to the next step while steps remain.

    A step of a plan that fails in use is repaired like a single request: the repaired
    version reruns the same step, and the plan goes on from there.
    """
    if state.get("error") or state.get("failure"):
        return repair_or_answer(state)
    return "retrieve" if state.get("step", 0) < len(state.get("steps") or []) else "answer"


def after_answer(state: AgentState) -> Literal["learn", "__end__"]:
    """Learn from multi-step turns (and every run of a learned workflow); others just end."""
    if state.get("workflow") or (len(state.get("steps") or []) > 1 and not state.get("error")):
        return "learn"
    return END


def strengthen_or_register(state: AgentState) -> Literal["strengthen", "register"]:
    """Strengthen a suite too weak to trust while rounds remain; otherwise register."""
    weak = suite_too_weak(state.get("mutation"), state["policy"])
    if weak and state.get("strengthened", 0) < state["policy"].get("max_strengthen", 0):
        return "strengthen"
    return "register"


def after_strengthen(state: AgentState) -> Literal["reflect", "strengthen", "register",
                                                  "answer"]:
    """Gate again after a round; refused tests failing on the implementation go to reflect."""
    if state.get("error"):
        return "answer"
    failing = (state.get("strengthen") or {}).get("fails_on_implementation")
    if failing and state.get("attempts", 0) <= state["policy"]["max_retries"]:
        return "reflect"
    return strengthen_or_register(state)


def build_graph() -> StateGraph:
    """Return the uncompiled graph."""
    builder = StateGraph(AgentState, context_schema=Context)
    for name, function in [("enrich", enrich), ("plan", plan), ("retrieve", retrieve),
                           ("decide", decide), ("spec", spec), ("tests", tests), ("impl", impl),
                           ("verify", verify), ("reflect", reflect),
                           ("strengthen", strengthen), ("register", register),
                           ("execute", execute), ("feedback", feedback), ("gate", gate),
                           ("answer", answer), ("learn", learn)]:
        builder.add_node(name, function)
    builder.add_edge(START, "enrich")
    # Steps that either go on or end the turn with a clear error (one path map each).
    for step, following in [("retrieve", "decide"), ("spec", "tests"),
                            ("tests", "impl"), ("impl", "verify"), ("register", "execute")]:
        builder.add_conditional_edges(step, ok_or_answer, {"next": following,
                                                           "answer": "answer"})
    # A thumbs-down on the last answer starts a repair; anything else is planned.
    builder.add_conditional_edges("enrich", after_enrich)
    builder.add_conditional_edges("plan", after_plan)
    # Reuse runs the tool at once; everything else goes through spec, tests and impl.
    builder.add_conditional_edges("decide", after_decide)
    # The bounded reflection loop: verify -> reflect -> verify, counted in ``attempts``.
    builder.add_conditional_edges("verify", after_verify)
    builder.add_conditional_edges("reflect", after_reflect)
    # The mutation gate's loop: strengthen a weak suite (bounded by ``max_strengthen``);
    # tests it refuses because they fail on the implementation are shown to reflect.
    builder.add_conditional_edges("strengthen", after_strengthen)
    # The repair loop, counted in ``repairs``: a failure in use (or a marked-wrong answer)
    # -> reflect -> gate -> register -> execute again; a refused repair retries. A repair is
    # never strengthened: the gate measures its mutants and register decides its status.
    # The plan's loop: each step goes retrieve -> decide -> ... -> execute, then the next one.
    builder.add_conditional_edges("execute", after_execute)
    builder.add_conditional_edges("feedback", repair_or_answer)
    builder.add_conditional_edges("gate", after_gate)
    # What a multi-step turn taught (workflows, composites) is written once, at the end.
    builder.add_conditional_edges("answer", after_answer)
    builder.add_edge("learn", END)
    return builder


graph = build_graph().compile()
