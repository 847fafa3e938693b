"""Routing of multi-step plans, session data and learned workflows, in memory.

The loop after ``execute`` back to ``retrieve``, plans refused before anything runs, a step
failing half-way, a recorded workflow run without a planning reply. The same paths run
against the real parts in ``tests/integration/test_workflows.py``.
"""

from __future__ import annotations

import pytest
from fakes import FakeLibrary, FakeSandbox
from langgraph.checkpoint.memory import InMemorySaver
from test_routes import reply, run, script

from graph.agent import after_answer, after_execute
from nodes.kit.node import history_text
from tools_store.models import ToolSpec

TO_C = {"name": "fahrenheit_to_celsius", "description": "Convert Fahrenheit to Celsius.",
        "parameters": [{"name": "fahrenheit", "type": "number"}], "returns": {"type": "number"}}
TO_K = {"name": "celsius_to_kelvin", "description": "Convert Celsius to Kelvin.",
        "parameters": [{"name": "celsius", "type": "number"}], "returns": {"type": "number"}}
REQUEST = "convert 100 F to celsius and then to kelvin"
STEPS = [{"request": "convert 100 F to celsius"},
         {"request": "convert the celsius temperature to kelvin",
          "inputs": {"celsius": {"from_step": 1}}}]
LOOP = ["enrich", "plan", "retrieve", "decide", "execute", "retrieve", "decide", "execute",
        "answer"]


def multi(request: str, steps: list[dict]) -> dict:
    return {"step": "plan", "request": request,
            "reply": {"kind": "multi", "standalone_request": request, "steps": steps}}


def library_with_both() -> FakeLibrary:
    library = FakeLibrary({"fahrenheit_to_celsius": {"100 f": 0.95},
                           "celsius_to_kelvin": {"kelvin": 0.95}})
    library.add(ToolSpec.model_validate(TO_C))
    library.add(ToolSpec.model_validate(TO_K))
    return library


def two_step_script(tmp_path, steps=STEPS) -> str:
    return script(tmp_path, multi(REQUEST, steps), reply("args", {"arguments": {
        "fahrenheit": 100}}, match="100"), reply("answer", {"answer": "310.93 K"}))


def test_two_steps_loop_back_to_retrieve_and_pass_the_value_on(tmp_path):
    library, sandbox = library_with_both(), FakeSandbox({"fahrenheit_to_celsius": 37.78,
                                                         "celsius_to_kelvin": 310.93})
    route, state = run(two_step_script(tmp_path), REQUEST, library, sandbox)
    assert route == LOOP + ["learn"]
    assert sandbox.calls == [("fahrenheit_to_celsius", {"fahrenheit": 100}),
                             ("celsius_to_kelvin", {"celsius": 37.78})]
    assert state["usage"]["args"]["calls"] == 1  # step 2's input was bound, not extracted
    assert [r["result"] for r in state["step_results"]] == [37.78, 310.93]
    assert state["result"] == 310.93 and state["answer"] == "310.93 K"
    names = [i["name"] for i in library.sessions.items("t")]
    assert names == ["result_t1_s2", "result_t1_s1"]
    workflow = library.workflows.get(1)
    assert [s["tool"] for s in workflow["steps"]] == ["fahrenheit_to_celsius",
                                                      "celsius_to_kelvin"]
    assert workflow["steps"][1]["bindings"] == {"celsius": {"from_step": 1}}
    assert [p["name"] for p in workflow["params"]] == ["fahrenheit"]
    assert library.workflows.all_runs[0]["arguments"] == {"fahrenheit": 100}


def test_a_file_written_by_one_step_is_in_the_next_steps_working_directory(tmp_path):
    library = FakeLibrary({"write_table": {"write a": 0.95}, "sum_column": {"sum the": 0.95}})
    # Both return integers: a result of another type than declared is a failure in use.
    library.add(ToolSpec(name="write_table", description="Write a table.",
                         parameters=[{"name": "n", "type": "integer"}],
                         returns={"type": "integer"}))
    library.add(ToolSpec(name="sum_column", description="Sum a column of a CSV file.",
                         parameters=[{"name": "path", "type": "string"}],
                         returns={"type": "integer"}))
    sandbox = FakeSandbox({"write_table": 3, "sum_column": 6},
                          files={"write_table": {"table.csv": b"x\n1\n2\n3\n"}})
    steps = [{"request": "write a table of 3 rows", "outputs": ["table.csv"]},
             {"request": "sum the column of table.csv",
              "inputs": {"table.csv": {"from_step": 1}}}]
    model = script(tmp_path, multi("table then sum", steps),
                   reply("args", {"arguments": {"n": 3}}, match="table of"),
                   reply("args", {"arguments": {"path": "table.csv"}}, match="sum the"),
                   reply("answer", {"answer": "6"}))
    route, state = run(model, "table then sum", library, sandbox)
    assert route == LOOP + ["learn"] and state["result"] == 6, state["error"]
    assert sandbox.given[1] == {"table.csv": b"x\n1\n2\n3\n"}
    item = library.sessions.get("t", "table.csv")
    assert item["kind"] == "table" and item["shape"].startswith("3 rows x 1 columns")
    binding = library.workflows.get(1)["steps"][1]["bindings"]["path"]
    assert binding == {"file_from_step": 1, "output": "table.csv", "as": "table.csv"}


@pytest.mark.parametrize("steps,message", [
    ([{"request": "a"}, {"request": "b", "inputs": {"x": {"from_step": 3}}}],
     "step 2 uses the output of step 3, but the plan has 2 steps"),
    ([{"request": "a", "inputs": {"x": {"from_step": 2}}},
      {"request": "b", "inputs": {"y": {"from_step": 1}}}],
     "steps 1 -> 2 -> 1 depend on each other (a cycle)"),
    ([{"request": "a", "inputs": {"x": {"from_step": 2}}}, {"request": "b"}],
     "step 1 uses the output of step 2, which runs after it"),
    ([{"request": f"step {i}"} for i in range(6)],
     "the plan has 6 steps; at most 5 are allowed"),
    ([{"request": "a", "inputs": {"data": {"item": "sales.csv"}}}, {"request": "b"}],
     "step 1 uses session data 'sales.csv', which does not exist"),
])
def test_bad_plans_are_refused_before_anything_runs(tmp_path, steps, message):
    sandbox = FakeSandbox()
    route, state = run(script(tmp_path, multi("do it", steps)), "do it", library_with_both(),
                       sandbox)
    assert route == ["enrich", "plan", "answer"] and sandbox.calls == []
    assert message in state["error"], state["error"]
    assert state["answer"].startswith("Sorry, I could not complete this: plan failed: the "
                                      "plan cannot run: ")


def test_a_step_failing_half_way_stops_the_plan_and_keeps_what_ran(tmp_path):
    library = library_with_both()
    sandbox = FakeSandbox({"fahrenheit_to_celsius": 37.78},
                          failing={"celsius_to_kelvin": "below absolute zero"})
    # No retries: the failure in use is not repaired, so the plan stops at step 2.
    route, state = run(two_step_script(tmp_path), REQUEST, library, sandbox, max_retries=0)
    assert route == LOOP  # no learning from a failed plan
    assert ("step 2 of 2 ('convert the celsius temperature to kelvin') failed: "
            "celsius_to_kelvin v1 failed: ValueError: below absolute zero") in state["answer"]
    assert "step 1 (fahrenheit_to_celsius): result_t1_s1" in state["answer"]
    assert library.sessions.get("t", "result_t1_s1")["value"] == 37.78
    assert library.workflows.rows == {}


def test_a_step_failing_in_use_is_repaired_and_the_plan_goes_on(tmp_path):
    library = library_with_both()
    library.tools["celsius_to_kelvin"].code = "def celsius_to_kelvin(celsius):  # raises\n"
    library.tools["celsius_to_kelvin"].tests = "from tool import celsius_to_kelvin\n"
    regression = ("from tool import celsius_to_kelvin\n\n\ndef test_body():  # regression\n"
                  "    assert celsius_to_kelvin(37.78) == 310.93\n")
    fixed = ("def celsius_to_kelvin(celsius):\n    return celsius + 273.15  # passes # fixed\n"
             "# returns 310.93\n")
    model = script(tmp_path, multi(REQUEST, STEPS), reply("args", {"arguments": {
        "fahrenheit": 100}}, match="100"), reply("answer", {"answer": "310.93 K"}),
        reply("repair", {"regression_test": regression, "code": fixed}, match="kelvin"))
    sandbox = FakeSandbox({"fahrenheit_to_celsius": 37.78})
    route, state = run(model, REQUEST, library, sandbox)
    # Step 2 fails in use, is repaired into v2, which reruns the step with the same input.
    assert route == LOOP[:-1] + ["reflect", "gate", "register", "execute", "answer", "learn"]
    assert sandbox.calls[1:] == [("celsius_to_kelvin", {"celsius": 37.78})] * 2
    assert library.get("celsius_to_kelvin").version == 2
    assert [r["result"] for r in state["step_results"]] == [37.78, 310.93]
    assert state["answer"].startswith("310.93 K") and "repaired into v2" in state["answer"]
    steps = library.workflows.get(1)["steps"]
    assert [(s["tool"], s["version"]) for s in steps] == [("fahrenheit_to_celsius", 1),
                                                          ("celsius_to_kelvin", 2)]


def test_the_next_step_engineers_its_own_tool_with_the_per_step_fields_reset(tmp_path):
    library = FakeLibrary({"fahrenheit_to_celsius": {"100 f": 0.95}})
    library.add(ToolSpec.model_validate(TO_C))
    tests = "from tool import celsius_to_kelvin\n\n" + "".join(
        f"def test_{i}():\n    assert celsius_to_kelvin({i}) == {i} + 273.15\n\n"
        for i in range(3))
    model = script(tmp_path, multi(REQUEST, STEPS), reply("spec", TO_K),
                   reply("tests", {"tests": tests}),
                   reply("impl", {"code": "def celsius_to_kelvin(celsius):\n"
                                          "    return celsius + 273.15  # passes\n"}),
                   reply("args", {"arguments": {"fahrenheit": 100}}, match="100"),
                   reply("answer", {"answer": "310.93 K"}))
    sandbox = FakeSandbox({"fahrenheit_to_celsius": 37.78, "celsius_to_kelvin": 310.93})
    route, state = run(model, REQUEST, library, sandbox)
    assert route == LOOP[:7] + ["spec", "tests", "impl", "verify", "register", "execute",
                                "answer", "learn"]
    assert state["tool"]["name"] == "celsius_to_kelvin" and state["attempts"] == 1
    assert state["standalone_request"] == "convert the celsius temperature to kelvin"
    assert state["plan"]["standalone_request"] == REQUEST


def test_a_proven_workflow_runs_again_without_a_planning_reply(tmp_path):
    library = library_with_both()
    sandbox = FakeSandbox({"fahrenheit_to_celsius": 37.78, "celsius_to_kelvin": 310.93})
    model, saver = two_step_script(tmp_path), InMemorySaver()
    for _ in range(2):  # two planned runs of the same sequence: one workflow, two runs
        run(model, REQUEST, library, sandbox, checkpointer=saver)
    assert library.workflows.get(1)["successes"] == 2 and len(library.workflows.rows) == 1
    library.workflows.similarity = 0.9
    route, state = run(model, REQUEST, library, sandbox, checkpointer=saver)
    assert route == LOOP + ["learn"] and "plan" not in state["usage"]
    assert state["workflow"]["id"] == 1 and state["plan"]["kind"] == "workflow"
    assert sandbox.calls[-2:] == [("fahrenheit_to_celsius", {"fahrenheit": 100}),
                                  ("celsius_to_kelvin", {"celsius": 37.78})]
    assert library.workflows.get(1)["uses"] == 3 and library.workflows.all_runs[-1]["reused"]


def test_a_workflow_without_enough_evidence_is_planned_again(tmp_path):
    library = library_with_both()
    library.workflows.similarity = 0.99
    sandbox = FakeSandbox({"fahrenheit_to_celsius": 37.78, "celsius_to_kelvin": 310.93})
    model, saver = two_step_script(tmp_path), InMemorySaver()
    run(model, REQUEST, library, sandbox, checkpointer=saver)
    _, state = run(model, REQUEST, library, sandbox, checkpointer=saver)
    assert state["usage"]["plan"]["calls"] == 1 and not state["workflow"]


def test_a_later_turn_uses_a_stored_value_by_name(tmp_path):
    library = library_with_both()
    sandbox = FakeSandbox({"fahrenheit_to_celsius": 37.78, "celsius_to_kelvin": 310.93})
    saver = InMemorySaver()
    later = {"step": "plan", "request": "now convert that result to kelvin", "reply": {
        "kind": "single", "standalone_request": "convert 37.78 celsius to kelvin", "steps": [
            {"request": "convert 37.78 celsius to kelvin",
             "inputs": {"celsius": {"item": "result_t1"}}}]}}
    model = script(tmp_path, later, {"step": "plan", "request": "100 F to celsius", "reply": {
        "kind": "single", "standalone_request": "convert 100 F to celsius"}},
        reply("args", {"arguments": {"fahrenheit": 100}}, match="100"),
        reply("answer", {"answer": "done"}))
    run(model, "100 F to celsius", library, sandbox, thread="s", checkpointer=saver)
    route, state = run(model, "now convert that result to kelvin", library, sandbox,
                       thread="s", checkpointer=saver)
    assert route == ["enrich", "plan", "retrieve", "decide", "execute", "answer"]
    assert state["turn"] == 2 and sandbox.calls[-1] == ("celsius_to_kelvin", {"celsius": 37.78})
    assert "- result_t1: value, number; turn 1; = 37.78" in history_text(state)
    assert [i["name"] for i in library.sessions.items("s")] == ["result_t2", "result_t1"]


def test_the_routers_after_execute_and_answer():
    steps = [{"request": "a"}, {"request": "b"}]
    assert after_execute({"steps": steps, "step": 1}) == "retrieve"
    assert after_execute({"steps": steps, "step": 2}) == "answer"
    assert after_execute({"steps": steps, "step": 1, "error": "boom"}) == "answer"
    assert after_execute({"steps": steps[:1], "step": 1}) == "answer"
    assert after_answer({"steps": steps, "step": 2}) == "learn"
    assert after_answer({"steps": steps, "error": "boom"}) == "__end__"
    assert after_answer({"steps": steps[:1]}) == "__end__"
    assert after_answer({"steps": steps[:1], "workflow": {"id": 1}, "error": "x"}) == "learn"


def test_a_failure_while_learning_does_not_fail_the_answered_turn(tmp_path):
    from tools_store.errors import LibraryError

    library = library_with_both()

    def broken(*args, **kwargs):
        raise LibraryError("the database went away")

    library.workflows.record = broken
    sandbox = FakeSandbox({"fahrenheit_to_celsius": 37.78, "celsius_to_kelvin": 310.93})
    route, state = run(two_step_script(tmp_path), REQUEST, library, sandbox)
    assert route == LOOP + ["learn"]
    assert not state["error"] and state["answer"] == "310.93 K"
