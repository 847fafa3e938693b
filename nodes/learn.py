"""learn: what a multi-step turn taught, written once at the end of the turn.

A plan that ran to the end is recorded as a workflow (a run of the same sequence adds to
its evidence); a turn that reused a workflow counts as one more run of it, failed or not.
A workflow that has earned it is promoted to a composite tool.
"""

from __future__ import annotations

from langgraph.runtime import Runtime

from .kit.composite import due, promote
from .kit.context import Context
from .kit.node import EXPECTED, event, library, model, node, sandbox, session_of
from .kit.workflow import learn_bindings, workflow_key


def run_record(state: dict, session: str, arguments: dict) -> dict:
    """Return what a workflow keeps of one run: its inputs and what the sequence gave."""
    results = state.get("step_results") or []
    files = {name: {"path": origin["path"], "sha256": origin["sha256"]}
             for r in results for name, origin in r["origins"].items() if "item" in origin}
    last = results[-1] if results and not state.get("error") else None
    return {"session_id": session, "request": state["request"], "arguments": arguments,
            "files": files, "result": last["result"] if last else None,
            "outputs": {n: f["sha256"] for n, f in last["files"].items()} if last else {},
            "error": state.get("error", ""), "reused": bool(state.get("workflow"))}


@node("learn")
def learn(state: dict, runtime: Runtime[Context]) -> dict:
    """Record the turn's workflow run; promote the workflow when the policy says it is due.

    The turn has been answered: a failure here is reported as an event, never as the turn's
    error.
    """
    try:
        record_and_promote(state, runtime)
    except EXPECTED as exc:
        event("learn", f"nothing learned from this turn: {exc}", level="error")
    return {}


def record_and_promote(state: dict, runtime: Runtime[Context]) -> None:
    """Record the run (creating the workflow on a plan's first success); promote when due."""
    lib = library(runtime)
    session = session_of(runtime)
    reused = state.get("workflow") or {}
    ok = not state.get("error")
    if reused:
        workflow = lib.workflows.add_run(reused["id"], run_record(state, session,
                                                                  reused["arguments"]), ok)
    else:
        results = state["step_results"]
        specs = {r["tool"]["name"]: lib.get(r["tool"]["name"], r["tool"]["version"]).spec
                 for r in results}
        recorded, params = learn_bindings(state["steps"], results, specs)
        arguments = {b["param"]: r["arguments"][arg] for s, r in zip(recorded, results,
                                                                     strict=True)
                     for arg, b in s["bindings"].items() if "param" in b}
        returns = specs[recorded[-1]["tool"]].returns.model_dump()
        workflow = lib.workflows.record(
            workflow_key(recorded), state["request"], state["plan"]["standalone_request"],
            recorded, params, returns, run_record(state, session, arguments), True)
    rate = workflow["success_rate"] or 0
    event("learn", f"workflow {workflow['id']}: {workflow['successes']} of {workflow['uses']} "
          f"runs succeeded ({rate:.0%})", workflow=workflow["id"])
    if due(workflow, state["policy"]):
        event("learn", f"promoting workflow {workflow['id']} to a composite tool")
        outcome = promote(workflow, lib, sandbox(runtime), model(runtime), state["policy"])
        message = (f"composite {outcome['tool']} v{outcome['version']} registered; replay "
                   f"tests: {', '.join(outcome['replay_tests'])}"
                   if outcome["status"] == "promoted"
                   else f"promotion failed: {outcome['reason']}")
        event("learn", message, promotion=outcome,
              level="error" if outcome["status"] != "promoted" else "info")
