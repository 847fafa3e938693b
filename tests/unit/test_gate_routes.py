"""Routing of the mutation gate: strengthen, refuse, repair by reflection, bounded rounds.

In memory, like ``test_routes.py``: ``FakeSandbox(weak=True)`` lets every mutant survive a
suite without the marker ``# strong``. The same routes run on the real sandbox in
``tests/integration/test_mutation_gate.py``.
"""

from __future__ import annotations

from fakes import FakeLibrary, FakeSandbox
from test_routes import BAD, GOOD, TESTS, run, script, synthesis

STRONG = "def test_five():\n    assert double_number(5) == 10  # strong\n"
WEAK = "def test_five():\n    assert double_number(5) == 10\n"
EXPOSING = "def test_five():\n    assert double_number(5) == 10  # strong # fails-on-impl\n"
FIXED = "def double_number(x):\n    return 2 * x  # passes # fixed\n"


def gated(tmp_path, strengthen: list[str], impls: list[str] = (GOOD,)) -> str:
    entries = synthesis(list(impls))
    entries.append({"step": "strengthen", "match": ".",
                    "replies": [{"tests": tests} for tests in strengthen]})
    return script(tmp_path, *entries)


def test_a_strong_suite_passes_the_gate_untouched(tmp_path):
    library, sandbox = FakeLibrary(), FakeSandbox({"double_number": 42})
    route, state = run(gated(tmp_path, [STRONG]), "double 21", library, sandbox)
    assert "strengthen" not in route and state["tests"] == TESTS
    assert len(sandbox.mutated) == 1 and state["mutation"]["score"] == 1.0
    record = library.tools["double_number"]
    assert record.status == "verified" and record.report["mutation"]["score"] == 1.0


def test_a_weak_suite_is_strengthened_then_registered_verified(tmp_path):
    library, sandbox = FakeLibrary(), FakeSandbox({"double_number": 42}, weak=True)
    route, state = run(gated(tmp_path, [STRONG]), "double 21", library, sandbox)
    assert route[route.index("verify"):] == ["verify", "strengthen", "register", "execute",
                                             "answer"]
    assert state["tests"].startswith(TESTS) and state["tests"].endswith(STRONG)
    assert state["strengthen"]["outcome"] == "accepted"
    record = library.tools["double_number"]
    assert record.status == "verified" and record.tests == state["tests"]
    assert record.report["gate"]["strengthened"] == 1


def test_tests_that_kill_nothing_are_refused_and_the_rounds_are_bounded(tmp_path):
    library, sandbox = FakeLibrary(), FakeSandbox({"double_number": 42}, weak=True)
    route, state = run(gated(tmp_path, [WEAK]), "double 21", library, sandbox)
    assert route.count("strengthen") == 2  # the policy's max_strengthen
    assert state["tests"] == TESTS  # nothing refused was appended
    assert "kill none of the surviving mutants" in state["strengthen"]["reason"]
    record = library.tools["double_number"]
    assert record.status == "experimental" and "too weak" in record.reason
    assert "too weak to trust" in state["answer"]


def test_refused_tests_that_fail_on_the_implementation_send_it_to_reflection(tmp_path):
    library, sandbox = FakeLibrary(), FakeSandbox({"double_number": 42}, weak=True)
    model = gated(tmp_path, [EXPOSING], impls=[GOOD, FIXED])
    route, state = run(model, "double 21", library, sandbox)
    assert route[route.index("verify"):] == ["verify", "strengthen", "reflect", "verify",
                                             "strengthen", "register", "execute", "answer"]
    assert state["implementation"] == FIXED and state["tests"].endswith(EXPOSING)
    assert library.tools["double_number"].status == "verified"


def test_without_retries_left_the_exposed_implementation_is_not_verified(tmp_path):
    library, sandbox = FakeLibrary(), FakeSandbox({"double_number": 42}, weak=True)
    model = gated(tmp_path, [EXPOSING], impls=[GOOD, FIXED])
    route, state = run(model, "double 21", library, sandbox, max_retries=0)
    assert "reflect" not in route and route.count("strengthen") == 2
    assert state["tests"] == TESTS and library.tools["double_number"].status == "experimental"


def test_a_failing_suite_is_never_gated(tmp_path):
    library, sandbox = FakeLibrary(), FakeSandbox({"double_number": 21}, weak=True)
    route, _ = run(gated(tmp_path, [STRONG], impls=[BAD, BAD, BAD]), "double 21", library,
                   sandbox)
    assert sandbox.mutated == [] and "strengthen" not in route


def test_no_mutants_when_the_policy_turns_the_gate_off(tmp_path):
    library, sandbox = FakeLibrary(), FakeSandbox({"double_number": 42}, weak=True)
    library.stored_policy["max_mutants"] = 0
    route, state = run(gated(tmp_path, [STRONG]), "double 21", library, sandbox)
    assert sandbox.mutated == [] and "strengthen" not in route and state["mutation"] == {}
    assert library.tools["double_number"].status == "verified"


def test_a_suite_the_gate_measures_but_does_not_gate(tmp_path):
    library, sandbox = FakeLibrary(), FakeSandbox({"double_number": 42}, weak=True)
    library.stored_policy["min_mutation_score"] = 0.0
    route, state = run(gated(tmp_path, [STRONG]), "double 21", library, sandbox)
    assert "strengthen" not in route and state["mutation"]["score"] == 0.0
    assert library.tools["double_number"].status == "verified"


def test_a_missing_strengthen_reply_is_a_refusal_not_a_crash(tmp_path):
    library, sandbox = FakeLibrary(), FakeSandbox({"double_number": 42}, weak=True)
    route, state = run(script(tmp_path, *synthesis([GOOD])), "double 21", library, sandbox)
    assert route.count("strengthen") == 2 and not state.get("error")
    assert "no recorded reply" in state["strengthen"]["reason"]
    assert library.tools["double_number"].status == "experimental"


def test_redefining_an_existing_test_is_refused(tmp_path):
    library, sandbox = FakeLibrary(), FakeSandbox({"double_number": 42}, weak=True)
    redefine = "def test_0():\n    assert double_number(0) == 0  # strong\n"
    route, state = run(gated(tmp_path, [redefine]), "double 21", library, sandbox)
    assert state["tests"] == TESTS and "already defined" in state["strengthen"]["reason"]


# A repair goes through the repair gate, not through verify: its mutants are measured there.
def test_a_repair_is_measured_and_its_score_kept_with_the_new_version(tmp_path):
    from test_repair_routes import FIXED as REPAIR_FIX
    from test_repair_routes import REGRESSION, REPAIRED, library_with
    from test_repair_routes import TESTS as FROZEN
    from test_repair_routes import run as run_repair
    from test_repair_routes import script as repair_script

    library = library_with("def double_number(x):\n    return x  # passes # raises\n")
    sandbox = FakeSandbox()
    repair = {"regression_test": REGRESSION, "code": REPAIR_FIX}
    route, state = run_repair(repair_script(tmp_path, [repair]), library, sandbox)
    assert [route] == REPAIRED and "strengthen" not in route
    assert sandbox.mutated == [state["tests"]]  # the whole repaired suite, once
    record = library.get("double_number")
    assert record.version == 2 and record.status == "verified"
    assert record.report["mutation"]["score"] == 1.0 and record.tests.startswith(FROZEN)


def test_a_repair_whose_suite_is_too_weak_is_current_but_experimental(tmp_path):
    from test_repair_routes import FIXED as REPAIR_FIX
    from test_repair_routes import REGRESSION, REPAIRED, library_with
    from test_repair_routes import TESTS as FROZEN
    from test_repair_routes import run as run_repair
    from test_repair_routes import script as repair_script

    library = library_with("def double_number(x):\n    return x  # passes # raises\n")
    sandbox = FakeSandbox(weak=True)
    repair = {"regression_test": REGRESSION, "code": REPAIR_FIX}
    route, state = run_repair(repair_script(tmp_path, [repair]), library, sandbox)
    assert [route] == REPAIRED  # never strengthened: no test of a frozen suite may change
    record = library.get("double_number")
    assert record.version == 2 and record.status == "experimental"
    assert "too weak to trust" in record.reason and record.tests.startswith(FROZEN)
    assert state["result"] == 42 and "too weak to trust" in state["answer"]
