"""retrieve: start a step, and search the library with its self-contained request.

Every step of a plan starts here (the router after ``execute`` comes back while steps
remain): the per-step fields are reset, and the search never sees the history. A step that
runs a recorded workflow has its tool pinned and needs no search.
"""

from __future__ import annotations

from langgraph.runtime import Runtime
from langgraph.types import Overwrite

from tools_store.errors import LibraryError

from .answer import outcome_evidence, repaired
from .kit.context import Context
from .kit.dataflow import current_step, step_label
from .kit.node import event, library, node

# Fields that belong to one step of a plan (a turn's first step finds them reset already).
PER_STEP = {"search": {}, "decision": "", "judge": {}, "spec": {}, "tests": "",
            "tests_hash": "", "implementation": "", "report": {}, "tool": {}, "arguments": {},
            "result": None, "answer": "", "served": False, "cached": False, "failure": {},
            "repair": {}}


def finish_step(state: dict, runtime: Runtime[Context]) -> dict:
    """Keep what the step before this one taught, before its fields are reset.

    Its evidence is kept now (``answer`` keeps only the last step's), and a repair it went
    through becomes a note for the answer, which otherwise speaks of the last tool only.
    """
    update: dict = {}
    try:
        library(runtime).add_evidence(outcome_evidence(state, runtime.context.session_id))
    except LibraryError as exc:  # the plan goes on; only what the step teaches is lost
        event("retrieve", f"the step's evidence could not be kept: {exc}", level="warning")
    text = repaired(state).strip(" ()").rstrip(".")
    if text:
        update["warnings"] = [f"in step {state['step']}, {text}"]
    return update


@node("retrieve")
def retrieve(state: dict, runtime: Runtime[Context]) -> dict:
    """Rank the library's tools for the step's request."""
    step = current_step(state)
    update = {**(finish_step(state, runtime) if state.get("step") else {}), **PER_STEP,
              "attempts": Overwrite(0), "standalone_request": step["request"]}
    label = step_label(state)
    prefix = f"{label}: " if label else ""
    if step.get("tool"):
        event("retrieve", f"{prefix}{step['tool']['name']} v{step['tool']['version']} is "
              "pinned by a learned workflow", candidates=[])
        return update
    result = library(runtime).search(step["request"])
    top = [{"name": c.name, "similarity": c.similarity, "score": c.score,
            "conflict": c.conflict} for c in result.candidates[:3]]
    summary = ", ".join(f"{c['name']} (similarity {c['similarity']:.2f}, score "
                        f"{c['score']:.2f}{'; ' + c['conflict'] if c['conflict'] else ''})"
                        for c in top) or "no tools yet"
    event("retrieve", f"{prefix}candidates: {summary}", candidates=top)
    return {**update, "search": result.model_dump(mode="json")}
