"""execute: extract arguments into the tool's schema, validate them, call it in the sandbox.

A step of a plan is given its inputs first (values, files of earlier steps, session items):
inputs named like a parameter are bound as they are, the model extracts the rest. What the
call returns and every file it wrote are kept as session items at once, so the results of
the steps that ran stay even when a later step fails; then the cursor moves on.
"""

from __future__ import annotations

import json
from pathlib import Path

from langgraph.runtime import Runtime

from state.replies import ArgsReply

from .kit.checks import check_arguments
from .kit.context import Context
from .kit.dataflow import add_named_files, bind_values, current_step, resolve_inputs
from .kit.model import StepError, invoke_structured
from .kit.node import event, history_text, library, model, node, sandbox, session_of
from .kit.workflow import pinned_arguments

INSTRUCTIONS = (
    "Extract the arguments for a call of the tool from the request (and the conversation, "
    "for follow-ups). Use exactly the parameter names of the schema and JSON values of the "
    "right types; convert units only if the schema asks for another unit.")


def extract_arguments(state: dict, runtime: Runtime[Context], record, values: dict,
                      files: list[str]) -> tuple[dict, dict]:
    """Return the call's arguments and the usage: bound inputs, the rest from the model."""
    bound = bind_values(values, record.spec)
    required = {p.name for p in record.spec.parameters if p.required}
    if bound and required <= set(bound):
        return check_arguments(bound, record.spec), {}
    given = "\n".join(f"{name} = {json.dumps(value)[:2000]}" for name, value in values.items())
    body = ("Tool arguments schema:\n" + json.dumps(record.spec.arguments_schema(), indent=2)
            + (f"\n\nInputs of this step (use them as given):\n{given}" if given else "")
            + ("\n\nFiles in the tool's working directory (pass them by these names): "
               + ", ".join(files) if files else "") + "\n\n" + history_text(state))
    holder: dict = {}

    def check(reply: ArgsReply) -> None:
        holder["arguments"] = check_arguments({**reply.arguments, **bound}, record.spec)

    try:
        _, usage = invoke_structured(model(runtime), "args", INSTRUCTIONS,
                                     state["standalone_request"], body, ArgsReply, check)
    except StepError as exc:
        raise StepError(f"could not extract valid arguments for {record.name}: {exc}") from exc
    return holder["arguments"], {"args": usage}


@node("execute")
def execute(state: dict, runtime: Runtime[Context]) -> dict:
    """Run the tool once, log the execution, keep its results as session data."""
    lib = library(runtime)
    record = lib.get(state["tool"]["name"], state["tool"]["version"])
    session, turn = session_of(runtime), state.get("turn", 1)
    step, index = current_step(state), state.get("step", 0)
    results = state.get("step_results") or []
    data = resolve_inputs(step, results, lib.sessions, session)
    for path in runtime.context.input_files:  # the user's files, kept as items by enrich
        item = lib.sessions.get(session, Path(path).name)
        data.add_file(item["name"], lib.sessions.read(session, item["name"]),
                      {"item": item["name"]})
    usage: dict = {}
    try:
        if step.get("bindings"):  # a learned workflow's step: its arguments are known
            arguments = check_arguments(pinned_arguments(step, results, data), record.spec)
        elif "arguments" in step:  # a composite serving a learned workflow
            arguments = check_arguments(step["arguments"], record.spec)
        else:
            arguments, usage = extract_arguments(state, runtime, record, data.values,
                                                 sorted(data.files))
    except ValueError as exc:
        raise StepError(f"the arguments for {record.name} are not valid: {exc}") from exc
    add_named_files(data, arguments, results, lib.sessions, session)
    for name, origin in data.origins.items():
        if "item" in origin:
            item = lib.sessions.get(session, origin["item"])
            origin.update(path=item["path"], sha256=item["sha256"])
    event("execute", f"calling {record.name}({json.dumps(arguments)[:200]})",
          arguments=arguments)
    modules = lib.component_modules(record) if record.components else None
    call = sandbox(runtime).call(record.code, record.name, arguments, files=data.files,
                                 modules=modules, outputs=step.get("outputs") or None)
    lib.record_execution(record.name, record.version, arguments,
                         call.result if call.ok else None, call.ok,
                         call.describe_error(), call.duration,
                         runtime.context.session_id, state["standalone_request"])
    update = {"arguments": arguments, "usage": usage}
    missing = [f"{f.name} ({f.error})" for f in call.files if f.error]
    if not call.ok or missing:
        update["error"] = (f"{record.name} failed: {call.describe_error()}" if not call.ok
                           else f"{record.name} did not give the files the step needs: "
                                + ", ".join(missing))
        event("execute", update["error"], ok=False, level="error")
        return update
    multi = len(state.get("steps") or []) > 1
    number = index + 1 if multi else None
    written = {}
    for output in call.files:
        item = lib.sessions.add_file(session, turn, output.name, output.content, "output",
                                     step=number)
        written[output.name] = {"item": item["name"], "path": item["path"],
                                "sha256": item["sha256"], "size": item["size"]}
    value = lib.sessions.add_value(session, turn, f"result_t{turn}"
                                   + (f"_s{number}" if multi else ""), call.result, "result",
                                   step=number)
    update.update(result=call.result, step=index + 1, step_results=[{
        "step": index + 1, "request": step["request"],
        "tool": {"name": record.name, "version": record.version}, "arguments": arguments,
        "result": call.result, "files": written, "origins": data.origins,
        "items": [value["name"]] + [w["item"] for w in written.values()]}])
    kept = ", ".join([value["name"]] + [w["item"] for w in written.values()])
    event("execute", f"result: {json.dumps(call.result)[:300]} (kept as {kept})", ok=True,
          duration=call.duration, result=call.result, files=sorted(written))
    return update
