"""The mutation gate against the real parts: the sandbox's mutate mode, the graph, the library.

The graph runs with recorded replies: the benchmark's own script for two tasks of the
development set (a weak suite a wrong implementation passes; a strong suite), and a small
script of its own for the refusals.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from graph.runner import Agent
from nodes.kit.checks import tests_hash as fingerprint
from sandbox.mutation import gate, mutants

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "evals" / "synthesis_scripted.json"
TASKS = {t["id"]: t for t in json.loads((ROOT / "evals" / "synthesis_dev.json").read_text())[
    "tasks"]}


def recorded(task: str, step: str) -> list[dict]:
    """Return the replies the benchmark's script recorded for one task and step."""
    request = TASKS[task]["request"]
    entry = next(e for e in json.loads(SCRIPT.read_text())["replies"]
                 if e["step"] == step and e["request"] == request)
    return entry.get("replies") or [entry["reply"]]


@pytest.fixture
def make_agent(docker_sandbox):
    made = []

    def make(script: Path = SCRIPT, **context) -> Agent:
        agent = Agent(model=f"scripted:{script}", sandbox_backend="docker", sandbox_pool=0,
                      library_schema=f"g_{uuid.uuid4().hex[:10]}", **context)
        made.append(agent)
        return agent

    yield make
    from nodes.kit import services

    for agent in made:
        services.library(agent.context.library_schema).drop()
        services.forget_library(agent.context.library_schema)
        agent.close()


def library_of(agent: Agent):
    from nodes.kit import services

    return services.library(agent.context.library_schema)


# --- the sandbox's mutate mode ---------------------------------------------------------------

COUNTER = "SEEN = []\n\n\ndef f():\n    SEEN.append(1)\n    return len(SEEN)\n"
FIRST_CALL = "from tool import f\n\n\ndef test_first_call():\n    assert f() == 1\n"


def test_every_variant_runs_in_a_fresh_worker(docker_sandbox):
    # Module state counts calls: a worker shared between variants would answer 2, then 3.
    reports = docker_sandbox.mutate(COUNTER, FIRST_CALL, [COUNTER] * 3)
    assert [r.status for r in reports] == ["passed"] * 3


def test_a_hanging_or_broken_variant_is_killed_and_the_others_still_run(any_sandbox):
    hanging = "def f():\n    while True:\n        pass\n"
    broken = "raise ImportError('no such thing')\n"
    wrong = "def f():\n    return 2\n"
    reports = any_sandbox.mutate(COUNTER, FIRST_CALL, [hanging, broken, wrong, COUNTER],
                                 variant_timeout=1.0)
    assert [r.status for r in reports] == ["timeout", "failed", "failed", "passed"]
    assert "no such thing" in reports[1].tests[0].message


def test_a_variant_cannot_write_the_report(docker_sandbox):
    # It tries every descriptor a careless runner might have left it, then answers wrongly.
    forger = ("import json, os\nfake = json.dumps({'variants': []}).encode()\n"
              "for fd in range(3, 256):\n    try:\n        os.write(fd, fake)\n"
              "    except OSError:\n        pass\n\n\ndef f():\n    return 7\n")
    reports = docker_sandbox.mutate(COUNTER, FIRST_CALL, [forger, COUNTER])
    assert [r.status for r in reports] == ["failed", "passed"]


# At import it looks for what an earlier worker could leave (files in /tmp, /dev/shm or
# /dev/mqueue, a process of its user), then leaves them. A worker that finds any answers 2.
TRACES = (
    "import os, time\n\n"
    "MARKS = ('/tmp/sea-mark', '/dev/shm/sea-mark', '/dev/mqueue/sea-mark')\n\n\n"
    "def _traces():\n"
    "    found = [p for p in MARKS if os.path.exists(p)]\n"
    "    for pid in filter(str.isdigit, os.listdir('/proc')):\n"
    "        try:\n"
    "            with open(f'/proc/{pid}/stat') as fh:\n"
    "                alive = fh.read().rsplit(')', 1)[1].split()[0] != 'Z'\n"
    "            mine = os.stat(f'/proc/{pid}').st_uid == os.getuid()\n"
    "        except OSError:\n"
    "            continue\n"
    "        if alive and mine and int(pid) != os.getpid():\n"
    "            found.append(pid)\n"
    "    return found\n\n\n"
    "FOUND = _traces()\n"
    "for mark in MARKS:  # in /dev/mqueue, a message queue\n"
    "    try:\n"
    "        with open(mark, 'w') as fh:\n"
    "            fh.write('an earlier worker was here')\n"
    "    except OSError:\n"
    "        pass  # bubblewrap's /dev is read-only, with no /dev/mqueue\n"
    "if os.fork() == 0:\n"
    "    os.setsid()  # out of the worker's process group\n"
    "    time.sleep(60)\n"
    "    os._exit(0)\n\n\n"
    "def f():\n"
    "    return 2 if FOUND else 1\n"
)


def test_no_variant_sees_an_earlier_workers_files_or_processes(any_sandbox):
    # A mutant that could see them could tell it is not the original and fail on purpose;
    # an honest tool's files would carry over into the next variant's run.
    reports = any_sandbox.mutate(TRACES, FIRST_CALL, [TRACES] * 3)
    assert [r.status for r in reports] == ["passed"] * 3, [r.tests for r in reports]


# At import it takes every process slot the container has left, and keeps them.
PID_FILLER = (
    "import os, time\n\n"
    "while True:\n"
    "    try:\n"
    "        if os.fork() == 0:\n"
    "            time.sleep(60)\n"
    "            os._exit(0)\n"
    "    except OSError:\n"
    "        break\n\n\n"
    "def f():\n"
    "    return 1\n"
)


def test_a_variant_that_cannot_start_clean_is_never_counted_killed(docker_sandbox):
    from sandbox.reports import UNCLEAN, killer

    # No process is left to clear the way for a fresh worker: had such variants counted as
    # killed (or not run, which gates nothing), the gate would pass a one-test suite.
    reports = docker_sandbox.mutate(PID_FILLER, FIRST_CALL, [PID_FILLER] * 2)
    assert [(r.status, r.detail) for r in reports] == [("infrastructure", UNCLEAN)] * 2
    assert [killer(r) for r in reports] == ["", ""]
    measured = gate(docker_sandbox, PID_FILLER, FIRST_CALL,
                    docker_sandbox.verify(PID_FILLER, FIRST_CALL))
    assert measured.killed == 0 and measured.unclean == len(measured.mutants) >= 2
    assert measured.score == 0.0 and "could not start clean" in measured.summary()


def test_variants_the_time_limit_cannot_cover_are_not_run(docker_sandbox):
    hanging = "def f():\n    while True:\n        pass\n"
    reports = docker_sandbox.mutate(COUNTER, FIRST_CALL, [hanging] * 8, variant_timeout=1.0)
    # The run has 4 s: some variants time out, the rest are not run, and the run reports.
    assert {r.status for r in reports if r is not None} == {"timeout"}
    assert reports[-1] is None


def test_the_gate_scores_a_suite_and_shows_its_survivors_as_diffs(docker_sandbox):
    from sandbox import make_sandbox

    box = make_sandbox("docker")  # the usual 30 s for the run, not the attacks' 4 s
    code = TASKS["shift-length"]["reference"]
    weak = "from tool import shift_minutes\n\n\ndef test_day():\n    assert shift_minutes(" \
           "'09:00', '17:30') == 510\n"
    report = box.verify(code, weak)
    measured = gate(box, code, weak, report)
    box.close()
    assert len(measured.mutants) == len(mutants(code)) == 20
    assert measured.killed + measured.survived + measured.not_run == 20
    assert measured.survived >= 2 and measured.score < 0.7  # one test is not a suite
    survivor = measured.survivors()[0]
    assert survivor.diff.startswith("--- tool.py") and "\n+" in survivor.diff


# --- the gate in the graph --------------------------------------------------------------------

def test_a_strong_suite_passes_the_gate_untouched(make_agent):
    agent = make_agent()
    turn = agent.ask(TASKS["shift-length"]["request"])
    assert "strengthen" not in turn["route"] and turn["tool"]["status"] == "verified"
    frozen = recorded("shift-length", "tests")[0]["tests"]
    record = library_of(agent).get("shift_minutes")
    assert record.tests == frozen and turn["tests_hash"] == fingerprint(frozen)
    assert record.report["mutation"]["score"] >= 0.7
    assert record.report["gate"] == {"min_mutation_score": 0.7, "strengthened": 0}
    # The gate is a first request's longest step: the trace says so when it starts.
    said = [e["message"] for e in turn["events"] if e["step"] == "verify"]
    start = said.index("mutation gate: running the suite against 20 mutants of the code")
    assert said[start + 1].startswith("mutation score ")


def test_a_weak_suite_is_strengthened_and_the_wrong_implementation_repaired(make_agent,
                                                                            docker_sandbox):
    agent = make_agent()
    turn = agent.ask(TASKS["days-in-month"]["request"])
    route = turn["route"]
    assert route[route.index("verify"):] == ["verify", "strengthen", "reflect", "verify",
                                             "strengthen", "register", "execute", "answer"]
    weak = recorded("days-in-month", "tests")[0]["tests"]
    added = recorded("days-in-month", "strengthen")[0]["tests"]
    wrong = recorded("days-in-month", "impl")[0]["code"]
    right = recorded("days-in-month", "reflect")[0]["code"]
    record = library_of(agent).get("days_in_month")
    # The original tests are all there, byte for byte, and only new ones follow them.
    assert record.tests.startswith(weak) and fingerprint(record.tests[:len(weak)]) == \
        fingerprint(weak)
    # (under a comment naming the round that added them, as a repair's regression tests are)
    assert record.tests[len(weak):].strip() == ("# Tests added by the mutation gate (round 2)\n"
                                                + added.strip())
    assert record.status == "verified" and record.code == right
    assert record.report["mutation"]["score"] >= 0.7 and record.report["gate"]["strengthened"] == 2
    # The plain suite passed the wrong implementation; the strengthened one refuses it.
    assert docker_sandbox.verify(wrong, weak).ok
    refused = docker_sandbox.verify(wrong, record.tests)
    assert refused.status == "failed"
    assert [t.name for t in refused.failures()] == ["test_century_years_are_not_leap_years"]
    reflection = library_of(agent).reflections("days_in_month")[0]
    assert reflection["failing_tests"][0]["name"] == "test_century_years_are_not_leap_years"


def test_the_gate_never_removes_or_edits_an_existing_test(make_agent, tmp_path):
    spec = recorded("days-in-month", "spec")[0]
    weak = recorded("days-in-month", "tests")[0]["tests"]
    right = recorded("days-in-month", "reflect")[0]["code"]
    added = recorded("days-in-month", "strengthen")[0]["tests"]
    # First an edit of an existing test, then the weak suite rewritten weaker, then new tests.
    edit = "def test_january():\n    assert days_in_month(2023, 1) > 0\n"
    rewritten = weak.replace("== 29", ">= 28") + "\n\ndef test_more():\n    assert True\n"
    request = "how many days are in a month of a year"
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"replies": [
        {"step": "plan", "request": request,
         "reply": {"kind": "single", "standalone_request": request}},
        {"step": "spec", "match": ".", "reply": spec},
        {"step": "tests", "match": ".", "reply": {"tests": weak}},
        {"step": "impl", "match": ".", "reply": {"code": right}},
        {"step": "strengthen", "match": ".",
         "replies": [{"tests": edit}, {"tests": rewritten}, {"tests": added}]},
        {"step": "args", "match": ".", "reply": {"arguments": {"year": 2024, "month": 2}}},
        {"step": "answer", "match": ".", "reply": {"answer": "29"}}]}))
    agent = make_agent(script)
    turn = agent.ask(request)
    # Round one: the edit is refused, and so is the rewrite sent on the one retry.
    refusals = [e["message"] for e in turn["events"] if e["step"] == "strengthen"]
    assert turn["route"].count("strengthen") == 2 and "already defined" in refusals[0]
    record = library_of(agent).get("days_in_month")
    assert record.tests.startswith(weak) and record.tests.endswith(added)
    assert "test_january" in record.tests and record.tests.count("def test_january") == 1
    assert ">= 28" not in record.tests and "test_more" not in record.tests
    assert record.status == "verified"


def test_the_mutation_score_appears_in_sea_tools_show(make_agent, monkeypatch, capsys):
    from cli.main import main

    agent = make_agent()
    agent.ask(TASKS["shift-length"]["request"])
    monkeypatch.setenv("SEA_LIBRARY_SCHEMA", agent.context.library_schema)
    assert main(["tools", "show", "shift_minutes"]) == 0
    shown = capsys.readouterr().out
    assert "mutation score 0.90: the suite killed 18 of 20 mutants" in shown
    assert main(["tools", "show", "shift_minutes", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["mutation_score"] == 0.9
    assert main(["tools", "history", "shift_minutes"]) == 0  # per version, too
    assert "mutation score 0.90" in capsys.readouterr().out
