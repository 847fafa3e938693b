"""reflect: show the model what failed and get a fixed implementation.

Two modes. After a failed verification the model sees the real failing tests and fixes the
implementation (the tests are frozen). After a failure in use (repair mode: ``failure`` is
set) it sees the spec, the code, the frozen suite, the failing call, what went wrong, the
user's note and the earlier reflections on the tool, and writes a regression test and a
fix. The regression test is run against the current version and must fail there, or the
reply is refused (one retry with the reason); the new suite is the old one, byte-for-byte,
with the regression tests appended.
"""

from __future__ import annotations

import json

from langgraph.runtime import Runtime

from sandbox import SandboxError
from sandbox.reports import NOT_A_VERDICT, VerifyReport, no_verdict_message
from state.replies import ImplReply, RepairReply
from tools_store.models import ToolSpec

from .impl import implementation_prompt
from .kit.checks import check_implementation, check_regression, extend_suite, tests_hash
from .kit.context import Context
from .kit.dataflow import failure_files
from .kit.model import invoke_structured
from .kit.node import event, library, model, node, sandbox

INSTRUCTIONS = (
    "Your implementation failed its frozen tests. Fix the implementation so that every test "
    "passes. The tests are correct and cannot change: reply with the whole corrected module.")
REPAIR_INSTRUCTIONS = (
    "A tool failed in use. First write a regression test that captures this failure: new "
    "pytest test functions, importing the function with `from tool import NAME`, that fail on "
    "the current code and pass once it is fixed. Then fix the implementation and reply with "
    "the whole corrected module. The frozen tests are kept exactly as they are and must still "
    "pass: do not repeat, rename or change them.")
EARLIER_REFLECTIONS = 8
STRENGTHEN_EVIDENCE = (
    "Your implementation passes its frozen tests, but tests written since to strengthen the "
    "suite fail on it (they are shown with their failures). If they follow the specification, "
    "the implementation is wrong: fix it, keeping every frozen test passing, and reply with "
    "the whole corrected module.")


@node("reflect")
def reflect(state: dict, runtime: Runtime[Context]) -> dict:
    """Fix a failed verification, or repair a tool that failed in use."""
    if state.get("failure"):
        return repair(state, runtime)
    tool_spec = ToolSpec.model_validate(state["spec"])
    report = VerifyReport.model_validate(state["report"])
    evidence = state.get("strengthen") or {}
    instructions = INSTRUCTIONS
    if report.ok and evidence.get("fails_on_implementation"):
        # Tests offered to strengthen the suite failed here: refused, not frozen, but shown.
        report = VerifyReport.model_validate(evidence["report"])
        instructions = STRENGTHEN_EVIDENCE
    failures = [{"name": t.name, "message": t.message[-2000:]} for t in report.failures()]
    detail = "\n\n".join(f"{f['name']}:\n{f['message']}" for f in failures) or report.detail
    body = (implementation_prompt(state) + "\n\nYour implementation:\n"
            + state["implementation"] + f"\n\nResult: {report.summary()}\n{detail}\n"
            + "\n".join(report.collection_errors)[-3000:])
    reply, usage = invoke_structured(model(runtime), "reflect", instructions,
                                     state["standalone_request"], body, ImplReply,
                                     lambda r: check_implementation(r.code, tool_spec))
    library(runtime).log_reflection(tool_spec.name, state.get("attempts", 0), failures,
                                    reply.notes, runtime.context.session_id)
    event("reflect", f"reflection {state.get('attempts', 0)}: fixing {len(failures)} failing "
          "tests", code=reply.code)
    return {"implementation": reply.code, "usage": {"reflect": usage}}


def prove_failure(report: VerifyReport, names: list[str], version: int) -> str:
    """Return how the regression tests failed on the current version, or raise ValueError."""
    if report.status in NOT_A_VERDICT:
        raise SandboxError(no_verdict_message(report.status, report.detail))
    if report.status in ("timeout", "out_of_memory"):
        return f"on v{version} the regression tests ran into a limit ({report.detail})"
    outcomes: dict[str, str] = {}
    for test in report.tests:
        name = test.name.split("[", 1)[0]
        if outcomes.get(name) != "failed":
            outcomes[name] = test.outcome
    if not outcomes:
        problem = report.detail or "\n".join(report.collection_errors)[-600:]
        raise ValueError(f"the regression test could not run on v{version}: {problem}")
    not_failing = [f"{n} ({outcomes.get(n, 'did not run')})" for n in names
                   if outcomes.get(n) != "failed"]
    if not_failing:
        raise ValueError(
            f"the regression test does not fail on the current version v{version}: "
            f"{', '.join(not_failing)}. A regression test must fail on v{version} because of "
            "this failure; write one that does")
    return f"{', '.join(names)} failed on v{version}"


def repair_prompt(state: dict, record, reflections: list[dict]) -> str:
    """Return what the model sees to repair a tool that failed in use."""
    failure = state["failure"]
    parts = ["Specification:\n" + json.dumps(record.spec.model_dump(), indent=2),
             f"Current code (v{record.version}):\n{record.code}",
             "Frozen tests (kept byte-for-byte):\n" + record.tests,
             "Failing call arguments: " + json.dumps(failure["arguments"]),
             "What went wrong: " + failure["message"]]
    if failure.get("note"):
        parts.append("The user's note: " + failure["note"])
    refused = (state.get("repair") or {}).get("refused")
    if refused:
        parts.append("Your previous repair was refused: " + refused)
    earlier = [f"- {r['kind']} reflection {r['attempt']}"
               + (f" on v{r['version']}" if r.get("version") else "")
               + f": failing {', '.join(str(f.get('name', '')) for f in r['failing_tests'])}"
               + (f"; note: {r['note']}" if r["note"] else "")
               for r in reflections[-EARLIER_REFLECTIONS:]]
    if earlier:
        parts.append("Earlier reflections on this tool:\n" + "\n".join(earlier))
    return "\n\n".join(parts)


def repair(state: dict, runtime: Runtime[Context]) -> dict:
    """Write a regression test proven to fail on the current version, and a fix."""
    failure = state["failure"]
    lib = library(runtime)
    record = lib.get(state["tool"]["name"], failure["version"])
    attempt = state.get("repairs", 0) + 1
    # The proof runs under the limits the failing version runs under.
    limits = state["policy"]["experimental_limits"] if record.status == "experimental" else None
    proof: dict = {}
    # The proof runs on what the failed call was given (a plan's step: its own files).
    files = failure_files(state, runtime.context.input_files)
    modules = lib.component_modules(record) if record.components else None

    def check(reply: RepairReply) -> None:
        check_implementation(reply.code, record.spec)
        names = check_regression(reply.regression_test, record.spec, record.tests)
        report = sandbox(runtime, limits).verify(record.code, reply.regression_test,
                                                 files=files, modules=modules)
        proof.update(names=names, summary=prove_failure(report, names, record.version))

    reply, usage = invoke_structured(model(runtime), "repair", REPAIR_INSTRUCTIONS,
                                     state["standalone_request"],
                                     repair_prompt(state, record, lib.reflections(record.name)),
                                     RepairReply, check)
    tests = extend_suite(record.tests, reply.regression_test,
                         f"a repair of v{record.version} ({failure['kind']})")
    lib.log_reflection(record.name, attempt, [{"name": "in use", "message": failure["message"],
                                               "arguments": failure["arguments"]}],
                       reply.notes, runtime.context.session_id, kind="repair",
                       version=record.version,
                       details={"regression_tests": proof["names"], "proof": proof["summary"],
                                "failure_kind": failure["kind"], "note": failure.get("note")})
    event("reflect", f"repair {attempt} of {record.name} v{record.version}: regression test "
          f"{', '.join(proof['names'])} proven to fail ({proof['summary']}); fix written",
          code=reply.code, tests=reply.regression_test)
    return {"spec": record.spec.model_dump(), "implementation": reply.code, "tests": tests,
            "tests_hash": tests_hash(tests), "repairs": 1, "usage": {"repair": usage},
            "repair": {"from_version": record.version, "attempt": attempt,
                       "tests_added": proof["names"], "proof": proof["summary"],
                       "notes": reply.notes}}
