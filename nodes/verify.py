"""verify: run the frozen suite against the implementation in the sandbox."""

from __future__ import annotations

from langgraph.runtime import Runtime

from sandbox.reports import NOT_A_VERDICT, no_verdict_message

from .kit.checks import tests_hash
from .kit.context import Context
from .kit.model import StepError
from .kit.node import event, node, sandbox


@node("verify")
def verify(state: dict, runtime: Runtime[Context]) -> dict:
    """Verify, after proving the suite is the one that was frozen.

    Only a verdict on the code goes on to reflection or registration: a sandbox that could
    not run, or whose run something outside the code broke (twice), ends the turn.
    """
    if tests_hash(state["tests"]) != state["tests_hash"]:
        raise StepError("the tests changed after they were frozen; refusing to verify")
    report = sandbox(runtime).verify(state["implementation"], state["tests"],
                                     files=runtime.context.input_files)
    update = {"report": report.model_dump(), "attempts": 1}
    if report.status in NOT_A_VERDICT:
        update["error"] = (no_verdict_message(report.status, report.detail)
                           + ". Nothing was registered.")
    elif report.ok and report.tool_calls == 0:
        spec_name = state["spec"]["name"]
        update["error"] = (f"the tests passed without calling {spec_name} once, so they "
                           "prove nothing about it; nothing was registered")
    failed = [{"name": t.name, "message": t.message[-400:]} for t in report.failures()]
    event("verify", f"sandbox: {report.summary()}", status=report.status,
          passed=report.passed, failed=report.failed, failures=failed)
    return update
