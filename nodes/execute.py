"""execute: extract arguments into the tool's schema, validate them, call it in the sandbox.

A step of a plan is given its inputs first (values, files of earlier steps, session items):
inputs named like a parameter are bound as they are, the model extracts the rest. What the
call returns and every file it wrote are kept as session items at once, so the results of
the steps that ran stay even when a later step fails; then the cursor moves on.

A call that fails through the code's own fault is a failure in use, which the graph sends to
be repaired: it raised on arguments that validated, returned another type than the spec
declares, or ran out of time or memory. In a plan, the failure keeps the step's files, so
the repair is proven and gated on what the step was given, and the repaired version reruns
the same step. A sandbox that cannot run anything is not one, nor is a declared output file
the tool did not write (the plan may have named it wrongly): those end the turn.
A deterministic tool's result for the same version, arguments and input files comes from
the execution cache while the policy's time limit lasts; nothing else is ever cached.
"""

from __future__ import annotations

import json
from pathlib import Path

from langgraph.runtime import Runtime

from sandbox.reports import NOT_A_VERDICT, CallResult, no_verdict_message
from state.replies import ArgsReply
from tools_store.cache import file_hashes
from tools_store.library import code_hash
from tools_store.models import ToolRecord
from tools_store.text import storable, unstorable

from .kit.checks import check_arguments, check_result
from .kit.context import Context
from .kit.dataflow import StepData, add_named_files, bind_values, current_step, resolve_inputs
from .kit.model import StepError, invoke_structured
from .kit.node import event, history_text, library, model, node, sandbox, session_of
from .kit.workflow import pinned_arguments

INSTRUCTIONS = (
    "Extract the arguments for a call of the tool from the request (and the conversation, "
    "for follow-ups). Use exactly the parameter names of the schema and JSON values of the "
    "right types; convert units only if the schema asks for another unit.")
# Statuses of a call that are the code's fault; host-side refusals of the input are not.
CODE_FAULTS = ("error", "timeout", "out_of_memory")
HOST_REFUSALS = ("InvalidArguments", "InputFiles")


def failure_of(call: CallResult, record: ToolRecord, arguments: dict) -> dict:
    """Return the failure in use a call shows, or {} when it succeeded or could not run."""
    if call.ok:
        wrong = check_result(call.result, record.spec)
        kind, why = ("wrong_type", f"returned the wrong type: {wrong}") if wrong else ("", "")
    elif call.status in CODE_FAULTS and call.error_type not in HOST_REFUSALS:
        kind = "raised" if call.status == "error" else call.status
        why = call.describe_error()
    else:
        return {}
    if not kind:
        return {}
    return {"kind": kind, "version": record.version, "arguments": arguments,
            "output": call.result, "message": f"{record.name} v{record.version} failed: {why}"}


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


def _step_data(state: dict, runtime: Runtime[Context], record: ToolRecord
               ) -> tuple[StepData, dict, dict]:
    """Gather the step's files and values; return them with the arguments and the usage."""
    lib, session = library(runtime), session_of(runtime)
    step, results = current_step(state), state.get("step_results") or []
    data = resolve_inputs(step, results, lib.sessions, session)
    for path in runtime.context.input_files:  # the user's files, kept as items by enrich
        item = lib.sessions.get(session, Path(path).name)
        data.add_file(item["name"], lib.sessions.read(session, item["name"]),
                      {"item": item["name"]})
    usage: dict = {}
    try:
        if state.get("failure"):  # a repaired tool reruns the call that failed
            arguments = state["failure"]["arguments"]
        elif step.get("bindings"):  # a learned workflow's step: its arguments are known
            arguments = check_arguments(pinned_arguments(step, results, data), record.spec)
        elif "arguments" in step:  # a composite serving a learned workflow
            arguments = check_arguments(step["arguments"], record.spec)
        else:
            arguments, usage = extract_arguments(state, runtime, record, data.values,
                                                 sorted(data.files))
    except ValueError as exc:
        raise StepError(f"the arguments for {record.name} are not valid: {exc}") from exc
    add_named_files(data, arguments, results, lib.sessions, session)
    for origin in data.origins.values():
        if "item" in origin:
            item = lib.sessions.get(session, origin["item"])
            origin.update(path=item["path"], sha256=item["sha256"])
        elif "from_step" in origin:  # where a repair finds the file again
            origin["path"] = results[origin["from_step"] - 1]["files"][origin["output"]]["path"]
    return data, arguments, usage


def _keep(state: dict, runtime: Runtime[Context], record: ToolRecord, call: CallResult,
          result, arguments: dict, data: StepData) -> dict:
    """Keep a step's result and files as session items; move the cursor to the next step."""
    lib, session, turn = library(runtime), session_of(runtime), state.get("turn", 1)
    index, step = state.get("step", 0), current_step(state)
    number = index + 1 if len(state.get("steps") or []) > 1 else None
    written = {}
    for output in call.files:
        item = lib.sessions.add_file(session, turn, output.name, output.content, "output",
                                     step=number)
        written[output.name] = {"item": item["name"], "path": item["path"],
                                "sha256": item["sha256"], "size": item["size"]}
    value = lib.sessions.add_value(session, turn, f"result_t{turn}"
                                   + (f"_s{number}" if number else ""), result, "result",
                                   step=number)
    return {"step": index + 1, "step_results": [{
        "step": index + 1, "request": step["request"],
        "tool": {"name": record.name, "version": record.version}, "arguments": arguments,
        "result": result, "files": written, "origins": data.origins,
        "items": [value["name"]] + [w["item"] for w in written.values()]}]}


@node("execute")
def execute(state: dict, runtime: Runtime[Context]) -> dict:
    """Run the tool once, log the execution, keep its results as session data."""
    lib = library(runtime)
    record = lib.get(state["tool"]["name"], state["tool"]["version"])
    data, arguments, usage = _step_data(state, runtime, record)
    outputs = current_step(state).get("outputs") or []
    update = {"arguments": arguments, "usage": usage}
    # Only a deterministic tool's result may come from the cache (never an unknown one), and
    # only when the step wants no files back: the cache keeps results, not files.
    ttl = int(state["policy"].get("cache_ttl_seconds", 0))
    cacheable = (record.spec.deterministic and ttl > 0 and not state.get("failure")
                 and not outputs and not record.components)
    # The call's files, hashed once: the cache's key, and logged with the run (a repair
    # replays it on these only).
    read = file_hashes(data.files)
    if cacheable:
        found, result = lib.cached_result(record, arguments, read)
        if found:
            lib.record_execution(record.name, record.version, arguments, result, True,
                                 session_id=runtime.context.session_id,
                                 request=state["standalone_request"], cached=True, files=read)
            event("execute", f"result (from the cache): {json.dumps(result)[:300]}", ok=True,
                  cached=True, result=result)
            return {**update, "result": result, "served": True, "cached": True,
                    **_keep(state, runtime, record, CallResult(ok=True, status="ok"), result,
                            arguments, data)}
    # An experimental tool runs under the policy's tighter limits until a repair verifies it.
    limits = state["policy"]["experimental_limits"] if record.status == "experimental" else None
    event("execute", f"calling {record.name} v{record.version}({json.dumps(arguments)[:200]})"
          + (f" under the tighter limits of an experimental tool {limits}" if limits else ""),
          arguments=arguments)
    modules = lib.component_modules(record) if record.components else None
    call = sandbox(runtime, limits).call(record.code, record.name, arguments, files=data.files,
                                         modules=modules, outputs=outputs or None)
    if call.status in NOT_A_VERDICT:  # says nothing about the tool: not logged against it
        update["error"] = no_verdict_message(call.status, call.error, record.name)
        event("execute", update["error"], ok=False, level="error")
        return update
    result = storable(call.result)  # what the log and the session can hold
    if call.ok and unstorable(call.result):
        update["warnings"] = [f"the result held {unstorable(call.result)}, shown escaped"]
    failure = failure_of(call, record, arguments)
    if failure:  # a repair is proven and gated on the files this call was given
        failure["files"] = {name: origin["path"] for name, origin in data.origins.items()
                            if origin.get("path")}
    rollback = lib.record_execution(
        record.name, record.version, arguments, result if call.ok else None,
        call.ok and not failure, failure.get("message", "") or call.describe_error(),
        call.duration, runtime.context.session_id, state["standalone_request"],
        code_hash=code_hash(record.code), files=read)
    if rollback:
        event("execute", f"rolled {record.name} back to v{rollback['to_version']}: "
              f"{rollback['reason']}", level="warning")
    update["failure"] = failure
    missing = [f"{f.name} ({f.error})" for f in call.files if f.error]
    if failure:
        event("execute", failure["message"], ok=False, level="error", failure=failure)
    elif not call.ok:
        update["error"] = f"{record.name} could not run: {call.describe_error()}"
        event("execute", update["error"], ok=False, level="error")
    elif missing:
        update["error"] = (f"{record.name} did not give the files the step needs: "
                           + ", ".join(missing))
        event("execute", update["error"], ok=False, level="error")
    else:
        if cacheable:
            lib.cache_result(record, arguments, read, result, ttl)
        update.update(result=result, served=True,
                      **_keep(state, runtime, record, call, result, arguments, data))
        kept = ", ".join(update["step_results"][0]["items"])
        event("execute", f"result: {json.dumps(result)[:300]} (kept as {kept})", ok=True,
              duration=call.duration, result=result,
              files=sorted(update["step_results"][0]["files"]))
    return update
