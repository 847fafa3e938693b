"""register: the library's atomic registration, verified or experimental."""

from __future__ import annotations

from langgraph.runtime import Runtime

from sandbox.reports import NOT_A_VERDICT
from tools_store.errors import ToolExists
from tools_store.models import ToolSpec

from .kit.checks import tests_hash
from .kit.context import Context
from .kit.model import StepError
from .kit.node import event, library, node


@node("register")
def register(state: dict, runtime: Runtime[Context]) -> dict:
    """Register the tool: verified when its suite passed, experimental otherwise.

    When another session registered the same name meanwhile, its tool serves this request
    (and the answer says so) instead of the turn failing.
    """
    if tests_hash(state["tests"]) != state["tests_hash"]:
        raise StepError("the tests changed after they were frozen; refusing to register")
    report = state["report"]
    if report.get("status") in NOT_A_VERDICT:
        raise StepError("the sandbox never judged this code; refusing to register it")
    status = "verified" if report.get("status") == "passed" else "experimental"
    reason = "created" if status == "verified" else (
        f"created after {state.get('attempts', 0)} failed verifications")
    lib = library(runtime)
    tool_spec = ToolSpec.model_validate(state["spec"])
    try:
        record = lib.register(tool_spec, state["implementation"], state["tests"], report,
                              status=status, reason=reason)
    except ToolExists:
        record = lib.get(tool_spec.name)
        note = (f"another session registered {record.name} v{record.version} "
                f"({record.status}) while this one was building it, so that tool served "
                "this request")
        event("register", note, status=record.status)
        return {"tool": {"name": record.name, "version": record.version,
                         "status": record.status}, "warnings": [note]}
    message = f"registered {record.name} v{record.version} ({status})"
    if status == "experimental":
        message += ": its tests did not all pass"
    event("register", message, status=status)
    update: dict = {"tool": {"name": record.name, "version": record.version,
                             "status": status}}
    problem = lib.mirror_problem(record.name, record.version)
    if problem:
        update["warnings"] = [f"{record.name} is registered, but its readable files could "
                              f"not be written ({problem}); `sea tools reconcile` repairs them"]
        event("register", update["warnings"][0], level="warning")
    return update
