"""Tools that repair themselves in use: the scripted model, the real Postgres, the real sandbox.

A failure in use (a raise, a wrong return type, a time limit, a thumbs-down) goes to a repair
whose regression test is proven to fail on the current version; the new version must pass
the old suite and the regression test and replay the logged executions unchanged, or the
current version stays. Rollbacks, by hand or automatic, make the next call run the earlier
code, which the execution log shows by code hash.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import pytest
import streamlit as st
import test_pipeline
from streamlit.testing.v1 import AppTest
from test_pipeline import library_of, write_script

from nodes.kit.scripted import DEMO_SCRIPT
from sandbox.core import declared_tests

ROOT = Path(__file__).resolve().parents[2]
REPAIRED_ROUTE = ["enrich", "plan", "retrieve", "decide", "execute", "reflect", "gate",
                  "register", "execute", "answer"]
REGRESSION = "test_negative_number_sums_the_digits_of_its_magnitude"
make_agent = test_pipeline.make_agent  # the fixture: agents on throwaway library schemas


@pytest.fixture
def sea(capsys, monkeypatch):
    """Run the `sea` command line (in this process) with --json on a library schema."""
    from cli.main import main

    def run(*args: str, schema: str) -> tuple[int, dict]:
        monkeypatch.setenv("SEA_LIBRARY_SCHEMA", schema)
        monkeypatch.setenv("SEA_MODEL", f"scripted:{DEMO_SCRIPT}")
        capsys.readouterr()
        code = main([*args, "--json"])
        return code, json.loads(capsys.readouterr().out)

    return run


def demo_with(tmp_path: Path, first: list[dict], repair: dict | None = None) -> Path:
    """Return the demo script with ``first`` entries ahead of it and another digit repair."""
    replies = json.loads(DEMO_SCRIPT.read_text())["replies"]
    if repair is not None:
        for entry in replies:
            if entry["step"] == "repair" and entry["match"] == "(?i)digits of":
                entry["reply"] = repair
    return write_script(tmp_path, first + replies)


def plan(request: str) -> dict:
    return {"step": "plan", "request": request,
            "reply": {"kind": "single", "standalone_request": request}}


def test_a_tool_failing_on_an_edge_input_is_repaired_into_v2_and_serves(make_agent, sea,
                                                                         docker_sandbox):
    agent = make_agent()
    session = uuid.uuid4().hex[:8]
    assert agent.ask("sum the digits of 1234", session)["result"] == 10
    state = agent.ask("sum the digits of -4096", session)
    assert state["route"] == REPAIRED_ROUTE
    assert state["result"] == 19
    assert state["tool"] == {"name": "digit_sum", "version": 2, "status": "verified"}
    assert "repaired into v2" in state["answer"]
    library = library_of(agent)
    v1, v2 = library.versions("digit_sum")
    assert library.get("digit_sum").version == 2 and v2.parent == 1
    # The old suite is kept byte-for-byte; the repair added exactly its regression test.
    assert v2.tests.startswith(v1.tests)
    assert declared_tests(v2.tests) - declared_tests(v1.tests) == {REGRESSION}
    # The repair gate ran the repaired suite against v2's mutants; the score stays with v2.
    assert v2.report["mutation"]["score"] >= v2.report["gate"]["min_mutation_score"]
    # Proven again here: the regression test fails on v1 and passes on v2.
    regression = v2.tests[len(v1.tests):]
    assert docker_sandbox.verify(v1.code, regression).status == "failed"
    assert docker_sandbox.verify(v2.code, regression).ok
    runs = list(reversed(library.executions("digit_sum")))
    assert [(r["version"], r["success"], r["code_hash"]) for r in runs] == [
        (1, True, v1.code_hash), (1, False, v1.code_hash), (2, True, v2.code_hash)]
    assert v2.origin["replayed"] == 1 and "invalid literal" in v2.origin["failure"]["message"]
    # Figures per version, and ranking by the current version's.
    assert (v1.uses, v1.successes, v2.uses, v2.successes) == (2, 1, 1, 1)
    best = library.search("sum the digits of 55").candidates[0]
    assert (best.name, best.version, best.uses, best.success_rate) == ("digit_sum", 2, 1, 1.0)
    # The history shows the diff, which repair added which test, the failure, the reflection.
    code, shown = sea("tools", "show", "digit_sum", schema=agent.context.library_schema)
    assert code == 0
    second = shown["history"]["versions"][1]
    assert "+    return sum(int(digit) for digit in str(abs(n)))" in second["diff"]
    assert {t["name"]: t["added_in"] for t in second["tests"]}[REGRESSION] == 2
    assert second["failure"]["arguments"] == {"n": -4096}
    assert second["reflections"][0]["kind"] == "repair"
    assert "int() cannot read" in second["reflections"][0]["note"]


def test_a_repair_that_changes_a_logged_output_is_refused_and_v1_stays(make_agent, tmp_path):
    # This "fix" passes the frozen suite and the regression test, but it only sums the first
    # five digits, so the logged 1234567 -> 28 would now give 15.
    truncating = {"regression_test": "from tool import digit_sum\n\n\ndef test_minus_12():\n"
                                     "    assert digit_sum(-12) == 3\n",
                  "code": "def digit_sum(n: int) -> int:\n"
                          "    return sum(int(d) for d in str(abs(n))[:5])\n"}
    script = demo_with(tmp_path, [
        plan("sum the digits of 1234567"), plan("sum the digits of -12"),
        {"step": "args", "match": "digits of 1234567", "reply": {"arguments": {"n": 1234567}}},
        {"step": "args", "match": "digits of -12", "reply": {"arguments": {"n": -12}}},
        {"step": "answer", "match": "digits of 1234567", "reply": {"answer": "28."}}],
        truncating)
    agent = make_agent(script)
    assert agent.ask("sum the digits of 1234567")["result"] == 28
    state = agent.ask("sum the digits of -12")
    assert state["route"].count("gate") == 2 and "register" not in state["route"][4:]
    assert "could not fix it: it changes the output of logged past executions: " \
           '{"n": 1234567} gave 28 and now gives 15' in state["answer"]
    assert state["answer"].endswith("digit_sum v1 stays current.")
    assert [v.version for v in library_of(agent).versions("digit_sum")] == [1]


WEAK = "from tool import digit_sum\n\n\ndef test_still_ten():\n    assert digit_sum(1234) == 10\n"
EDITED = (json.loads(DEMO_SCRIPT.read_text())["replies"][[
    e["step"] == "tests" and e.get("match") == "(?i)digits of"
    for e in json.loads(DEMO_SCRIPT.read_text())["replies"]].index(True)]["reply"]["tests"]
    .replace("assert digit_sum(1234) == 10", "assert digit_sum(1234) >= 0")
    + "\n\ndef test_negative():\n    assert digit_sum(-4096) == 19\n")
GOOD_FIX = "def digit_sum(n: int) -> int:\n    return sum(int(d) for d in str(abs(n)))\n"


@pytest.mark.parametrize("reply,expected", [
    ({"regression_test": WEAK, "code": GOOD_FIX},
     "the regression test does not fail on the current version v1: test_still_ten (passed)"),
    ({"regression_test": EDITED, "code": GOOD_FIX},
     "the regression test redefines test_large_number, test_several_digits, "
     "test_single_digit, test_zero of the frozen suite"),
    ({"regression_test": WEAK, "code": "def digit_sum(n)\n    return"},
     "the implementation does not parse"),
])
def test_broken_repair_replies_are_refused_and_nothing_is_registered(make_agent, tmp_path,
                                                                      reply, expected):
    agent = make_agent(demo_with(tmp_path, [], reply))
    agent.ask("sum the digits of 1234")
    state = agent.ask("sum the digits of -4096")
    assert state["route"][-3:] == ["execute", "reflect", "answer"]
    assert state["answer"].startswith("Sorry, I could not complete this: digit_sum v1 failed: "
                                      "ValueError: invalid literal for int()")
    assert expected in state["answer"] and "digit_sum v1 stays current" in state["answer"]
    assert "repair reply was unusable twice" in state["answer"]  # retried once with the reason
    assert [v.version for v in library_of(agent).versions("digit_sum")] == [1]


COUNT_SPEC = {"name": "digit_count", "description": "Count the decimal digits of a whole number.",
              "parameters": [{"name": "n", "type": "integer", "description": "the number"}],
              "returns": {"type": "integer"}}
COUNT_TESTS = ("from tool import digit_count\n\n\ndef test_one():\n    assert digit_count(7) == 1"
               "\n\n\ndef test_five():\n    assert digit_count(12345) == 5\n\n\n"
               "def test_zero():\n    assert digit_count(0) == 1\n")
# Wrong on 0, and on a negative number n //= 10 never reaches 0: it loops forever.
COUNT_LOOPING = ("def digit_count(n: int) -> int:\n    count = 0\n    while n:\n"
                 "        n //= 10\n        count += 1\n    return count\n")


def test_an_experimental_tool_is_repaired_into_a_verified_one(make_agent, tmp_path):
    request = "how many digits does -4096 have"
    script = write_script(tmp_path, [
        plan(request), {"step": "spec", "match": "", "reply": COUNT_SPEC},
        {"step": "tests", "match": "", "reply": {"tests": COUNT_TESTS}},
        {"step": "impl", "match": "", "reply": {"code": COUNT_LOOPING}},
        {"step": "reflect", "match": "", "reply": {"code": COUNT_LOOPING}},
        {"step": "args", "match": "", "reply": {"arguments": {"n": -4096}}},
        {"step": "repair", "match": "", "reply": {
            "regression_test": "from tool import digit_count\n\n\ndef test_negative():\n"
                               "    assert digit_count(-4096) == 4\n",
            "code": "def digit_count(n: int) -> int:\n    return len(str(abs(n)))\n"}},
        {"step": "answer", "match": "", "reply": {"answer": "-4096 has 4 digits."}}])
    agent = make_agent(script, max_retries=1)
    library_of(agent).set_policy({"experimental_limits": {"timeout": 2.0, "memory_mb": 128}})
    state = agent.ask(request)
    assert state["route"] == ["enrich", "plan", "retrieve", "decide", "spec", "tests", "impl",
                              "verify", "reflect", "verify", "register"] + REPAIRED_ROUTE[4:]
    v1, v2 = library_of(agent).versions("digit_count")
    assert (v1.status, v2.status, v2.current) == ("experimental", "verified", True)
    assert state["tool"]["status"] == "verified" and state["result"] == 4
    assert state["answer"].startswith("-4096 has 4 digits.")  # no longer a warning
    # v1 ran under the experimental limits (2 s) and timed out; v2 runs under the usual ones.
    assert any("tighter limits" in e["message"] for e in state["events"])
    first, second = reversed(library_of(agent).executions("digit_count"))
    assert not first["success"] and "ran past 2 s" in first["error"]
    assert second["success"] and second["code_hash"] == v2.code_hash
    assert "limit" in v2.origin["proof"]  # proven on v1 by the time limit it runs under


ROUND_B = "round -2.5 to the nearest whole number"
ROUND_AWAY = ("import math\n\n\ndef round_to_nearest(x: float) -> int:\n"
              "    \"\"\"Round x to the nearest whole number.\"\"\"\n"
              "    return -math.floor(-x + 0.5) if x < 0 else round(x)\n")


def test_a_wrong_answer_of_a_version_no_longer_current_never_replaces_the_current(
        make_agent, tmp_path):
    from tools_store.errors import ToolChanged

    agent = make_agent(demo_with(tmp_path, [
        plan(ROUND_B),
        {"step": "args", "match": r"(?i)^round -2\.5", "reply": {"arguments": {"x": -2.5}}},
        {"step": "judge", "match": r"(?i)^round",
         "reply": {"serves": True, "tool": "round_to_nearest", "reason": "same"}},
        {"step": "repair", "request": ROUND_B, "reply": {
            "regression_test": "from tool import round_to_nearest\n\n\n"
                               "def test_negative_half_rounds_away():\n"
                               "    assert round_to_nearest(-2.5) == -3\n",
            "code": ROUND_AWAY, "notes": "negative halves round away from zero"}}]))
    library = library_of(agent)
    agent.ask("round 2.5 to the nearest whole number", "a")
    assert agent.ask(ROUND_B, "b")["result"] == -2  # v1 answers both sessions
    agent.start_repair("a", "halves round up")
    v2 = library.get("round_to_nearest")
    assert v2.version == 2
    # Before, this repaired v1 into a v3 that was made current without v2's tests, and
    # "round 2.5" answered what the user had marked wrong again.
    late = agent.start_repair("b", "-2.5 should be -3")
    assert "came from round_to_nearest v1, and v2 is current now" in late["error"]
    assert [v.version for v in library.versions("round_to_nearest")] == [1, 2]
    assert library.get("round_to_nearest").version == 2
    assert library.last_execution("b")["marked_wrong"]  # the verdict is kept
    # Two repairs at once: the one registered second started from a version no longer current.
    with pytest.raises(ToolChanged, match="v2 is current"):
        library.register(v2.spec, ROUND_AWAY, v2.tests, new_version=True,
                         origin={"kind": "repair", "from_version": 1})
    assert [v.version for v in library.versions("round_to_nearest")] == [1, 2]
    library.remove("round_to_nearest")  # before, found out only when registering a repair
    assert "it has been retired since" in agent.start_repair("a", "still wrong")["error"]


def test_a_second_thumbs_down_on_the_same_answer_marks_nothing_more(make_agent):
    agent = make_agent()
    library = library_of(agent)
    assert agent.ask("round 2.5 to the nearest whole number", "twice")["result"] == 2
    seen = library.last_execution("twice")["id"]  # the answer both clicks were on
    first = agent.start_repair("twice", "halves round up", execution=seen)
    assert first["result"] == 3 and first["tool"]["version"] == 2
    # Before, the second click's turn marked v2's right answer wrong and tried to repair v2.
    second = agent.start_repair("twice", "halves round up", execution=seen)
    assert "followed by another since" in second["error"]
    repaired = library.last_execution("twice")
    assert repaired["version"] == 2 and not repaired["marked_wrong"]
    assert library.get("round_to_nearest").version == 2


AVERAGE = "what is the average word length in notes.txt"
AVERAGE_V1 = ("def average_word_length(filename: str) -> float:\n"
              "    words = open(filename).read().split()\n"
              "    return sum(len(w) for w in words) / len(words)\n")


def test_a_past_call_is_replayed_only_on_the_files_it_read(make_agent, tmp_path):
    spec = {"name": "average_word_length", "description": "Average word length of a text file.",
            "parameters": [{"name": "filename", "type": "string", "description": "the file"}],
            "returns": {"type": "number"}}
    tests = ("import pytest\nfrom tool import average_word_length\n\n\n"
             "def test_missing_file():\n    with pytest.raises(FileNotFoundError):\n"
             "        average_word_length('missing.txt')\n\n\n"
             "def test_missing_other():\n    with pytest.raises(FileNotFoundError):\n"
             "        average_word_length('nope.txt')\n\n\n"
             "def test_given_file():\n    assert average_word_length('notes.txt') >= 0\n")
    fix = AVERAGE_V1.replace("len(words)\n", "len(words) if words else 0.0\n")
    agent = make_agent(write_script(tmp_path, [plan(AVERAGE)] + [
        {"step": step, "match": "", "reply": reply} for step, reply in (
            ("spec", spec), ("tests", {"tests": tests}), ("impl", {"code": AVERAGE_V1}),
            ("args", {"arguments": {"filename": "notes.txt"}}), ("answer", {"answer": "done"}),
            ("judge", {"serves": True, "tool": "average_word_length", "reason": "same"}),
            ("repair", {"regression_test": "from tool import average_word_length\n\n\n"
                                           "def test_empty_file():\n"
                                           "    assert average_word_length('notes.txt') == 0.0\n",
                        "code": fix, "notes": "an empty file has no words"}))]))
    words, empty = tmp_path / "a" / "notes.txt", tmp_path / "b" / "notes.txt"
    for path, text in ((words, "aa bbbb\n"), (empty, "")):
        path.parent.mkdir()
        path.write_text(text)
    first = agent.ask(AVERAGE, "w1", files=[str(words)])
    assert first["result"] == 3.0, (first["error"], first["route"])
    repaired = agent.ask(AVERAGE, "w2", files=[str(empty)])
    # Before, the first call was replayed on the empty file: "gave 3.0 and now gives 0.0",
    # and the right fix was refused.
    assert repaired["result"] == 0.0 and repaired["tool"]["version"] == 2, repaired["error"]
    assert any("1 that read other files, not at hand, were not replayed" in e["message"]
               for e in repaired["events"])


def test_rollback_makes_the_next_call_run_the_earlier_code(make_agent, sea):
    agent = make_agent()
    agent.ask("sum the digits of 1234")
    assert agent.ask("sum the digits of -4096")["tool"]["version"] == 2
    schema = agent.context.library_schema
    code, rolled = sea("tools", "rollback", "digit_sum", "1", "--reason", "suspicious",
                       schema=schema)
    assert code == 0 and rolled["version"] == 1
    state = agent.ask("sum the digits of 1234")
    assert state["tool"]["version"] == 1 and state["result"] == 10
    library = library_of(agent)
    v1, v2 = library.versions("digit_sum")
    latest = library.executions("digit_sum", limit=1)[0]
    assert latest["code_hash"] == v1.code_hash != v2.code_hash
    assert [(e["kind"], e["from_version"], e["to_version"], e["reason"])
            for e in library.events("digit_sum")] == [("rollback", 2, 1, "suspicious")]
    code, history = sea("tools", "history", "digit_sum", schema=schema)
    assert history["events"][0]["reason"] == "suspicious"
    assert [(v["version"], v["current"]) for v in history["versions"]] == [(1, True),
                                                                             (2, False)]
    assert history["executions"][0]["code_hash"] == v1.code_hash
    code, removed = sea("tools", "remove", "digit_sum", "--reason", "replaced", schema=schema)
    assert code == 0 and library.list_tools() == []
    assert library.events("digit_sum")[-1]["kind"] == "retire"


# An "update" with a typo: it adds a tuple to an int, so every call raises TypeError.
BROKEN_UPDATE = ("def digit_sum(n: int) -> int:\n    total = 0\n    while n:\n"
                 "        n, digit = divmod(n, 10)\n        total += (n, digit)\n"
                 "    return total\n")


def test_the_automatic_rollback_fires_on_a_regressing_version(make_agent):
    agent = make_agent(max_retries=0)  # no repairs: the regression is left to the rollback
    library = library_of(agent)
    library.set_policy({"rollback_window": 3})
    assert agent.ask("sum the digits of 1234")["result"] == 10
    v1 = library.get("digit_sum")
    v2 = library.register(v1.spec, BROKEN_UPDATE, v1.tests, new_version=True,
                          reason="update: digits by divmod")
    assert v2.parent == 1 and library.get("digit_sum").version == 2
    turns = [agent.ask("sum the digits of 1234") for _ in range(3)]
    assert [t["tool"]["version"] for t in turns] == [2, 2, 2]
    assert all("TypeError" in t["answer"] for t in turns)
    assert library.get("digit_sum").version == 1  # rolled back after the third use
    (event,) = library.events("digit_sum")
    assert (event["kind"], event["from_version"], event["to_version"]) == ("auto_rollback", 2, 1)
    assert event["reason"] == ("v2 succeeded in 0 of its first 3 uses (0%), below v1's 100% "
                               "over 1")
    assert any("rolled digit_sum back to v1" in e["message"] for e in turns[-1]["events"])
    after = agent.ask("sum the digits of 1234")
    assert after["result"] == 10
    assert library.executions("digit_sum", limit=1)[0]["code_hash"] == v1.code_hash


def test_sea_feedback_marks_the_answer_wrong_and_repairs_it(sea, docker_sandbox):
    from tools_store.library import ToolLibrary

    schema, session = f"fb_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:8]
    try:
        code, first = sea("ask", "round 2.5 to the nearest whole number", "--session", session,
                          schema=schema)
        assert code == 0 and first["result"] == 2
        code, fixed = sea("feedback", session, "--wrong", "halves round up", schema=schema)
        assert code == 0, fixed
        assert fixed["route"] == ["enrich", "feedback", "reflect", "gate", "register",
                                  "execute", "answer"]
        assert fixed["result"] == 3 and fixed["version"] == 2
        # The demo records no answer for this request: the result is said plainly.
        assert fixed["answer"].startswith("round_to_nearest returned 3. (round_to_nearest v1 "
                                          "failed on this; it was repaired into v2")
        library = ToolLibrary(schema=schema)
        marked = list(reversed(library.executions("round_to_nearest")))[0]
        assert marked["marked_wrong"] and marked["feedback"] == "halves round up"
        assert library.get("round_to_nearest").version == 2
    finally:
        ToolLibrary(schema=schema).drop()


@pytest.fixture
def app(monkeypatch, docker_sandbox, tmp_path):
    """The app on its own library, with a fresh copy of the demo script (fresh counters)."""
    from nodes.kit import services
    from sandbox import close_shared

    script = tmp_path / "demo.json"
    shutil.copy(DEMO_SCRIPT, script)
    schema = f"app_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("SEA_MODEL", f"scripted:{script}")
    monkeypatch.setenv("SEA_LIBRARY_SCHEMA", schema)
    monkeypatch.setenv("SEA_SANDBOX_POOL", "0")
    st.cache_resource.clear()
    close_shared()
    yield AppTest.from_file(str(ROOT / "ui" / "app.py"), default_timeout=180).run()
    from ui import backend

    backend.runs().wait(120)  # the app's turns run in its threads: stop what it made
    backend.runs().log.close()
    backend.agent().close()
    st.cache_resource.clear()
    close_shared()
    services.library(schema).drop()
    services.forget_library(schema)


def settle(at: AppTest) -> list[str]:
    """Wait until the app's turns end, rerun the page; return the text it shows."""
    from ui import backend

    assert backend.runs().wait(180), "a turn did not finish"
    at.run()
    assert not at.exception, at.exception
    return [t.value for t in at.text]


def test_a_thumbs_down_from_a_tab_drawn_before_a_repair_marks_nothing(app):
    from nodes.kit import services

    app.chat_input[0].set_value("round 2.5 to the nearest whole number").run()
    assert "round_to_nearest returned 2." in settle(app)
    other = AppTest.from_file(str(ROOT / "ui" / "app.py"), default_timeout=180)
    other.query_params["session"] = app.query_params["session"]
    other.run()  # a second tab on the same answer
    assert not other.exception, other.exception
    app.feedback[0].set_value(0).run()  # the first tab's thumbs-down repairs it into v2
    assert any(t.startswith("round_to_nearest returned 3.") for t in settle(app))
    other.feedback[0].set_value(0).run()  # then the second tab's, on the answer it shows
    shown = settle(other)
    # Before, it marked v2's right answer wrong and tried to repair v2.
    assert any("followed by another since" in t for t in shown), shown
    library = services.library(os.environ["SEA_LIBRARY_SCHEMA"])
    last = library.executions("round_to_nearest")[0]
    assert (last["version"], last["marked_wrong"]) == (2, False)


def test_a_thumbs_down_in_the_app_repairs_the_tool(app):
    from nodes.kit import services

    app.chat_input[0].set_value("round 2.5 to the nearest whole number").run()
    assert "round_to_nearest returned 2." in settle(app)
    app.text_input[0].set_value("halves round up")
    app.feedback[0].set_value(0).run()
    assert not app.exception, app.exception
    shown = settle(app)
    assert "That answer was wrong: halves round up" in shown  # the turn's request
    assert any(t.startswith("Feedback — round_to_nearest v1 answered 2 for {\"x\": 2.5}, "
                            "which the user marked wrong: halves round up") for t in shown)
    assert any(t.startswith("Repair gate — sandbox: passed: 5 passed") for t in shown)
    answers = [t for t in shown if t.startswith("round_to_nearest returned")]
    assert len(answers) == 2 and answers[0] == "round_to_nearest returned 2."
    assert answers[1].startswith("round_to_nearest returned 3. (round_to_nearest v1 failed on "
                                 "this; it was repaired into v2")
    assert any("-badge[:material/build: Repaired]" in m.value for m in app.markdown)
    library = services.library(os.environ["SEA_LIBRARY_SCHEMA"])
    assert library.get("round_to_nearest").version == 2
    app.switch_page("views/library.py").run()  # the repair, as the library page shows it
    assert not app.exception, app.exception
    shown = [t.value for t in app.text]
    assert any(t.startswith("Failure that led to v2: ") for t in shown), shown
    assert any(t.startswith("Reflection (repair ") for t in shown), shown
    versions = app.dataframe[2].value
    assert list(versions["version"]) == [1, 2] and list(versions["made from"])[1] == 1
