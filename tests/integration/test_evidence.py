"""Evidence, the reuse rule, feedback and the execution cache: the scripted model against the
real PostgreSQL and the real Docker sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from test_pipeline import ROOT, SPEC, library_of, make_agent, write_script

__all__ = ["make_agent"]  # the fixture, shared with test_pipeline

TRIPLE_SPEC = {"name": "triple_number", "description": "Triple a number.",
               "parameters": [{"name": "x", "type": "number", "description": "the number"}],
               "returns": {"type": "number"}, "examples": ["triple the number 40"]}
ADD_SPEC = {**TRIPLE_SPEC, "name": "add_two", "description": "Add two to a number.",
            "examples": []}


def tool_replies(match: str, spec: dict, body: str) -> list[dict]:
    """Replies that build ``spec`` for requests matching ``match``: spec, tests, impl.

    ``body`` is the function's expression in ``x``; the tests check it on three values.
    """
    name = spec["name"]
    tests = f"from tool import {name}\n\n" + "".join(
        f"def test_{i}():\n    assert {name}({x}) == {eval(body.format(x=x))}\n\n"
        for i, x in enumerate((2, 0, -1)))
    code = f"def {name}(x):\n    return {body.format(x='x')}\n"
    return [{"step": "spec", "match": match, "reply": spec},
            {"step": "tests", "match": match, "reply": {"tests": tests}},
            {"step": "impl", "match": match, "reply": {"code": code}}]


def plans(*requests: str) -> list[dict]:
    return [{"step": "plan", "request": r, "reply": {"kind": "single",
                                                     "standalone_request": r}}
            for r in requests]


def common(*requests: str) -> list[dict]:
    """Plans, the double_number tool, arguments from the request's number, an answer."""
    args = [{"step": "args", "match": rf"\b{n}\b", "reply": {"arguments": {"x": n}}}
            for n in (21, 8, 13, 40)]
    return [*plans(*requests), *tool_replies("(?i)double", SPEC, "2 * {x}"), *args,
            {"step": "answer", "match": ".", "reply": {"answer": "done"}}]


def judge(request: str, serves: bool, reason: str) -> dict:
    return {"step": "judge", "request": request, "reply": {"serves": serves, "reason": reason}}


def decide_message(state: dict) -> str:
    return next(e["message"] for e in state["events"] if e["step"] == "decide")


def test_a_near_miss_is_judged_once_then_refused_on_evidence(make_agent, tmp_path):
    replies = common("double the number 21", "triple the number 21", "triple the number 40")
    replies += tool_replies("(?i)triple", TRIPLE_SPEC, "3 * {x}")
    replies.append(judge("triple the number 21", False, "tripling is not doubling"))
    agent = make_agent(write_script(tmp_path, replies))
    assert agent.ask("double the number 21")["result"] == 42
    # The near miss goes to the judge, which says no: the agent synthesizes.
    first = agent.ask("triple the number 21")
    assert first["judge"]["serves"] is False and first["usage"]["judge"]["calls"] == 1
    assert "spec" in first["route"] and first["tool"]["name"] == "triple_number"
    assert first["result"] == 63
    rows = library_of(agent).evidence("double_number")
    assert [(r["verdict"], r["source"], r["strength"]) for r in rows] == [
        ("does-not-serve", "judge", "strong"), ("serves", "execution", "weak")]
    # The same near miss with another value: refused without a model call.
    second = agent.ask("triple the number 40")
    assert "judge" not in second["usage"] and second["result"] == 120
    assert second["decision"] == "reuse" and second["tool"]["name"] == "triple_number"
    assert "refused on evidence: double_number" in decide_message(second)


def test_a_served_paraphrase_is_later_reused_without_a_judge(make_agent, tmp_path):
    replies = common("double the number 21", "what is 8 times two", "what is 13 times two")
    replies.append(judge("what is 8 times two", True, "doubling is times two"))
    agent = make_agent(write_script(tmp_path, replies))
    agent.ask("double the number 21")
    judged = agent.ask("what is 8 times two")
    assert judged["usage"]["judge"]["calls"] == 1 and judged["result"] == 16
    # The script has no verdict for this request: a judge call would end the turn in error.
    again = agent.ask("what is 13 times two")
    assert not again["error"] and "judge" not in again["usage"] and again["result"] == 26
    assert "judge confirmed double_number on the same request" in decide_message(again)
    sources = [(r["source"], r["verdict"]) for r in library_of(agent).evidence("double_number")]
    assert ("judge", "serves") in sources and ("execution", "serves") in sources


def test_a_user_marking_an_answer_wrong_turns_into_negative_evidence(make_agent, tmp_path):
    replies = common("double the number 21", "what is 8 times two", "what is 13 times two")
    replies.append(judge("what is 8 times two", True, "doubling is times two"))
    replies += tool_replies("(?i)times two", ADD_SPEC, "{x} + 2")
    agent = make_agent(write_script(tmp_path, replies))
    agent.ask("double the number 21")
    agent.ask("what is 8 times two", "wrong-session")
    run = subprocess.run([sys.executable, "-m", "cli", "feedback", "wrong-session", "--wrong",
                          "I meant add two", "--no-repair", "--json"], cwd=ROOT,
                         capture_output=True,
                         text=True, timeout=300,
                         env={**os.environ, "SEA_LIBRARY_SCHEMA": agent.context.library_schema})
    assert run.returncode == 0, run.stderr[-2000:]
    verdict = json.loads(run.stdout)
    assert (verdict["tool"], verdict["serves"], verdict["source"], verdict["strength"]) == (
        "double_number", False, "user", "strong")
    rows = library_of(agent).evidence("double_number")
    judge_rows = [r for r in rows if r["source"] == "judge"]
    assert judge_rows and all(r["retracted"] for r in judge_rows)
    # The same request again: the tool is refused without a judge call, a new one is built.
    again = agent.ask("what is 13 times two")
    assert "judge" not in again["usage"] and "spec" in again["route"]
    assert again["tool"]["name"] == "add_two" and again["result"] == 15


def test_a_user_who_insists_gets_a_new_tool_under_a_new_name(make_agent, tmp_path):
    first = tool_replies("", SPEC, "2 * {x}")
    second = tool_replies("", {**SPEC, "name": "double_value"}, "2 * {x}")
    # The second turn's spec first offers the taken name again, then a new one.
    steps = [{"step": a["step"], "match": "", "replies": [a["reply"]] + (
        [a["reply"]] if a["step"] == "spec" else []) + [b["reply"]]}
        for a, b in zip(first, second, strict=True)]
    replies = [*plans("double the number 21"), *steps, *common()[-5:]]
    agent = make_agent(write_script(tmp_path, replies))
    agent.ask("double the number 21")
    state = agent.ask("double the number 21", new_tool=True)
    assert state["new_tool"] and "judge" not in state["usage"] and "spec" in state["route"]
    assert state["tool"] == {"name": "double_value", "version": 1, "status": "verified"}
    assert state["result"] == 42 and state["usage"]["spec"]["calls"] == 2
    assert len(library_of(agent).versions("double_number")) == 1


def test_feedback_on_a_session_without_a_tool_run_is_a_clear_error(make_agent):
    agent = make_agent()
    with pytest.raises(Exception, match="has no tool run"):
        library_of(agent).feedback("no-such-session", serves=False)


STAMP = ("import time\n\ndef stamp_number(x):\n    return x + (time.time_ns() % 999983) / 1e9"
         " + {offset}\n")
STAMP_TESTS = ("from tool import stamp_number\n\n"
               + "".join(f"def test_{i}():\n    assert {i} <= stamp_number({i}) < {i} + 1\n\n"
                         for i in range(3)))


def stamp_agent(make_agent, tmp_path, deterministic: bool):
    spec = {"name": "stamp_number", "description": "Stamp a number.",
            "parameters": [{"name": "x", "type": "number", "description": "the number"}],
            "returns": {"type": "number"}, "examples": ["stamp the number 5"],
            "deterministic": deterministic}
    replies = [*plans("stamp the number 5"), {"step": "spec", "match": "", "reply": spec},
               {"step": "tests", "match": "", "reply": {"tests": STAMP_TESTS}},
               {"step": "impl", "match": "", "reply": {"code": STAMP.format(offset=0)}},
               {"step": "args", "match": "", "reply": {"arguments": {"x": 5}}},
               {"step": "answer", "match": "", "reply": {"answer": "stamped"}}]
    agent = make_agent(write_script(tmp_path, replies))
    # A clock-reading tool cannot have a suite that kills its mutants; these tests are about
    # the cache, so the mutation gate is off for them.
    library_of(agent).set_policy({"max_mutants": 0}, "tests of the cache: no mutation gate")
    return agent


def test_a_deterministic_tool_is_served_from_the_cache_until_a_new_version(make_agent,
                                                                          tmp_path):
    # The tool claims to be deterministic but reads the clock: only a cache can repeat it.
    agent = stamp_agent(make_agent, tmp_path, deterministic=True)
    first = agent.ask("stamp the number 5")
    second = agent.ask("stamp the number 5")
    assert second["decision"] == "reuse" and second["result"] == first["result"]
    assert second["cached"] and "Served from the cache" in second["answer"]
    assert not first["cached"] and "Served from the cache" not in first["answer"]
    library = library_of(agent)
    assert [e["cached"] for e in library.executions("stamp_number")] == [True, False]
    record = library.get("stamp_number")
    # The cached run is logged with the code it came from, as every run is.
    assert [e["code_hash"] for e in library.executions("stamp_number")] == [
        record.code_hash] * 2
    library.register(record.spec, STAMP.format(offset=100), record.tests,
                     reason="update: offset", new_version=True)
    third = agent.ask("stamp the number 5")
    assert third["tool"]["version"] == 2 and not third["cached"]
    assert third["result"] >= 105  # v2's own run, never v1's cached result
    assert agent.ask("stamp the number 5")["result"] == third["result"]


def test_a_tool_not_known_to_be_deterministic_is_never_cached(make_agent, tmp_path):
    agent = stamp_agent(make_agent, tmp_path, deterministic=False)
    first = agent.ask("stamp the number 5")
    second = agent.ask("stamp the number 5")
    assert second["decision"] == "reuse" and not second["cached"]
    assert second["result"] != first["result"]
    assert [e["cached"] for e in library_of(agent).executions("stamp_number")] == [False, False]
