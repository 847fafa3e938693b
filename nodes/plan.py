"""plan: make the request self-contained, and split it into steps with data flow.

A request close to a recorded workflow with enough evidence runs the proven sequence
without a planning reply (the decision is ``decide.choose_workflow``): only its arguments
are extracted. Otherwise the model plans; a plan is checked before anything runs.
"""

from __future__ import annotations

import re

from langgraph.runtime import Runtime

from state.replies import ArgsReply, PlanReply

from .decide import choose_workflow
from .kit.checks import check_arguments
from .kit.context import Context
from .kit.dataflow import check_plan, plan_steps
from .kit.model import StepError, invoke_structured
from .kit.node import event, history_text, library, model, node
from .kit.workflow import workflow_spec, workflow_steps

CREATE = re.compile(r"\b(create|build|make|write|generate|develop)\b.{0,40}\b(tool|function)\b",
                    re.IGNORECASE)
INSTRUCTIONS = (
    "You plan how an agent that builds and reuses Python tools will serve a request. Rewrite "
    "the request so it stands alone (resolve 'the same', 'it', 'now for 451', 'that data' "
    "from the conversation and the session data; keep every value). kind is 'single' when one "
    "function can do it, 'multi' when it needs several tools in sequence. For multi, list the "
    "steps in order: each a self-contained request one tool can serve, with its inputs "
    "(a literal value, {\"from_step\": n} for the output of an earlier step numbered from 1, "
    "or {\"item\": name} for session data) and the files it writes (outputs). A single step "
    "that uses session data or writes files may be given as the one step. new_tool: true only "
    "when the user insists on a new tool even though one may exist ('a new one anyway').")
ARGS_INSTRUCTIONS = (
    "Extract the arguments of a learned workflow from the request (and the conversation and "
    "session data, for follow-ups). Use exactly the parameter names of the schema and JSON "
    "values of the right types.")


def run_workflow(state: dict, runtime: Runtime[Context]) -> dict | None:
    """Return the update that runs a recorded workflow, or None when none fits."""
    lib = library(runtime)
    chosen, reason = choose_workflow(lib.workflows.candidates(state["request"]),
                                     state["request"], state["policy"])
    if chosen is None:
        if reason:
            event("plan", f"no workflow reused: {reason}")
        return None
    spec = workflow_spec(chosen)
    holder: dict = {}

    def check(reply: ArgsReply) -> None:
        holder["arguments"] = check_arguments(reply.arguments, spec)

    body = f"Arguments schema:\n{spec.arguments_schema()}\n\n{history_text(state)}"
    _, usage = invoke_structured(model(runtime), "args", ARGS_INSTRUCTIONS, state["request"],
                                 body, ArgsReply, check)
    steps = workflow_steps(chosen, holder["arguments"])
    if chosen.get("composite"):  # promoted: one tool does the whole sequence
        steps = [{"request": state["request"], "inputs": {}, "outputs": steps[-1]["outputs"],
                  "tool": {"name": chosen["composite"], "version": chosen["composite_version"]},
                  "arguments": holder["arguments"]}]
    names = " -> ".join(s["tool"]["name"] for s in steps)
    event("plan", f"workflow {chosen['id']} reused ({reason}): {names}",
          workflow=chosen["id"], arguments=holder["arguments"])
    return {"plan": {"kind": "workflow", "standalone_request": state["request"],
                     "workflow": chosen["id"]},
            "standalone_request": state["request"], "steps": steps, "step": 0,
            "workflow": {"id": chosen["id"], "similarity": chosen["similarity"],
                         "arguments": holder["arguments"],
                         "composite": chosen.get("composite") or ""},
            "usage": {"args": usage}}


@node("plan")
def plan(state: dict, runtime: Runtime[Context]) -> dict:
    """Plan the turn; "create a tool that ..." is honoured, insisting on a new one too.

    A learned workflow close enough to the request runs as recorded, without planning (not
    when a tool is to be created). An explicit request to create a tool reuses one only when
    the rule finds the same tool; a user who insists (the plan says so, or the run's
    ``new_tool`` setting) gets a new tool under a new name: the spec step refuses a taken name.
    """
    forced = bool(CREATE.search(state["request"]))
    if not forced and not runtime.context.new_tool:
        reused = run_workflow(state, runtime)
        if reused:
            return reused
    reply, usage = invoke_structured(model(runtime), "plan", INSTRUCTIONS, state["request"],
                                     history_text(state), PlanReply)
    new_tool = bool(runtime.context.new_tool or reply.new_tool)
    steps = plan_steps(reply)
    update = {"plan": reply.model_dump(), "standalone_request": reply.standalone_request,
              "force_synthesis": forced or new_tool, "new_tool": new_tool,
              "usage": {"plan": usage}, "steps": steps, "step": 0}
    problem = check_plan(steps, state.get("items") or [], state["policy"]["max_steps"])
    if problem:
        raise StepError(f"the plan cannot run: {problem}")
    message = f"{reply.kind} tool: {reply.standalone_request}" + (
        " (a new tool, as asked)" if new_tool else
        " (explicit request to create a tool)" if forced else "")
    if len(steps) > 1:
        message = f"{len(steps)} steps: " + "; ".join(
            f"{n}. {s['request']}" for n, s in enumerate(steps, 1))
    event("plan", message, plan=reply.model_dump())
    return update
