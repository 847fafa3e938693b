"""Routes through the graph with the scripted model, the real Postgres and the real sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from graph.runner import Agent
from nodes.kit.scripted import DEMO_SCRIPT

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def make_agent(docker_sandbox):
    """Agents on a throwaway library schema with the demo script (or another)."""
    made = []

    def make(script: Path = DEMO_SCRIPT, **context):
        agent = Agent(model=f"scripted:{script}", sandbox_backend="docker", sandbox_pool=0,
                      library_schema=f"p_{uuid.uuid4().hex[:10]}", **context)
        made.append(agent)
        return agent

    yield make
    from nodes.kit import services

    for agent in made:
        services.library(agent.context.library_schema).drop()
        services.forget_library(agent.context.library_schema)
        agent.close()


def library_of(agent):
    from nodes.kit import services

    return services.library(agent.context.library_schema)


def test_new_request_is_synthesized_then_a_paraphrase_reuses_it(make_agent):
    agent = make_agent()
    first = agent.ask("convert 100 degrees Fahrenheit to Celsius")
    assert first["route"] == ["enrich", "plan", "retrieve", "decide", "spec", "tests", "impl",
                              "verify", "register", "execute", "answer"]
    assert first["tool"] == {"name": "fahrenheit_to_celsius", "version": 1,
                             "status": "verified"}
    assert first["result"] == 37.78 and "37.78" in first["answer"]
    assert first["report"]["passed"] == 5
    second = agent.ask("it's 98.6 F, what is that in celsius?")
    assert second["route"] == ["enrich", "plan", "retrieve", "decide", "execute", "answer"]
    assert second["decision"] == "reuse" and second["result"] == 37.0
    assert {e["step"] for e in second["events"]} >= {"retrieve", "decide", "execute"}
    assert second["usage"]["plan"]["calls"] == 1 and "spec" not in second["usage"]
    executions = library_of(agent).executions("fahrenheit_to_celsius")
    assert [e["success"] for e in executions] == [True, True]


def test_failing_implementation_is_reflected_until_it_passes(make_agent):
    agent = make_agent()
    state = agent.ask("count the vowels in Encyclopedia Britannica")
    assert state["route"].count("verify") == 2 and state["route"].count("reflect") == 1
    assert state["tool"]["status"] == "verified" and state["result"] == 9
    reflections = library_of(agent).reflections("count_vowels")
    assert reflections and reflections[0]["failing_tests"][0]["name"] == "test_uppercase_counts"


def test_every_implementation_failing_makes_an_experimental_tool(make_agent):
    agent = make_agent()
    state = agent.ask("reverse the order of the words in the quick brown fox")
    assert state["route"].count("verify") == 3  # the first try and two reflections
    assert state["tool"]["status"] == "experimental"
    assert state["answer"].startswith("Warning: reverse_word_order is experimental")
    record = library_of(agent).get("reverse_word_order")
    assert record.status == "experimental" and record.report["status"] == "failed"


def test_create_request_reuses_a_near_identical_tool(make_agent):
    agent = make_agent()
    agent.ask("convert 100 degrees Fahrenheit to Celsius")
    state = agent.ask("create a tool that converts Fahrenheit to Celsius")
    assert state["force_synthesis"] is True
    assert "spec" not in state["route"] and "execute" not in state["route"]
    assert "already exists: fahrenheit_to_celsius" in state["answer"]
    assert len(library_of(agent).versions("fahrenheit_to_celsius")) == 1


def test_follow_up_takes_its_arguments_from_the_session(make_agent):
    agent = make_agent()
    session = "follow-up-session"
    agent.ask("convert 100 degrees Fahrenheit to Celsius", session)
    state = agent.ask("now do the same for 451", session)
    assert state["history"][0]["content"] == "convert 100 degrees Fahrenheit to Celsius"
    assert state["standalone_request"] == "convert 451 degrees Fahrenheit to Celsius"
    assert state["decision"] == "reuse" and state["arguments"] == {"fahrenheit": 451}
    assert state["result"] == 232.78


def test_a_new_process_resumes_an_earlier_session(make_agent):
    agent = make_agent()
    session = f"resume-{uuid.uuid4().hex[:6]}"
    agent.ask("convert 100 degrees Fahrenheit to Celsius", session)
    env = {**os.environ, "SEA_MODEL": f"scripted:{DEMO_SCRIPT}"}
    code = ("import json, sys\nfrom graph.runner import Agent, summary\n"
            f"agent = Agent(sandbox_pool=0, library_schema={agent.context.library_schema!r})\n"
            f"state = agent.ask('now do the same for 451', {session!r})\n"
            "print(json.dumps({'history': state['history'], 'result': state['result']}))\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, cwd=ROOT, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["history"][0]["content"] == "convert 100 degrees Fahrenheit to Celsius"
    assert out["result"] == 232.78
    assert [m["role"] for m in agent.conversation(session)] == ["user", "assistant"] * 2


def write_script(tmp_path: Path, replies: list[dict]) -> Path:
    path = tmp_path / "script.json"
    path.write_text(json.dumps({"replies": replies}))
    return path


PLAN = {"kind": "single", "standalone_request": "double the number 21"}
SPEC = {"name": "double_number", "description": "Double a number.",
        "parameters": [{"name": "x", "type": "number", "description": "the number"}],
        "returns": {"type": "number"}}
TESTS = ("from tool import double_number\n\n"
         "def test_a():\n    assert double_number(2) == 4\n\n"
         "def test_b():\n    assert double_number(0) == 0\n\n"
         "def test_c():\n    assert double_number(-1) == -2\n")
GOOD = "def double_number(x):\n    return 2 * x\n"


def double_script(**overrides) -> list[dict]:
    steps = {"plan": [PLAN], "spec": [SPEC], "tests": [{"tests": TESTS}],
             "impl": [{"code": GOOD}], "args": [{"arguments": {"x": 21}}],
             "answer": [{"answer": "42"}], "reflect": [{"code": GOOD}]}
    steps.update(overrides)
    return [{"step": step, "match": "", "replies": replies} for step, replies in steps.items()]


@pytest.mark.parametrize("overrides,expected", [
    ({"plan": ["this is not JSON", "still not JSON"]}, "plan reply was unusable twice"),
    ({"spec": [{"title": "wrong schema"}, {"nope": 1}]}, "spec reply was unusable twice"),
    ({"spec": [{**SPEC, "name": "../evil"}, {**SPEC, "name": "os/path"}]}, "snake_case"),
    ({"tests": [{"tests": "def test_a(:\n"}, {"tests": "def test_a(:\n"}]}, "does not parse"),
    ({"tests": [{"tests": "from tool import double_number\n\ndef test_a():\n    pass\n\n"
                          "def test_b():\n    pass\n\ndef test_c():\n    pass\n"}] * 2},
     "without assertions"),
    ({"impl": [{"code": "def double_number(x)\n    return"}] * 2}, "does not parse"),
    ({"impl": [{"code": GOOD + "open('test_tool.py', 'w').write('def test_x():\\n"
                "    assert True\\n')\n"}] * 2}, "may not touch the tests"),
])
def test_broken_replies_end_in_a_clear_error_and_register_nothing(make_agent, tmp_path,
                                                                   overrides, expected):
    agent = make_agent(write_script(tmp_path, double_script(**overrides)))
    state = agent.ask("double the number 21")
    assert state["error"] and expected in state["error"], state["error"]
    assert state["answer"].startswith("Sorry, I could not complete this")
    assert library_of(agent).list_tools(include_retired=True) == []


def test_one_broken_reply_is_retried(make_agent, tmp_path):
    agent = make_agent(write_script(tmp_path, double_script(
        spec=["```json\n{broken", SPEC], impl=[{"code": "def wrong(x):\n    return x\n"},
                                               {"code": GOOD}])))
    state = agent.ask("double the number 21")
    assert not state.get("error") and state["result"] == 42
    assert state["usage"]["spec"]["calls"] == 2 and state["usage"]["impl"]["calls"] == 2


def test_reflection_cannot_change_the_frozen_tests(make_agent, tmp_path):
    weak = "from tool import double_number\n\ndef test_a():\n    assert True\n"
    bad = "def double_number(x):\n    return x\n"
    agent = make_agent(write_script(tmp_path, double_script(
        impl=[{"code": bad}], reflect=[{"code": bad, "tests": weak}])))
    state = agent.ask("double the number 21")
    assert state["tests"] == TESTS  # the reply's "tests" key was ignored
    assert state["tool"]["status"] == "experimental"
    assert library_of(agent).get("double_number").tests == TESTS


def test_tests_edited_after_freezing_are_refused():
    from nodes.kit.checks import tests_hash
    from nodes.register import register
    from nodes.verify import verify

    state = {"tests": TESTS + "\n# weakened\n", "tests_hash": tests_hash(TESTS),
             "implementation": GOOD, "report": {"status": "passed"},
             "spec": SPEC, "attempts": 1}
    for step in (verify, register):
        update = step(state, None)
        assert "changed after they were frozen" in update["error"]


def test_bad_arguments_get_one_re_extraction(make_agent, tmp_path):
    agent = make_agent(write_script(tmp_path, double_script(
        args=[{"arguments": {"y": 21}}, {"arguments": {"x": "twenty-one"}}])))
    state = agent.ask("double the number 21")
    assert "could not extract valid arguments" in state["error"]
    assert state["tool"]["status"] == "verified"  # the tool itself was fine and is kept


def test_sandbox_unavailable_is_a_clear_error(make_agent, tmp_path, monkeypatch):
    from nodes.kit import services

    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    monkeypatch.setattr(services, "sandbox",
                        lambda backend="docker", pool=-1: __import__("sandbox").make_sandbox(
                            "docker"))
    agent = make_agent(write_script(tmp_path, double_script()))
    state = agent.ask("double the number 21")
    assert "sandbox is unavailable" in state["error"] and "not reachable" in state["error"]
    assert library_of(agent).list_tools(include_retired=True) == []


def run_sea(args: list[str], env: dict, timeout: float = 300,
            python_options: tuple[str, ...] = ()) -> tuple[int, str, str, int]:
    """Run `sea ARGS` in a fresh process; return its status, stdout, stderr and pid."""
    process = subprocess.Popen([sys.executable, *python_options, "-m", "cli", *args],
                               cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err, process.pid


def test_cli_ask_prints_route_tool_result_answer_and_tokens(tmp_path):
    from conftest import sandbox_containers

    env = {**os.environ, "SEA_MODEL": f"scripted:{DEMO_SCRIPT}"}
    status, stdout, stderr, pid = run_sea(
        ["ask", "convert 100 degrees Fahrenheit to Celsius", "--json"], env)
    assert status == 0, stderr[-3000:]
    out = json.loads(stdout)
    assert out["scripted_model"] is True and out["result"] == 37.78
    assert out["tool"] == "fahrenheit_to_celsius" and out["status"] == "verified"
    assert out["route"][-1] == "answer" and out["usage"]["spec"]["total_tokens"] > 0
    verify = [e for e in out["events"] if e["step"] == "verify" and "passed" in e]
    # The container started ahead while the command loaded served the first run.
    assert verify and verify[0]["backend"] == "docker-warm", verify
    assert sandbox_containers(pid) == []  # the command exits without its teardown: none left


def test_a_cli_turn_never_imports_what_it_does_not_use():
    """The packages the command line defers stay unloaded through a whole turn."""
    env = {**os.environ, "SEA_MODEL": f"scripted:{DEMO_SCRIPT}",
           "SEA_LIBRARY_SCHEMA": f"lean_{uuid.uuid4().hex[:8]}"}
    status, stdout, stderr, _ = run_sea(
        ["ask", "convert 100 degrees Fahrenheit to Celsius", "--json", "--in-process"], env,
        python_options=("-X", "importtime"))
    assert status == 0, stderr[-3000:]
    assert json.loads(stdout)["result"] == 37.78
    imported = {line.split("|")[-1].strip() for line in stderr.splitlines()
                if line.startswith("import time:")}
    assert {"graph.runner", "langgraph.runtime", "langsmith.run_trees"} <= imported
    unused = {"langgraph_sdk.client", "langsmith.types.run", "torch"}
    assert imported & unused == set()


def test_cli_chat_holds_a_conversation():
    env = {**os.environ, "SEA_MODEL": f"scripted:{DEMO_SCRIPT}",
           "SEA_LIBRARY_SCHEMA": f"chat_{uuid.uuid4().hex[:8]}"}
    run = subprocess.run([sys.executable, "-m", "cli", "chat"], cwd=ROOT, env=env,
                         input="convert 100 degrees Fahrenheit to Celsius\n"
                               "now do the same for 451\n\n",
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    answers = [line for line in run.stdout.splitlines() if line.startswith("agent> ")]
    assert answers == ["agent> 100 °F is 37.78 °C.", "agent> 451 °F is 232.78 °C."]
    assert "Scripted model" in run.stdout


def test_database_down_is_a_clear_error():
    from conftest import sandbox_containers

    env = {**os.environ, "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/nothing",
           "SEA_MODEL": f"scripted:{DEMO_SCRIPT}"}
    status, stdout, _, pid = run_sea(["ask", "double 21", "--json"], env, timeout=120)
    assert status == 1
    assert "DatabaseUnavailable: cannot connect to PostgreSQL" in json.loads(stdout)["error"]
    assert sandbox_containers(pid) == []  # the container started ahead is not left behind


@pytest.mark.parametrize("serves,route_tail", [
    (True, ["decide", "execute", "answer"]),
    (False, ["decide", "spec", "tests", "impl", "verify", "register", "execute", "answer"]),
])
def test_the_verify_band_asks_the_model_to_judge(make_agent, tmp_path, serves, route_tail):
    other = {**SPEC, "name": "double_value"}
    replies = double_script(
        spec=[SPEC, SPEC, other],  # the second turn first offers the taken name again
        tests=[{"tests": TESTS}, {"tests": TESTS.replace("double_number", "double_value")}],
        impl=[{"code": GOOD}, {"code": GOOD.replace("double_number", "double_value")}])
    replies.append({"step": "judge", "match": "",
                    "reply": {"serves": serves, "reason": "scripted verdict"}})
    agent = make_agent(write_script(tmp_path, replies))
    agent.ask("double the number 21")
    # Thresholds set so that even an exact match (1.0) lands in the verify band.
    agent.context.reuse_threshold, agent.context.verify_threshold = 1.01, 0.0
    state = agent.ask("double the number 21")
    assert state["route"][3:] == route_tail
    assert state["judge"] == {"serves": serves, "reason": "scripted verdict", "tool": "",
                              "candidates": [{"name": "double_number", "version": 1}]}
    assert state["usage"]["judge"]["calls"] == 1 and state["result"] == 42
    if not serves:
        assert state["usage"]["spec"]["calls"] == 2  # "already exists; choose another name"
        assert state["tool"]["name"] == "double_value"


def test_enrich_windows_the_session_and_resets_the_turn():
    from types import SimpleNamespace

    from langchain_core.messages import AIMessage, HumanMessage

    from nodes.enrich import enrich
    from nodes.kit.context import Context

    messages = [m for i in range(10) for m in (HumanMessage(f"q{i}"), AIMessage(f"a{i}"))]
    runtime = SimpleNamespace(context=Context(history_turns=2))
    update = enrich({"request": "  next  ", "messages": messages, "error": "old",
                     "result": 1}, runtime)
    assert [t["content"] for t in update["history"]] == ["q8", "a8", "q9", "a9"]
    assert update["request"] == "next" and update["error"] == "" and update["result"] is None
    assert enrich({"request": "   "}, runtime)["error"] == "enrich failed: the request is empty"
