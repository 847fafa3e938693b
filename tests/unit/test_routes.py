"""Routing of the graph, compiled with an in-memory checkpointer and stand-in services.

No Docker, no PostgreSQL: the scripted model answers, ``FakeLibrary`` ranks and stores,
``FakeSandbox`` verifies by a marker. The same routes run against the real parts in
``tests/integration/test_pipeline.py``.
"""

from __future__ import annotations

import json

import pytest
from fakes import FakeLibrary, FakeSandbox
from langgraph.checkpoint.memory import InMemorySaver

from graph.agent import build_graph
from nodes.kit import services
from nodes.kit.context import Context
from tools_store.models import Parameter, ToolSpec

SPEC = {"name": "double_number", "description": "Double a number.",
        "parameters": [{"name": "x", "type": "number", "description": "the number"}],
        "returns": {"type": "number"}}
TESTS = ("from tool import double_number\n\n"
         + "".join(f"def test_{i}():\n    assert double_number({i}) == {2 * i}\n\n"
                   for i in range(3)))
GOOD = "def double_number(x):\n    return 2 * x  # passes\n"
BAD = "def double_number(x):\n    return x\n"


def script(tmp_path, *entries) -> str:
    path = tmp_path / "script.json"
    path.write_text(json.dumps({"replies": list(entries)}))
    return f"scripted:{path}"


def plan(request: str, standalone: str, kind: str = "single") -> dict:
    return {"step": "plan", "request": request,
            "reply": {"kind": kind, "standalone_request": standalone,
                      "steps": ["a", "b"] if kind == "multi" else []}}


def reply(step: str, value, match: str = ".") -> dict:
    return {"step": step, "match": match, "reply": value}


def synthesis(impls: list[str]) -> list[dict]:
    return [plan("double 21", "double the number 21"), reply("spec", SPEC),
            reply("tests", {"tests": TESTS}), reply("impl", {"code": impls[0]}),
            {"step": "reflect", "match": ".", "replies": [{"code": c} for c in impls[1:]]
             or [{"code": impls[0]}]},
            reply("args", {"arguments": {"x": 21}}), reply("answer", {"answer": "42"})]


def run(model: str, request: str, library: FakeLibrary, sandbox: FakeSandbox,
        thread: str = "t", checkpointer=None, **settings) -> tuple[list[str], dict]:
    graph = build_graph().compile(checkpointer=checkpointer or InMemorySaver())
    config = {"configurable": {"thread_id": thread}}
    context = Context(model=model, sandbox_pool=0, **settings)
    route = []
    with services.use(library=library, sandbox=sandbox):
        for update in graph.stream({"request": request}, config, context=context,
                                   stream_mode="updates"):
            route += list(update)
        return route, dict(graph.get_state(config).values)


def test_synthesis_route_registers_and_serves(tmp_path):
    library, sandbox = FakeLibrary(), FakeSandbox({"double_number": 42})
    route, state = run(script(tmp_path, *synthesis([GOOD])), "double 21", library, sandbox)
    assert route == ["enrich", "plan", "retrieve", "decide", "spec", "tests", "impl", "verify",
                     "register", "execute", "answer"]
    assert library.tools["double_number"].status == "verified"
    assert sandbox.calls == [("double_number", {"x": 21})]
    assert state["result"] == 42 and state["answer"] == "42"
    assert "route" not in state and "events" not in state  # display data is in the stream


def test_reflection_loop_is_bounded_by_the_policy_and_registers_experimental(tmp_path):
    library, sandbox = FakeLibrary(), FakeSandbox({"double_number": 21})
    route, state = run(script(tmp_path, *synthesis([BAD, BAD, BAD])), "double 21", library,
                       sandbox, max_retries=1)
    assert route.count("verify") == 2 and route.count("reflect") == 1
    assert library.tools["double_number"].status == "experimental"
    assert state["answer"].startswith("Warning: double_number is experimental")


def test_a_passing_reflection_registers_verified(tmp_path):
    library, sandbox = FakeLibrary(), FakeSandbox({"double_number": 42})
    route, _ = run(script(tmp_path, *synthesis([BAD, GOOD])), "double 21", library, sandbox)
    assert route.count("verify") == 2 and library.tools["double_number"].status == "verified"
    assert [(r["name"], r["attempt"]) for r in library.reflection_log] == [("double_number", 1)]


def test_an_infrastructure_fault_ends_the_turn_without_reflection_or_registration(tmp_path):
    library, sandbox = FakeLibrary(), FakeSandbox({"double_number": 42})
    infra = GOOD.replace("# passes", "# infra")
    route, state = run(script(tmp_path, *synthesis([infra, GOOD])), "double 21", library,
                       sandbox)
    assert route[-3:] == ["impl", "verify", "answer"]
    assert "reflect" not in route and library.tools == {} and library.reflection_log == []
    assert "outside it" in state["error"] and state["answer"].startswith("Sorry")


def test_a_name_registered_meanwhile_serves_the_request(tmp_path):
    class Racing(FakeLibrary):
        def register(self, spec, *args, **kwargs):
            self.add(spec, GOOD, status="verified")  # another session was faster
            return super().register(spec, *args, **kwargs)

    library, sandbox = Racing(), FakeSandbox({"double_number": 42})
    model, saver = script(tmp_path, *synthesis([GOOD])), InMemorySaver()
    route, state = run(model, "double 21", library, sandbox, checkpointer=saver)
    assert route[-3:] == ["register", "execute", "answer"] and not state["error"]
    assert state["result"] == 42 and "another session registered double_number" in \
        state["answer"]
    library.similarities["double_number"] = 0.95
    _, later = run(model, "double 21", library, sandbox, checkpointer=saver)
    assert later["decision"] == "reuse" and "Note:" not in later["answer"]  # per turn


def test_reuse_route_runs_the_tool_without_engineering(tmp_path):
    library = FakeLibrary({"double_number": 0.95})
    library.add(ToolSpec.model_validate(SPEC), GOOD)
    sandbox = FakeSandbox({"double_number": 42})
    route, state = run(script(tmp_path, *synthesis([GOOD])), "double 21", library, sandbox)
    assert route == ["enrich", "plan", "retrieve", "decide", "execute", "answer"]
    assert state["decision"] == "reuse" and state["tool"]["name"] == "double_number"


@pytest.mark.parametrize("serves,tail", [(True, ["decide", "execute", "answer"]),
                                         (False, ["decide", "spec", "tests", "impl", "verify",
                                                  "register", "execute", "answer"])])
def test_the_verify_band_asks_the_judge(tmp_path, serves, tail):
    library = FakeLibrary({"double_number": 0.70})  # between verify (0.4) and reuse (0.9)
    library.add(ToolSpec.model_validate(SPEC), GOOD)
    library.similarities["times_two"] = 0.0
    spec = {**SPEC, "name": "times_two"}
    entries = synthesis([GOOD.replace("double_number", "times_two")])
    entries[1] = reply("spec", spec)
    entries[2] = reply("tests", {"tests": TESTS.replace("double_number", "times_two")})
    entries.append(reply("judge", {"serves": serves, "reason": "why"}))
    sandbox = FakeSandbox({"double_number": 42, "times_two": 42})  # numbers, as declared
    route, state = run(script(tmp_path, *entries), "double 21", library, sandbox)
    assert route[3:] == tail and state["judge"]["serves"] is serves


def test_an_unknown_request_to_the_scripted_model_says_what_it_knows(tmp_path):
    model = script(tmp_path, *synthesis([GOOD]))
    route, state = run(model, "convert 212 fahrenheit to celsius", FakeLibrary(),
                       FakeSandbox())
    assert route == ["enrich", "plan", "answer"]
    assert "only knows these requests: double 21" in state["error"]


@pytest.mark.parametrize("request_text,message", [("   ", "empty"),
                                                  ("x" * 4001, "longer than 4000")])
def test_unusable_requests_end_at_once(tmp_path, request_text, message):
    route, state = run(script(tmp_path, *synthesis([GOOD])), request_text, FakeLibrary(),
                       FakeSandbox())
    assert route == ["enrich", "answer"] and message in state["error"]


def test_per_turn_fields_reset_between_turns_of_one_session(tmp_path):
    library = FakeLibrary()
    sandbox = FakeSandbox({"double_number": 42})
    model = script(tmp_path, *synthesis([BAD, GOOD]))
    saver = InMemorySaver()
    _, first = run(model, "double 21", library, sandbox, thread="s", checkpointer=saver)
    assert first["attempts"] == 2 and "reflect" in first["usage"]
    library.similarities["double_number"] = 0.95
    _, second = run(model, "double 21", library, sandbox, thread="s", checkpointer=saver)
    assert second["attempts"] == 0 and set(second["usage"]) == {"plan", "args", "answer"}
    assert second["spec"] == {} and len(second["messages"]) == 4


def test_policy_is_resolved_once_with_the_runs_overrides(tmp_path):
    library = FakeLibrary()
    library.stored_policy["min_tests"] = 5
    _, state = run(script(tmp_path, *synthesis([GOOD])), "double 21", library,
                   FakeSandbox(), max_retries=0, reuse_threshold=0.95)
    assert state["policy"]["min_tests"] == 5 and state["policy"]["max_retries"] == 0
    assert state["policy"]["reuse"] == 0.95 and state["policy"]["verify"] == 0.4
    # min_tests 5 > the 3 tests written: the tests step refuses the suite twice.
    assert "at least 5 needed" in state["error"]


def test_parameters_are_typed_in_the_signature():
    spec = ToolSpec(name="scale", description="Scale.", parameters=[
        Parameter(name="x", type="number"), Parameter(name="k", type="integer",
                                                       required=False, default=2)])
    assert spec.signature() == "def scale(x: float, k: int = 2)"
