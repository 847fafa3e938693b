"""register: the library's atomic registration, verified or experimental.

A repair registers version N+1 of the tool it repaired, made current at once, after
proving that the suite it passed begins with the old version's frozen suite byte-for-byte.
"""

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
    if state.get("failure"):
        return register_repair(state, runtime)
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


def register_repair(state: dict, runtime: Runtime[Context]) -> dict:
    """Register a repaired version that passed the gate, as verified, and make it current."""
    lib = library(runtime)
    repair, failure = state["repair"], state["failure"]
    base = lib.get(state["tool"]["name"], repair["from_version"])
    if tests_hash(state["tests"][:len(base.tests)]) != tests_hash(base.tests):
        raise StepError(f"the repaired suite does not keep the frozen tests of v{base.version} "
                        "byte-for-byte; refusing to register")
    origin = {"kind": "repair", "from_version": base.version, "failure": failure,
              "tests_added": repair["tests_added"], "proof": repair["proof"],
              "replayed": repair.get("replayed", 0), "notes": repair.get("notes", ""),
              "session_id": runtime.context.session_id}
    record = lib.register(base.spec, state["implementation"], state["tests"], state["report"],
                          status="verified", new_version=True, origin=origin,
                          reason=f"repair of v{base.version}: {failure['message'][:200]}")
    was = "" if base.status == "verified" else f", was {base.status}"
    event("register", f"registered {record.name} v{record.version} (verified{was}): repaired "
          f"from v{base.version}, now current", status="verified")
    return {"tool": {"name": record.name, "version": record.version, "status": "verified"},
            "repair": {**repair, "to_version": record.version}}
