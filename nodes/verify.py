"""verify: run the frozen suite against the implementation; when it passes, its mutants."""

from __future__ import annotations

from langgraph.runtime import Runtime

from sandbox import SandboxError, SandboxUnavailable
from sandbox.mutation import gate
from sandbox.reports import MutationReport

from .kit.checks import tests_hash
from .kit.context import Context
from .kit.model import StepError
from .kit.node import event, node, sandbox


@node("verify")
def verify(state: dict, runtime: Runtime[Context]) -> dict:
    """Verify, after proving the suite is the one that was frozen; then measure the suite."""
    if tests_hash(state["tests"]) != state["tests_hash"]:
        raise StepError("the tests changed after they were frozen; refusing to verify")
    box = sandbox(runtime)
    report = box.verify(state["implementation"], state["tests"],
                        files=runtime.context.input_files)
    # A new verification: the last strengthening's refusal was about another implementation.
    update = {"report": report.model_dump(), "attempts": 1, "mutation": {}, "strengthen": {}}
    if report.status == "unavailable":
        update["error"] = f"the sandbox is unavailable: {report.detail}"
    failed = [{"name": t.name, "message": t.message[-400:]} for t in report.failures()]
    event("verify", f"sandbox: {report.summary()}", status=report.status,
          passed=report.passed, failed=report.failed, failures=failed)
    limit = state["policy"].get("max_mutants", 0)
    if report.ok and limit > 0:
        try:
            mutation = gate(box, state["implementation"], state["tests"], report,
                            runtime.context.input_files, limit)
        except SandboxUnavailable:
            raise
        except SandboxError as exc:  # the gate could not measure: say so, gate nothing
            update["mutation"] = MutationReport(error=str(exc)).model_dump()
            event("verify", f"mutation gate: not measured ({exc})", level="warning")
            return update
        update["mutation"] = mutation.model_dump()
        event("verify", mutation.summary(), score=mutation.score,
              survivors=[m.description for m in mutation.survivors()])
    return update
