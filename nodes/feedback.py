"""feedback: the user marked the session's last answer wrong; make it a failure in use.

The execution that gave the answer is marked wrong (it is never replayed as a good output
again), and the tool version that gave it goes to ``reflect`` to be repaired, with the
user's note; the repaired version then serves the same call again.
"""

from __future__ import annotations

import json

from langgraph.runtime import Runtime

from .kit.context import Context
from .kit.model import StepError
from .kit.node import event, library, node


@node("feedback")
def feedback(state: dict, runtime: Runtime[Context]) -> dict:
    """Mark the session's last execution wrong and describe it as a failure to repair."""
    lib = library(runtime)
    last = lib.last_execution(runtime.context.session_id)
    if last is None or last["name"] != state["failure"].get("tool"):
        raise StepError("the last answer did not come from a tool, so there is nothing to "
                        "repair")
    seen = state["failure"].get("seen")
    if seen is not None and seen != last["id"]:
        # A second thumbs-down on the same answer (a double click, a second tab) ran after
        # the first one's repair: the last answer now is the repaired version's.
        raise StepError("that answer has been followed by another since (the repair of an "
                        "earlier thumbs-down, most likely); mark the newest answer if it is "
                        "wrong too")
    note = state["failure"].get("note", "")
    lib.mark_wrong(last["id"], note)
    record = lib.get(last["name"], last["version"])
    current = lib.get(last["name"])
    retired = not lib.name_taken(last["name"])  # a version's own status never says so
    if retired or current.version != record.version:
        # Repairing the older version would replace the newer one (and drop its tests).
        now = ("it has been retired since" if retired else
               f"v{current.version} is current now; ask again to see its answer, and mark "
               "that one if it is wrong too")
        raise StepError(f"that answer came from {record.name} v{record.version}, and {now}. "
                        "The answer is kept as wrong")
    gave = (json.dumps(last["output"])[:300] if last["success"]
            else f"an error ({last['error'][:300]})")
    message = (f"{record.name} v{record.version} answered {gave} for "
               f"{json.dumps(last['inputs'])[:300]}, which the user marked wrong"
               + (f": {note}" if note else ""))
    event("feedback", message)
    return {"failure": {"kind": "marked_wrong", "version": record.version,
                        "arguments": last["inputs"], "output": last["output"],
                        "message": message, "note": note, "execution": last["id"]},
            "tool": {"name": record.name, "version": record.version, "status": record.status},
            "arguments": last["inputs"],
            "standalone_request": last["request"] or state["request"]}
