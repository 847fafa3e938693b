"""register: the library's atomic registration, verified or experimental."""

from __future__ import annotations

from langgraph.runtime import Runtime

from tools_store.models import ToolSpec

from .kit.checks import tests_hash
from .kit.context import Context
from .kit.model import StepError
from .kit.node import event, library, node


@node("register")
def register(state: dict, runtime: Runtime[Context]) -> dict:
    """Register the tool: verified when its suite passed, experimental otherwise."""
    if tests_hash(state["tests"]) != state["tests_hash"]:
        raise StepError("the tests changed after they were frozen; refusing to register")
    report = state["report"]
    status = "verified" if report.get("status") == "passed" else "experimental"
    reason = "created" if status == "verified" else (
        f"created after {state.get('attempts', 0)} failed verifications")
    record = library(runtime).register(ToolSpec.model_validate(state["spec"]),
                                       state["implementation"], state["tests"], report,
                                       status=status, reason=reason)
    message = f"registered {record.name} v{record.version} ({status})"
    if status == "experimental":
        message += ": its tests did not all pass"
    event("register", message, status=status)
    return {"tool": {"name": record.name, "version": record.version, "status": status}}
