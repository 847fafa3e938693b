"""decide: reuse a tool or synthesize one; in the verify band a model judges the candidate."""

from __future__ import annotations

from langgraph.runtime import Runtime

from graph.context import Context
from graph.model import invoke_structured
from state.replies import JudgeReply
from tools_store.models import SearchResult
from tools_store import discovery

from .common import event, library, model, node

INSTRUCTIONS = (
    "Judge whether an existing tool really serves the request. It serves it only if the "
    "request's inputs map onto the tool's parameters and the tool computes what is asked, in "
    "the same direction (Celsius to Fahrenheit is not Fahrenheit to Celsius).")


@node("decide")
def decide(state: dict, runtime: Runtime[Context]) -> dict:
    """Turn the library's ranking into this turn's decision."""
    result = SearchResult.model_validate(state["search"])
    overrides = {"reuse": runtime.context.reuse_threshold,
                 "verify": runtime.context.verify_threshold}
    limits = {**result.thresholds, **{k: v for k, v in overrides.items() if v is not None}}
    decision, chosen, reason = discovery.decide(result.candidates, limits["reuse"],
                                                limits["verify"])
    update: dict = {"usage": {}}
    if decision == "verify" and chosen is not None and not state.get("force_synthesis"):
        record = library(runtime).get(chosen.name)
        body = (f"Candidate tool: {record.spec.signature()}\n{record.spec.description}\n"
                f"{record.spec.docstring}\nConcern: {reason}")
        verdict, usage = invoke_structured(model(runtime), "judge", INSTRUCTIONS,
                                           state["standalone_request"], body, JudgeReply)
        update["judge"] = verdict.model_dump()
        update["usage"] = {"judge": usage}
        decision = "reuse" if verdict.serves else "synthesize"
        reason = f"judge: {verdict.reason or ('serves' if verdict.serves else 'does not')}"
    if state.get("force_synthesis") and decision != "reuse":
        reason = "explicit request to create a tool; " + reason
    if decision == "reuse" and chosen is not None:
        update["tool"] = {"name": chosen.name, "version": chosen.version,
                          "status": chosen.status}
        if state.get("force_synthesis"):
            reason = f"a near-identical tool exists ({chosen.name}); reusing it. " + reason
            update["answer"] = (f"A near-identical tool already exists: {chosen.name} "
                                f"v{chosen.version} ({chosen.description}). I will reuse it "
                                "instead of building a duplicate.")
    else:
        decision = "synthesize"
    update.update(decision=decision,
                  events=[event("decide", f"{decision}: {reason}", decision=decision)])
    return update
