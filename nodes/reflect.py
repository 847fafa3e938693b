"""reflect: show the model the real failures and get a fixed implementation (tests frozen)."""

from __future__ import annotations

from langgraph.runtime import Runtime

from sandbox.reports import VerifyReport
from state.replies import ImplReply
from tools_store.models import ToolSpec

from .impl import implementation_prompt
from .kit.checks import check_implementation
from .kit.context import Context
from .kit.model import invoke_structured
from .kit.node import event, library, model, node

INSTRUCTIONS = (
    "Your implementation failed its frozen tests. Fix the implementation so that every test "
    "passes. The tests are correct and cannot change: reply with the whole corrected module.")
STRENGTHEN_EVIDENCE = (
    "Your implementation passes its frozen tests, but tests written since to strengthen the "
    "suite fail on it (they are shown with their failures). If they follow the specification, "
    "the implementation is wrong: fix it, keeping every frozen test passing, and reply with "
    "the whole corrected module.")


@node("reflect")
def reflect(state: dict, runtime: Runtime[Context]) -> dict:
    """Write a corrected implementation from the failing tests and their messages."""
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
