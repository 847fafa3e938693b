"""register: the library's atomic registration, verified or experimental.

A repair registers version N+1 of the tool it repaired, made current at once, after
proving that the suite it passed begins with the old version's frozen suite byte-for-byte.
"""

from __future__ import annotations

from langgraph.runtime import Runtime

from sandbox.reports import NOT_A_VERDICT, MutationReport
from tools_store.errors import ToolExists
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


def with_mutation(state: dict) -> dict:
    """Return the verification report with the mutation gate's outcome, stored with it."""
    report = dict(state["report"])
    if state.get("mutation"):
        report["mutation"] = state["mutation"]
        report["gate"] = {"min_mutation_score": state["policy"].get("min_mutation_score"),
                          "strengthened": state.get("strengthened", 0)}
    return report


@node("register")
def register(state: dict, runtime: Runtime[Context]) -> dict:
    """Register the tool: verified when its suite passed and killed enough mutants.

    When another session registered the same name meanwhile, its tool serves this request
    (and the answer says so) instead of the turn failing.
    """
    if tests_hash(state["tests"]) != state["tests_hash"]:
        raise StepError("the tests changed after they were frozen; refusing to register")
    if state.get("failure"):
        return register_repair(state, runtime)
    if state["report"].get("status") in NOT_A_VERDICT:
        raise StepError("the sandbox never judged this code; refusing to register it")
    status, reason = _verdict(state)
    report = with_mutation(state)
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
        message += ": " + reason.removeprefix("created ")
    event("register", message, status=status)
    update: dict = {"tool": {"name": record.name, "version": record.version,
                             "status": status}}
    problem = lib.mirror_problem(record.name, record.version)
    if problem:
        update["warnings"] = [f"{record.name} is registered, but its readable files could "
                              f"not be written ({problem}); `sea tools reconcile` repairs them"]
        event("register", update["warnings"][0], level="warning")
    return update


def register_repair(state: dict, runtime: Runtime[Context]) -> dict:
    """Register a repaired version that passed the gate and make it current."""
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
    # The gate passed it (old tests, regression tests, replay); "verified" still needs a
    # suite strong enough to trust, as for a new tool. It is made current either way: it
    # fixes a failure the current version is known to have.
    status, reason = _verdict(state)
    reason = f"repair of v{base.version}: {failure['message'][:200]}" + (
        "" if status == "verified" else f"; {reason.removeprefix('created ')}")
    record = lib.register(base.spec, state["implementation"], state["tests"],
                          with_mutation(state), status=status, new_version=True,
                          origin=origin, reason=reason, components=base.components or None)
    was = "" if base.status == status else f", was {base.status}"
    event("register", f"registered {record.name} v{record.version} ({status}{was}): repaired "
          f"from v{base.version}, now current", status=status)
    return {"tool": {"name": record.name, "version": record.version, "status": status},
            "repair": {**repair, "to_version": record.version}}
