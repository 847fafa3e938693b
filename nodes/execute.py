"""execute: extract arguments into the tool's schema, validate them, call it in the sandbox.

A deterministic tool's result for the same version, arguments and input files comes from
the execution cache while the policy's time limit lasts; nothing else is ever cached.
"""

from __future__ import annotations

import json
from pathlib import Path

from langgraph.runtime import Runtime

from sandbox.reports import NOT_A_VERDICT
from state.replies import ArgsReply
from tools_store.text import storable, unstorable

from .kit.checks import check_arguments
from .kit.context import Context
from .kit.model import StepError, invoke_structured
from .kit.node import event, history_text, library, model, node, sandbox

INSTRUCTIONS = (
    "Extract the arguments for a call of the tool from the request (and the conversation, "
    "for follow-ups). Use exactly the parameter names of the schema and JSON values of the "
    "right types; convert units only if the schema asks for another unit.")


@node("execute")
def execute(state: dict, runtime: Runtime[Context]) -> dict:
    """Run the tool once and log the execution."""
    lib = library(runtime)
    record = lib.get(state["tool"]["name"], state["tool"]["version"])
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
    arguments = holder["arguments"]
    update = {"arguments": arguments, "usage": {"args": usage}}
    # Only a deterministic tool's result may come from the cache (never an unknown one).
    ttl = int(state["policy"].get("cache_ttl_seconds", 0))
    cacheable = record.spec.deterministic and ttl > 0
    if cacheable:
        found, result = lib.cached_result(record, arguments, runtime.context.input_files)
        if found:
            lib.record_execution(record.name, record.version, arguments, result, True,
                                 session_id=runtime.context.session_id,
                                 request=state["standalone_request"], cached=True)
            event("execute", f"result (from the cache): {json.dumps(result)[:300]}", ok=True,
                  cached=True, result=result)
            return {**update, "result": result, "served": True, "cached": True}
    event("execute", f"calling {record.name}({json.dumps(arguments)[:200]})",
          arguments=arguments)
    call = sandbox(runtime).call(record.code, record.name, arguments,
                                 files=runtime.context.input_files)
    update = {"arguments": arguments, "usage": {"args": usage}}
    if call.status in NOT_A_VERDICT:  # says nothing about the tool: not logged against it
        update["error"] = (f"the sandbox is unavailable: {call.error}"
                           if call.status == "unavailable" else
                           f"the sandbox could not run {record.name}, for reasons outside it, "
                           f"twice: {call.error}")
        event("execute", update["error"], ok=False, level="error")
        return update
    result = storable(call.result)  # what the log and the session can hold
    if call.ok and unstorable(call.result):
        update["warnings"] = [f"the result held {unstorable(call.result)}, shown escaped"]
    lib.record_execution(record.name, record.version, arguments,
                         result if call.ok else None, call.ok,
                         call.describe_error(), call.duration,
                         runtime.context.session_id, state["standalone_request"])
    if call.ok:
        if cacheable:
            lib.cache_result(record, arguments, runtime.context.input_files, result, ttl)
        update.update(result=result, served=True)
        event("execute", f"result: {json.dumps(result)[:300]}", ok=True,
              duration=call.duration, result=result)
    else:
        update["error"] = f"{record.name} failed: {call.describe_error()}"
        event("execute", update["error"], ok=False, level="error")
    return update
