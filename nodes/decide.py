"""decide: reuse a tool or synthesize one; in the verify band a model judges the candidate.

The one place the reuse decision is made: the library only ranks.
"""

from __future__ import annotations

from typing import Literal

from langgraph.runtime import Runtime

from state.replies import JudgeReply
from tools_store import discovery
from tools_store.models import Candidate, SearchResult

from .kit.context import Context
from .kit.dataflow import current_step
from .kit.model import invoke_structured
from .kit.node import event, library, model, node

Decision = Literal["reuse", "verify", "synthesize"]
INSTRUCTIONS = (
    "Judge whether an existing tool really serves the request. It serves it only if the "
    "request's inputs map onto the tool's parameters and the tool computes what is asked, in "
    "the same direction (Celsius to Fahrenheit is not Fahrenheit to Celsius).")


def choose(candidates: list[Candidate], reuse: float, verify: float
           ) -> tuple[Decision, Candidate | None, str]:
    """Choose reuse, verify or synthesize for ranked ``candidates``."""
    # Only the best candidate may be reused directly: when it is a near miss, the runner-up
    # is usually a further miss (after "shortest word" fails on longest_word, word_count).
    top = candidates[0] if candidates else None
    if top and top.similarity >= reuse and not top.conflict and top.status == "verified":
        return "reuse", top, (f"{top.name} matches with similarity "
                              f"{top.similarity:.2f} >= {reuse:.2f}")
    for candidate in candidates:
        if candidate.similarity >= verify:
            why = candidate.conflict or (
                "the tool is experimental" if candidate.status != "verified"
                else f"similarity {candidate.similarity:.2f} is in the verify band")
            return "verify", candidate, why
    best = max((c.similarity for c in candidates), default=0.0)
    return "synthesize", None, f"no tool is close enough (best similarity {best:.2f})"


def choose_workflow(candidates: list[dict], request: str, policy: dict
                    ) -> tuple[dict | None, str]:
    """Choose a recorded workflow to run without planning, or None (with why not).

    The evidence rules of tool discovery: only the nearest workflow, at or above the
    policy's threshold, with enough successful runs, a good success rate, and no near miss:
    no conflict between its request (and its tools' directions) and this one, and the
    request nearer the whole sequence than any one of its steps.
    """
    top = candidates[0] if candidates else None
    if top is None:
        return None, ""
    threshold = policy["workflow_reuse"]
    label = f"workflow {top['id']} (similarity {top['similarity']:.2f})"
    if top["similarity"] < threshold:
        return None, f"{label} is below {threshold:.2f}"
    if top["step_similarity"] >= top["similarity"]:
        return None, (f"{label}: the request is nearer one of its steps "
                      f"({top['step_similarity']:.2f}) than the whole sequence")
    if top["successes"] < policy["workflow_min_successes"]:
        return None, (f"{label} has {top['successes']} successful runs; "
                      f"{policy['workflow_min_successes']} are needed")
    if (top["success_rate"] or 0) < policy["promotion"]["min_success_rate"] - 0.25:
        return None, f"{label} succeeds only {top['success_rate']:.0%} of the time"
    clash = discovery.contrast_conflict(top["matched_text"], request) or next(
        (c for s in top["steps"] if (c := discovery.direction_conflict(s["tool"], request))),
        "")
    if clash:
        return None, f"{label}: {clash}"
    return top, (f"{label} >= {threshold:.2f}, {top['successes']} of {top['uses']} runs "
                 "succeeded")


def preview(result: SearchResult) -> tuple[Decision, Candidate | None, str]:
    """Return what the graph would decide on ``result`` before any judge (CLI, app, evals)."""
    return choose(result.candidates, result.thresholds["reuse"], result.thresholds["verify"])


@node("decide")
def decide(state: dict, runtime: Runtime[Context]) -> dict:
    """Turn the library's ranking into this turn's decision."""
    pinned = current_step(state).get("tool")
    if pinned:  # a learned workflow's step (or its composite): the proven version runs
        record = library(runtime).get(pinned["name"], pinned["version"])
        event("decide", f"reuse: {record.name} v{record.version}, as the learned workflow "
              "ran it", decision="reuse")
        return {"decision": "reuse", "tool": {"name": record.name, "version": record.version,
                                              "status": record.status}}
    result = SearchResult.model_validate(state["search"])
    policy = state["policy"]
    decision, chosen, reason = choose(result.candidates, policy["reuse"], policy["verify"])
    update: dict = {}
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
    event("decide", f"{decision}: {reason}", decision=decision)
    return {**update, "decision": decision}
