"""decide: reuse a tool only on strong evidence; a model judges the plausible; else synthesize.

The one place the reuse decision is made: the library only ranks and finds evidence. A
silent wrong answer is the worst outcome, a missed reuse only costs time, so:

1. **The same request, confirmed.** The newest strong verdict (a judge's or a user's) on the
   same request up to its literal values decides for that tool: "serves" reuses it at once;
   "does not serve" on the tool's current version refuses it without asking the judge again.
2. **Very high purpose similarity, nothing against it.** The best candidate is reused when
   its similarity reaches ``reuse`` and no contrary evidence exists: no strong verdict
   against it near the request, no other tool confirmed near it, and (when ``word_checks``
   is on) no word-level conflict. Weak evidence (a run that did not fail) never suffices.
3. **The verify band.** Everything plausible but unproven - candidates at or above
   ``verify``, and tools confirmed on a nearby request - goes to one judge call with up to
   ``judge_candidates`` candidates; with no judge, the band synthesizes.
4. Otherwise, synthesize.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from langgraph.runtime import Runtime

from state.replies import JudgeReply
from tools_store import discovery
from tools_store.models import Candidate, EvidenceHit, SearchResult

from .kit.context import Context
from .kit.dataflow import current_step
from .kit.model import invoke_structured
from .kit.node import event, library, model, node

Decision = Literal["reuse", "verify", "synthesize"]
INSTRUCTIONS = (
    "Judge whether one of the candidate tools really serves the request. A tool serves it "
    "only if the request's inputs map onto the tool's parameters and the tool computes what "
    "is asked: the same operation in the same direction (Celsius to Fahrenheit is not "
    "Fahrenheit to Celsius), the same quantity (not a neighbouring one), the same units, "
    "formats and shapes, and the kind of answer asked for (a yes/no question needs a tool "
    "that answers yes or no). serves: true only if one does; tool: its name.")


class Choice(NamedTuple):
    """What the rule decided, for which candidate, why, and what goes to the judge."""

    decision: Decision
    chosen: Candidate | None
    reason: str
    band: list[Candidate] = []
    refused: list[str] = []


def _latest_same_request(hits: list[EvidenceHit]) -> dict[str, EvidenceHit]:
    """Return, per tool, the newest strong verdict on the same request."""
    latest: dict[str, EvidenceHit] = {}
    for hit in hits:
        if hit.same_request and hit.strength == "strong":
            if hit.tool not in latest or hit.id > latest[hit.tool].id:
                latest[hit.tool] = hit
    return latest


def _contrary(top: Candidate, hits: list[EvidenceHit], rule: dict) -> str:
    """Explain what speaks against reusing ``top`` on similarity alone, or return ''."""
    for hit in hits:
        if hit.strength != "strong":
            continue
        if hit.tool == top.name and not hit.serves:
            return (f"{hit.source} found that {top.name} does not serve a nearby request "
                    f"({hit.request!r}, similarity {hit.similarity:.2f})")
        if hit.tool != top.name and hit.serves:
            return (f"a nearby request ({hit.request!r}) was served by {hit.tool}, not "
                    f"{top.name}")
    if rule.get("word_checks", True) and top.conflict:
        return top.conflict
    return ""


def choose(result: SearchResult, rule: dict) -> Choice:
    """Apply the rule (see the module's docstring) to a search result."""
    by_name = {c.name: c for c in result.candidates}
    latest = _latest_same_request(result.evidence)
    confirmed = [by_name[t] for t, h in latest.items() if h.serves and t in by_name]
    refused = [t for t, h in latest.items() if not h.serves and t in by_name
               and h.version == by_name[t].version]
    verified = [c for c in confirmed if c.status == "verified"]
    if len(confirmed) == 1 and verified:
        hit = latest[confirmed[0].name]
        return Choice("reuse", confirmed[0], (
            f"{hit.source} confirmed {confirmed[0].name} on the same request "
            f"({hit.request!r})"), refused=refused)
    note = f"; refused on evidence: {', '.join(refused)}" if refused else ""
    open_candidates = [c for c in result.candidates if c.name not in refused]
    top = open_candidates[0] if open_candidates else None
    against = ""
    if top is not None and top.similarity >= rule["reuse"] and top.status == "verified" \
            and len(confirmed) <= 1:
        against = _contrary(top, result.evidence, rule)
        if not against and (not confirmed or confirmed[0].name == top.name):
            return Choice("reuse", top, f"{top.name} matches with similarity "
                                        f"{top.similarity:.2f} >= {rule['reuse']:.2f} and "
                                        f"nothing contradicts it{note}", refused=refused)
    near = [by_name[h.tool] for h in result.evidence
            if h.strength == "strong" and h.serves and h.tool in by_name]
    plausible = [c for c in open_candidates if c.similarity >= rule["verify"]]
    # Confirmed tools first, then the best candidate, then tools confirmed nearby.
    band: list[Candidate] = []
    for candidate in confirmed + plausible[:1] + near + plausible[1:]:
        if candidate.name not in refused and candidate.name not in {c.name for c in band}:
            band.append(candidate)
    band = band[:max(1, int(rule.get("judge_candidates", 1)))]
    if band:
        first = band[0]
        why = against or ("the tool is experimental" if first.status != "verified" else
                          "several tools were confirmed on this request" if len(confirmed) > 1
                          else f"similarity {first.similarity:.2f} is in the verify band")
        return Choice("verify", first, why + note, band, refused)
    best = max((c.similarity for c in result.candidates), default=0.0)
    return Choice("synthesize", None, f"no tool is close enough (best similarity "
                                      f"{best:.2f}){note}", refused=refused)


def choose_workflow(candidates: list[dict], request: str, policy: dict
                    ) -> tuple[dict | None, str]:
    """Choose a recorded workflow to run without planning, or None (with why not).

    The evidence rules of tool discovery: only the nearest workflow, still running the
    library's current versions of its tools, at or above the policy's threshold, with enough
    successful runs, a good success rate, and no near miss: no conflict between its request
    (and its tools' directions) and this one, and the request nearer the whole sequence than
    any one of its steps.
    """
    # One whose tools changed gives way to the next (most often the same sequence learned
    # again with the current versions, at the same similarity).
    top = next((c for c in candidates if not c["out_of_date"]), None)
    if top is None:
        stale = candidates[0] if candidates else None
        return None, (f"workflow {stale['id']} is out of date: {stale['out_of_date']}"
                      if stale else "")
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


def preview(result: SearchResult) -> Choice:
    """Return what the graph would decide on ``result`` before any judge (CLI, app, evals)."""
    return choose(result, result.rule)


def _judge(state: dict, runtime: Runtime[Context], choice: Choice) -> tuple[dict, dict]:
    """Ask the model which band candidate (if any) serves the request."""
    lib = library(runtime)
    parts = []
    for number, candidate in enumerate(choice.band, 1):
        spec = lib.get(candidate.name).spec
        concern = candidate.conflict if state["policy"].get("word_checks", True) else ""
        parts.append(f"Candidate {number}: {spec.signature()}\n{spec.description}\n"
                     f"{spec.docstring}" + (f"\nConcern: {concern}" if concern else ""))
    names = [c.name for c in choice.band]

    def check(reply: JudgeReply) -> None:
        if reply.serves and not reply.tool and len(names) > 1:
            raise ValueError(f"name the tool that serves: one of {', '.join(names)}")

    verdict, usage = invoke_structured(model(runtime), "judge", INSTRUCTIONS,
                                       state["standalone_request"], "\n\n".join(parts),
                                       JudgeReply, check)
    judged = [{"name": c.name, "version": c.version} for c in choice.band]
    return {**verdict.model_dump(), "candidates": judged}, usage


@node("decide")
def decide(state: dict, runtime: Runtime[Context]) -> dict:
    """Turn the library's ranking and evidence into this turn's decision."""
    pinned = current_step(state).get("tool")
    if pinned:  # a learned workflow's step (or its composite): the proven version runs
        record = library(runtime).get(pinned["name"], pinned["version"])
        event("decide", f"reuse: {record.name} v{record.version}, as the learned workflow "
              "ran it", decision="reuse")
        return {"decision": "reuse", "tool": {"name": record.name, "version": record.version,
                                              "status": record.status}}
    result = SearchResult.model_validate(state["search"])
    if state.get("new_tool"):
        event("decide", "synthesize: you asked for a new tool", decision="synthesize")
        return {"decision": "synthesize"}
    choice = choose(result, state["policy"])
    decision, chosen, reason = choice.decision, choice.chosen, choice.reason
    update: dict = {}
    if decision == "verify":
        verdict, usage = _judge(state, runtime, choice)
        update["judge"], update["usage"] = verdict, {"judge": usage}
        # A tool the judge names that was not shown to it serves nothing.
        named = {c.name: c for c in choice.band}.get(verdict["tool"] or choice.band[0].name)
        chosen = named if verdict["serves"] else None
        decision = "reuse" if chosen else "synthesize"
        reason = f"judge: {verdict['reason'] or ('serves' if chosen else 'none serves')}" + (
            f" (it named {verdict['tool']}, not a candidate)" if verdict["serves"]
            and not chosen else "")
    if state.get("force_synthesis") and decision != "reuse":
        reason = "explicit request to create a tool; " + reason
    if decision == "reuse" and chosen is not None:
        update["tool"] = {"name": chosen.name, "version": chosen.version,
                          "status": chosen.status}
        if state.get("force_synthesis"):
            reason = f"the same tool exists ({chosen.name}); reusing it. " + reason
            update["answer"] = (f"A tool that does this already exists: {chosen.name} "
                                f"v{chosen.version} ({chosen.description}). I will reuse it "
                                "instead of building a duplicate; ask for a new tool anyway "
                                "(or use --new-tool) to build another.")
    else:
        decision = "synthesize"
    event("decide", f"{decision}: {reason}", decision=decision)
    return {**update, "decision": decision}
