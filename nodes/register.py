"""register: the library's atomic registration, verified or experimental."""

from __future__ import annotations

from langgraph.runtime import Runtime

from sandbox.reports import MutationReport
from tools_store.models import ToolSpec

from .kit.checks import tests_hash
from .kit.context import Context
from .kit.model import StepError
from .kit.node import event, library, node
from .strengthen import suite_too_weak


def _verdict(state: dict) -> tuple[str, str]:
    """Return the status and the reason: verified only if the suite passed and is strong."""
    policy = state["policy"]
    if state["report"].get("status") != "passed":
        return "experimental", f"created after {state.get('attempts', 0)} failed verifications"
    if suite_too_weak(state.get("mutation"), policy):
        summary = MutationReport.model_validate(state["mutation"]).summary()
        return "experimental", (f"created with a suite too weak to trust: {summary}; "
                                f"{policy['min_mutation_score']:.0%} needed")
    return "verified", "created"


@node("register")
def register(state: dict, runtime: Runtime[Context]) -> dict:
    """Register the tool: verified when its suite passed and killed enough mutants."""
    if tests_hash(state["tests"]) != state["tests_hash"]:
        raise StepError("the tests changed after they were frozen; refusing to register")
    status, reason = _verdict(state)
    report = dict(state["report"])
    if state.get("mutation"):
        report["mutation"] = state["mutation"]
        report["gate"] = {"min_mutation_score": state["policy"].get("min_mutation_score"),
                          "strengthened": state.get("strengthened", 0)}
    record = library(runtime).register(ToolSpec.model_validate(state["spec"]),
                                       state["implementation"], state["tests"], report,
                                       status=status, reason=reason)
    message = f"registered {record.name} v{record.version} ({status})"
    if status == "experimental":
        message += ": " + reason.removeprefix("created ")
    event("register", message, status=status)
    return {"tool": {"name": record.name, "version": record.version, "status": status}}
