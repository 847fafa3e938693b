"""Routes of the evidence rule, the new-tool flag and the cache through the in-memory graph."""

from __future__ import annotations

from fakes import FakeLibrary, FakeSandbox
from test_routes import GOOD, SPEC, TESTS, reply, run, script, synthesis

from tools_store.models import EvidenceHit, ToolSpec

OTHER = {**SPEC, "name": "times_two"}


def near_miss_library(similarity: float = 0.7) -> FakeLibrary:
    library = FakeLibrary({"double_number": similarity})
    library.add(ToolSpec.model_validate(SPEC), GOOD)
    return library


def synthesis_of_times_two() -> list[dict]:
    entries = synthesis([GOOD.replace("double_number", "times_two")])
    entries[1] = reply("spec", OTHER)
    entries[2] = reply("tests", {"tests": TESTS.replace("double_number", "times_two")})
    return entries


def test_a_judged_no_becomes_strong_negative_evidence_and_the_agent_synthesizes(tmp_path):
    library = near_miss_library()
    entries = synthesis_of_times_two() + [reply("judge", {"serves": False,
                                                          "reason": "other operation"})]
    route, state = run(script(tmp_path, *entries), "double 21", library,
                       FakeSandbox({"times_two": 42}))
    assert "spec" in route and state["judge"]["candidates"] == [
        {"name": "double_number", "version": 1}]
    assert [(e.tool, e.serves, e.source, e.strength) for e in library.recorded] == [
        ("double_number", False, "judge", "strong")]


def test_a_near_miss_refused_on_evidence_needs_no_judge(tmp_path):
    library = near_miss_library()
    library.evidence = [EvidenceHit(id=1, request="double the number 7", tool="double_number",
                                    version=1, serves=False, source="judge",
                                    strength="strong", similarity=0.95, same_request=True)]
    # No judge reply is recorded: a judge call would end the turn with an error.
    route, state = run(script(tmp_path, *synthesis_of_times_two()), "double 21", library,
                       FakeSandbox({"times_two": 42}))
    assert "judge" not in state["usage"] and not state["error"]
    assert route[3:5] == ["decide", "spec"] and state["tool"]["name"] == "times_two"
    assert [(e.tool, e.source) for e in library.recorded] == [("times_two", "execution")]


def test_a_judged_yes_that_runs_is_strong_positive_evidence(tmp_path):
    library = near_miss_library()
    entries = synthesis([GOOD]) + [reply("judge", {"serves": True, "reason": "same"})]
    route, state = run(script(tmp_path, *entries), "double 21", library,
                       FakeSandbox({"double_number": 42}))
    assert route[3:] == ["decide", "execute", "answer"] and state["served"] is True
    assert [(e.tool, e.serves, e.source) for e in library.recorded] == [
        ("double_number", True, "judge")]


def test_the_judge_may_pick_the_second_candidate(tmp_path):
    library = near_miss_library()
    library.add(ToolSpec.model_validate(OTHER), GOOD.replace("double_number", "times_two"))
    library.similarities["times_two"] = 0.6
    entries = synthesis([GOOD]) + [reply("judge", {"serves": True, "tool": "times_two"})]
    entries[5] = reply("args", {"arguments": {"x": 21}})
    _, state = run(script(tmp_path, *entries), "double 21", library,
                   FakeSandbox({"times_two": 42}))
    assert state["tool"]["name"] == "times_two" and state["result"] == 42


def test_a_user_who_insists_gets_a_new_tool_even_next_to_an_identical_one(tmp_path):
    library = near_miss_library(similarity=0.99)
    route, state = run(script(tmp_path, *synthesis_of_times_two()), "double 21", library,
                       FakeSandbox({"times_two": 42}), new_tool=True)
    assert "spec" in route and state["new_tool"] is True
    assert set(library.tools) == {"double_number", "times_two"}


def test_create_a_tool_reuses_only_the_same_tool(tmp_path):
    library = near_miss_library(similarity=0.99)
    entries = [{"step": "plan", "request": "create a tool that doubles 21",
                "reply": {"kind": "single", "standalone_request": "double the number 21"}},
               *synthesis([GOOD])[1:]]
    route, state = run(script(tmp_path, *entries), "create a tool that doubles 21", library,
                       FakeSandbox())
    assert route[-2:] == ["decide", "answer"] and "already exists" in state["answer"]


def cache_run(tmp_path, deterministic: bool, results: list[int]):
    spec = ToolSpec.model_validate({**SPEC, "deterministic": deterministic})
    library = FakeLibrary({"double_number": 0.99})
    library.add(spec, GOOD)
    sandbox = FakeSandbox({"double_number": 42})
    states = []
    for value in results:
        sandbox.results["double_number"] = value
        states.append(run(script(tmp_path, *synthesis([GOOD])), "double 21", library,
                          sandbox)[1])
    return sandbox, states


def test_a_deterministic_tool_is_served_from_the_cache_and_the_answer_says_so(tmp_path):
    sandbox, (first, second) = cache_run(tmp_path, True, [42, 43])
    assert len(sandbox.calls) == 1 and second["result"] == 42 and second["cached"] is True
    assert "Served from the cache" in second["answer"]
    assert "Served from the cache" not in first["answer"]


def test_a_tool_not_known_to_be_deterministic_is_never_cached(tmp_path):
    sandbox, (_, second) = cache_run(tmp_path, False, [42, 43])
    assert len(sandbox.calls) == 2 and second["result"] == 43 and second["cached"] is False


def test_the_plan_notices_a_user_who_insists_on_a_new_tool(tmp_path):
    library = near_miss_library(similarity=0.99)
    entries = synthesis_of_times_two()
    entries[0] = {"step": "plan", "request": "double 21",
                  "reply": {"kind": "single", "standalone_request": "double the number 21",
                            "new_tool": True}}
    route, state = run(script(tmp_path, *entries), "double 21", library,
                       FakeSandbox({"times_two": 42}))
    assert state["new_tool"] is True and "spec" in route and "times_two" in library.tools
