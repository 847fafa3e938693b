"""execute: extract arguments into the tool's schema, validate them, call it in the sandbox.

A call that fails through the code's own fault is a failure in use, which the graph sends to
be repaired: it raised on arguments that validated, returned another type than the spec
declares, or ran out of time or memory. A sandbox that cannot run anything is not one.
A deterministic tool's result for the same version, arguments and input files comes from
the execution cache while the policy's time limit lasts; nothing else is ever cached.
"""

from __future__ import annotations

import json
from pathlib import Path

from langgraph.runtime import Runtime

from sandbox.reports import NOT_A_VERDICT, CallResult, no_verdict_message
from state.replies import ArgsReply
from tools_store.library import code_hash
from tools_store.models import ToolRecord
from tools_store.text import storable, unstorable

from .kit.checks import check_arguments, check_result
from .kit.context import Context
from .kit.model import StepError, invoke_structured
from .kit.node import event, history_text, library, model, node, sandbox

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


def _arguments(state: dict, runtime: Runtime[Context], record: ToolRecord) -> tuple[dict, dict]:
    """Extract and validate the call's arguments (a repaired tool reruns the failed ones)."""
    if state.get("failure"):
        return state["failure"]["arguments"], {}
    files = [Path(f).name for f in runtime.context.input_files]
    body = ("Tool arguments schema:\n" + json.dumps(record.spec.arguments_schema(), indent=2)
            + ("\n\nFiles in the tool's working directory (pass them by these names): "
               + ", ".join(files) if files else "") + "\n\n" + history_text(state))
    holder: dict = {}

    def check(reply: ArgsReply) -> None:
        holder["arguments"] = check_arguments(reply.arguments, record.spec)

    try:
        _, usage = invoke_structured(model(runtime), "args", INSTRUCTIONS,
                                     state["standalone_request"], body, ArgsReply, check)
    except StepError as exc:
        raise StepError(f"could not extract valid arguments for {record.name}: {exc}") from exc
    return holder["arguments"], {"args": usage}



@node("execute")
def execute(state: dict, runtime: Runtime[Context]) -> dict:
    """Run the tool once and log the execution (with the hash of the code that ran)."""
    lib = library(runtime)
    record = lib.get(state["tool"]["name"], state["tool"]["version"])
    arguments, usage = _arguments(state, runtime, record)
    update = {"arguments": arguments, "usage": usage}
    # Only a deterministic tool's result may come from the cache (never an unknown one).
    ttl = int(state["policy"].get("cache_ttl_seconds", 0))
    cacheable = record.spec.deterministic and ttl > 0 and not state.get("failure")
    if cacheable:
        found, result = lib.cached_result(record, arguments, runtime.context.input_files)
        if found:
            lib.record_execution(record.name, record.version, arguments, result, True,
                                 session_id=runtime.context.session_id,
                                 request=state["standalone_request"], cached=True)
            event("execute", f"result (from the cache): {json.dumps(result)[:300]}", ok=True,
                  cached=True, result=result)
            return {**update, "result": result, "served": True, "cached": True}
    # An experimental tool runs under the policy's tighter limits until a repair verifies it.
    limits = state["policy"]["experimental_limits"] if record.status == "experimental" else None
    event("execute", f"calling {record.name} v{record.version}({json.dumps(arguments)[:200]})"
          + (f" under the tighter limits of an experimental tool {limits}" if limits else ""),
          arguments=arguments)
    call = sandbox(runtime, limits).call(record.code, record.name, arguments,
                                         files=runtime.context.input_files)
    if call.status in NOT_A_VERDICT:  # says nothing about the tool: not logged against it
        update["error"] = no_verdict_message(call.status, call.error, record.name)
        event("execute", update["error"], ok=False, level="error")
        return update
    result = storable(call.result)  # what the log and the session can hold
    if call.ok and unstorable(call.result):
        update["warnings"] = [f"the result held {unstorable(call.result)}, shown escaped"]
    failure = failure_of(call, record, arguments)
    rollback = lib.record_execution(
        record.name, record.version, arguments, result if call.ok else None,
        call.ok and not failure, failure.get("message", "") or call.describe_error(),
        call.duration, runtime.context.session_id, state["standalone_request"],
        code_hash=code_hash(record.code))
    if rollback:
        event("execute", f"rolled {record.name} back to v{rollback['to_version']}: "
              f"{rollback['reason']}", level="warning")
    update["failure"] = failure
    if failure:
        event("execute", failure["message"], ok=False, level="error", failure=failure)
    elif call.ok:
        if cacheable:
            lib.cache_result(record, arguments, runtime.context.input_files, result, ttl)
        update.update(result=result, served=True)
        event("execute", f"result: {json.dumps(result)[:300]}", ok=True,
              duration=call.duration, result=result)
    else:
        update["error"] = f"{record.name} could not run: {call.describe_error()}"
        event("execute", update["error"], ok=False, level="error")
    return update
