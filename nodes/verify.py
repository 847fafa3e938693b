"""verify: run the frozen suite against the implementation; when it passes, its mutants."""

from __future__ import annotations

from langgraph.runtime import Runtime

from sandbox import SandboxError, SandboxUnavailable
from sandbox.mutation import gate
from sandbox.reports import NOT_A_VERDICT, no_verdict_message

from .kit.checks import tests_hash
from .kit.context import Context
from .kit.model import StepError
from .kit.node import event, node, sandbox


@node("verify")
def verify(state: dict, runtime: Runtime[Context]) -> dict:
    """Verify, after proving the suite is the one that was frozen; then measure the suite.

    Only a verdict on the code goes on to reflection or registration: a sandbox that could
    not run, or whose run something outside the code broke (twice), ends the turn. Only a
    pass that ends nothing gets its mutants run.
    """
    if tests_hash(state["tests"]) != state["tests_hash"]:
        raise StepError("the tests changed after they were frozen; refusing to verify")
    box = sandbox(runtime)
    report = box.verify(state["implementation"], state["tests"],
                        files=runtime.context.input_files)
    # A new verification: the last strengthening's refusal was about another implementation.
    update = {"report": report.model_dump(), "attempts": 1, "mutation": {}, "strengthen": {}}
    if report.status in NOT_A_VERDICT:
        update["error"] = (no_verdict_message(report.status, report.detail)
                           + ". Nothing was registered.")
    elif report.ok and report.tool_calls == 0:
        spec_name = state["spec"]["name"]
        update["error"] = (f"the tests passed without calling {spec_name} once, so they "
                           "prove nothing about it; nothing was registered")
    failed = [{"name": t.name, "message": t.message[-400:]} for t in report.failures()]
    event("verify", f"sandbox: {report.summary()}", status=report.status,
          passed=report.passed, failed=report.failed, failures=failed, backend=report.backend)
    limit = state["policy"].get("max_mutants", 0)
    if report.ok and limit > 0 and not update.get("error"):
        update["mutation"] = measure(box, state["implementation"], state["tests"], report,
                                     runtime.context.input_files, limit, "verify")
    return update


def measure(box, implementation: str, tests: str, report, files, limit: int,
            step: str) -> dict:
    """Run a passing suite against the implementation's mutants; return the MutationReport.

    A gate the sandbox could not run (a fault even after the sandbox's own retry) ends the
    turn and nothing is registered: unmeasured, the suite would pass as strong enough, and a
    tool's lasting status must never come from a fault.
    """
    try:
        mutation = gate(box, implementation, tests, report, files, limit, starting=lambda count:
                        event(step, f"mutation gate: running the suite against {count} "
                              "mutants of the code"))
    except SandboxUnavailable:
        raise
    except SandboxError as exc:
        raise SandboxError(f"the sandbox failed while the mutation gate measured the suite "
                           f"({exc}); nothing is registered on an unmeasured suite, try "
                           "again") from exc
    event(step, mutation.summary(), score=mutation.score,
          survivors=[m.description for m in mutation.survivors()])
    return mutation.model_dump()
