"""Routing of the repair loop: a failure in use -> reflect -> gate -> register -> execute,
bounded by the policy's retries; the thumbs-down path; what is not a failure.

In memory, with the stand-ins of ``fakes.py`` (their markers decide what passes and what
a call returns). The same loop runs against the real parts in
``tests/integration/test_repair.py``.
"""

from __future__ import annotations

import json

from fakes import FakeLibrary, FakeSandbox
from langgraph.checkpoint.memory import InMemorySaver

from graph.agent import build_graph
from nodes.kit import services
from nodes.kit.context import Context
from tools_store.models import ToolSpec

SPEC = {"name": "double_number", "description": "Double a number.",
        "parameters": [{"name": "x", "type": "number", "description": "the number"}],
        "returns": {"type": "number"}}
TESTS = ("from tool import double_number\n\n"
         + "".join(f"def test_{i}():\n    assert double_number({i}) == {2 * i}\n\n"
                   for i in range(3)))
REGRESSION = ("from tool import double_number\n\n\n"
              "def test_twenty_one():  # regression\n    assert double_number(21) == 42\n")
FIXED = "def double_number(x):\n    return 2 * x  # passes # fixed\n# returns 42\n"
REPAIRED = [["enrich", "plan", "retrieve", "decide", "execute", "reflect", "gate", "register",
             "execute", "answer"]]


def script(tmp_path, repairs: list[dict], answers=("42",)) -> str:
    # "fetch then plot" is a turn that runs no tool: its plan is refused before any step runs
    # (step 2 uses a step 3 the plan does not have).
    entries = [{"step": "plan", "request": "fetch then plot", "reply": {
                   "kind": "multi", "standalone_request": "fetch, then plot",
                   "steps": ["fetch", {"request": "plot",
                                       "inputs": {"data": {"from_step": 3}}}]}},
               {"step": "plan", "match": ".", "reply": {"kind": "single",
                                                         "standalone_request": "double 21"}},
               {"step": "args", "match": ".", "reply": {"arguments": {"x": 21}}},
               {"step": "answer", "match": ".", "replies": [{"answer": a} for a in answers]},
               {"step": "repair", "match": ".", "replies": repairs}]
    path = tmp_path / "script.json"
    path.write_text(json.dumps({"replies": entries}))
    return f"scripted:{path}"


def library_with(code: str, status: str = "verified") -> FakeLibrary:
    library = FakeLibrary({"double_number": 0.95})
    library.add(ToolSpec.model_validate(SPEC), code, status=status, tests=TESTS)
    return library


def run(model, library, sandbox, request="double 21", thread="t", saver=None,
        feedback=None, **settings):
    graph = build_graph().compile(checkpointer=saver or InMemorySaver())
    config = {"configurable": {"thread_id": thread}}
    route = []
    with services.use(library=library, sandbox=sandbox):
        for update in graph.stream({"request": request, "feedback": feedback or {}}, config,
                                   context=Context(model=model, sandbox_pool=0, **settings),
                                   stream_mode="updates"):
            route += list(update)
        return route, dict(graph.get_state(config).values)


def test_a_call_that_raises_is_repaired_into_v2_and_served_again(tmp_path):
    library = library_with("def double_number(x):\n    return x  # passes # raises\n")
    sandbox = FakeSandbox()
    repair = {"regression_test": REGRESSION, "code": FIXED, "notes": "double it"}
    route, state = run(script(tmp_path, [repair]), library, sandbox)
    assert [route] == REPAIRED
    assert library.get("double_number").version == 2
    assert library.get("double_number").tests.startswith(TESTS)  # the old suite, kept
    assert state["result"] == 42 and state["tool"] == {"name": "double_number", "version": 2,
                                                       "status": "verified"}
    # The regression test was run on v1 first (the proof), then the whole suite on v2.
    assert sandbox.verified == [library.get("double_number", 1).code, FIXED]
    assert "repaired into v2" in state["answer"]
    assert sandbox.calls == [("double_number", {"x": 21})] * 2  # the failed call, served again
    assert [e["success"] for e in library.executions] == [False, True]
    assert library.reflection_log[0]["kind"] == "repair"


def test_a_result_of_the_wrong_type_is_a_failure_in_use(tmp_path):
    library = library_with('def double_number(x):\n    return str(2 * x)  # passes\n'
                           '# returns "42"\n')
    repair = {"regression_test": REGRESSION, "code": FIXED}
    route, state = run(script(tmp_path, [repair]), library, FakeSandbox())
    assert [route] == REPAIRED and state["result"] == 42
    assert "the spec declares number" in library.executions[0]["error"]


def test_repairs_are_bounded_by_the_policy_and_a_refused_one_keeps_v1(tmp_path):
    library = library_with("def double_number(x):\n    return x  # passes # raises\n")
    unfixed = {"regression_test": REGRESSION, "code": "def double_number(x):\n    return x\n"}
    route, state = run(script(tmp_path, [unfixed]), library, FakeSandbox(), max_retries=2)
    assert route.count("reflect") == 2 and route.count("gate") == 2
    assert "register" not in route and route[-1] == "answer"
    assert library.get("double_number").version == 1
    assert "could not fix it: the fixed code did not pass" in state["answer"]
    assert "double_number v1 stays current" in state["answer"]


def test_no_retries_means_no_repair(tmp_path):
    library = library_with("def double_number(x):\n    return x  # passes # raises\n")
    route, state = run(script(tmp_path, []), library, FakeSandbox(), max_retries=0)
    assert route[-2:] == ["execute", "answer"]
    assert state["answer"] == ("Sorry, I could not complete this: double_number v1 failed: "
                               "ValueError: bad input.")
    assert state["error"] == "double_number v1 failed: ValueError: bad input."  # as any error


def test_a_sandbox_that_cannot_run_is_not_a_failure_in_use(tmp_path):
    library = library_with("def double_number(x):\n    return x  # unavailable\n")
    route, state = run(script(tmp_path, []), library, FakeSandbox())
    assert route[-2:] == ["execute", "answer"] and "reflect" not in route
    assert "the sandbox is unavailable" in state["error"] and not state.get("failure")


def test_a_regression_test_that_passes_on_v1_is_refused(tmp_path):
    library = library_with("def double_number(x):\n    return x  # passes # raises\n")
    weak = {"regression_test": REGRESSION.replace("  # regression", ""), "code": FIXED}
    route, state = run(script(tmp_path, [weak]), library, FakeSandbox())
    assert route[-3:] == ["execute", "reflect", "answer"]
    assert "does not fail on the current version v1" in state["answer"]
    assert library.get("double_number").version == 1


def test_a_replay_that_changes_a_past_output_refuses_the_repair(tmp_path):
    library = library_with("def double_number(x):\n    return x  # passes # raises\n")
    library.record_execution("double_number", 1, {"x": 1}, 2, True, request="double 1")
    changing = {"regression_test": REGRESSION,
                "code": "def double_number(x):\n    return 42  # passes # fixed\n# returns 42\n"}
    route, state = run(script(tmp_path, [changing]), library, FakeSandbox(), max_retries=1)
    assert route[-3:] == ["reflect", "gate", "answer"]
    assert 'changes the output of logged past executions: {"x": 1} gave 2 and now gives 42' \
        in state["answer"]
    assert library.get("double_number").version == 1


def test_a_thumbs_down_repairs_the_tool_that_gave_the_last_answer(tmp_path):
    library = library_with("def double_number(x):\n    return x  # passes\n# returns 21\n")
    repair = {"regression_test": REGRESSION, "code": FIXED}
    model = script(tmp_path, [repair], answers=("21", "42"))
    saver = InMemorySaver()
    first_route, first = run(model, library, FakeSandbox(), saver=saver, thread="s")
    assert first["result"] == 21 and "reflect" not in first_route
    route, state = run(model, library, FakeSandbox(), request="That answer was wrong",
                       saver=saver, thread="s", feedback={"note": "21 doubled is 42"})
    assert route == ["enrich", "feedback", "reflect", "gate", "register", "execute", "answer"]
    assert library.executions[0]["marked_wrong"] is True
    assert state["failure"] == {} and state["result"] == 42
    assert state["standalone_request"] == "double 21"
    assert library.reflection_log[0]["failing_tests"][0]["message"].endswith(
        "which the user marked wrong: 21 doubled is 42")
    _, later = run(model, library, FakeSandbox(), saver=saver, thread="s")
    assert later["failure"] == {} and later["feedback"] == {}  # the verdict is not kept


def test_a_thumbs_down_on_an_answer_no_tool_gave_says_so(tmp_path):
    library = library_with("def double_number(x):\n    return x  # passes\n# returns 21\n")
    model = script(tmp_path, [])
    route, state = run(model, library, FakeSandbox(), request="That answer was wrong.",
                       feedback={"note": ""})
    assert route == ["enrich", "feedback", "answer"]
    assert "the last answer did not come from a tool" in state["answer"]
    # A tool answered earlier in the session, but the last turn ran none: nothing is marked.
    saver = InMemorySaver()
    run(model, library, FakeSandbox(), saver=saver, thread="s")
    run(model, library, FakeSandbox(), request="fetch then plot", saver=saver, thread="s")
    route, state = run(model, library, FakeSandbox(), request="That answer was wrong.",
                       saver=saver, thread="s", feedback={"note": ""})
    assert route == ["enrich", "feedback", "answer"]
    assert library.executions[0]["marked_wrong"] is False


def test_the_drawing_shows_the_repair_loop():
    drawing = build_graph().compile().get_graph()
    conditional = {(e.source, e.target) for e in drawing.edges if e.conditional}
    assert {("execute", "reflect"), ("execute", "answer"), ("reflect", "verify"),
            ("reflect", "gate"), ("gate", "register"), ("gate", "reflect"), ("gate", "answer"),
            ("register", "execute"), ("enrich", "feedback"),
            ("feedback", "reflect")} <= conditional
