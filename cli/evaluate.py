"""`sea eval retrieval FILE`: discovery measured on a labelled set, in a throwaway library.

Every query is searched and put through the graph's own rule (``nodes.decide.choose``):

* ``false_direct_reuse_rate``: requests reused directly with the wrong tool (no tool fits, or
  another one does), over all requests - the silent wrong answers;
* ``band_recall``: of the requests whose tool is in the library, the share whose right tool
  is reused directly or shown to the judge;
* ``judge_share``: requests sent to the judge;
* ``decision_accuracy_perfect_judge``: the band resolved by the label (the ceiling a model
  can reach) and ``decision_accuracy_no_judge`` (the band synthesizes); the older figures
  (``decision_accuracy`` with no judge, false reuses, top-1, recall@5) are kept beside them.

``--learn`` splits the set in two halves with a fixed seed, runs one half as the agent would
live (a perfect judge resolves the band, a user marks a wrong direct reuse wrong) so that
its outcomes become evidence, and reports the other half before and after. Beside it, the
learned half's own requests with their numbers changed (``value_variants``): the repeats
that evidence must serve at once; and ``radius_ceiling``, the most direct reuse that any
evidence radius could give the unseen half on this embedding model.
"""

from __future__ import annotations

import random
import re
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from nodes.decide import Choice, choose
from tools_store.library import ToolLibrary
from tools_store.models import Evidence, SearchResult, ToolSpec

from . import eval_synthesis
from .output import emit, read_json

LEARN_SEED = 17
NUMBER = re.compile(r"\d+")
TARGETS = {"false_direct_reuse_rate": 0.03, "band_recall": 0.95}


def load_eval_set(path: str | Path) -> dict:
    """Read and check an evaluation file; ValueError saying what is wrong, and where."""
    data = read_json(path)
    if not (isinstance(data, dict) and isinstance(data.get("tools"), list)
            and isinstance(data.get("queries"), list)):
        raise ValueError(f"{path}: expected an object with 'tools' and 'queries' lists")
    for number, tool in enumerate(data["tools"], 1):
        try:  # pydantic's ValidationError is a ValueError too
            if not isinstance(tool, dict) or not {"name", "description"} <= tool.keys():
                raise ValueError("it needs a 'name' and a 'description'")
            fixture_spec(tool)
        except ValueError as exc:
            problem = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else exc
            raise ValueError(f"{path}: tool {number}: {problem}") from exc
    names = {t["name"] for t in data["tools"]}
    for number, query in enumerate(data["queries"], 1):
        if not (isinstance(query, dict) and isinstance(query.get("query"), str)
                and query["query"].strip()):
            raise ValueError(f"{path}: query {number} needs a 'query' (a non-empty string)")
        if query.get("expect") is not None and query["expect"] not in names:
            raise ValueError(f"{path}: query {query['query']!r} expects an unknown tool")
    return data


def fixture_spec(tool: dict) -> ToolSpec:
    """Turn an evaluation tool into a spec the library can index."""
    return ToolSpec(name=tool["name"], description=tool["description"],
                    examples=tool.get("examples", []))


@contextmanager
def throwaway_library(data: dict, policy: dict | None = None):
    """Yield a fresh library holding the set's tools (dropped afterwards)."""
    with tempfile.TemporaryDirectory(prefix="sea-eval-") as tmp:
        library = ToolLibrary(schema=f"sea_eval_{uuid.uuid4().hex[:10]}",
                              files_dir=Path(tmp) / "tools")
        try:
            if policy:
                library.set_policy(policy, note="evaluation")
            library.register_many([
                (fixture_spec(t), f"def {t['name']}(*args, **kwargs):\n"
                 "    raise NotImplementedError('evaluation fixture')\n", "", {},
                 "verified", "evaluation fixture") for t in data["tools"]])
            yield library
        finally:
            library.drop()


def collect(library: ToolLibrary, queries: list[dict]) -> list[tuple[dict, SearchResult]]:
    """Search every query (evidence included); return (query, result) pairs."""
    return [(q, library.search(q["query"], k=5)) for q in queries]


def outcome(query: dict, choice: Choice) -> dict:
    """Return what a decision means for a labelled query."""
    expect = query.get("expect")
    direct = choice.chosen.name if choice.decision == "reuse" and choice.chosen else None
    judged = [c.name for c in choice.band] if choice.decision == "verify" else []
    perfect = (direct == expect) if direct else (expect in judged if expect else True)
    return {"expect": expect, "direct": direct, "judged": judged, "perfect": perfect,
            "no_judge": (direct == expect) if direct else expect is None,
            "false_direct": bool(direct) and direct != expect,
            "in_band": bool(expect) and (direct == expect or expect in judged)}


def score(rows: list[tuple[dict, SearchResult]], rule: dict) -> dict:
    """Return the evidence rule's figures on (query, result) pairs."""
    outcomes = [outcome(q, choose(r, rule)) for q, r in rows]
    total, with_tool = max(1, len(rows)), max(1, sum(1 for o in outcomes if o["expect"]))
    false_direct = sum(o["false_direct"] for o in outcomes)
    return {
        "false_direct_reuse_rate": round(false_direct / total, 4),
        "false_direct_reuses": false_direct,
        "band_recall": round(sum(o["in_band"] for o in outcomes) / with_tool, 4),
        "judge_share": round(sum(bool(o["judged"]) for o in outcomes) / total, 4),
        "direct_reuse_share": round(sum(bool(o["direct"]) for o in outcomes) / total, 4),
        "decision_accuracy_perfect_judge": round(sum(o["perfect"] for o in outcomes) / total,
                                                 4),
        "decision_accuracy_no_judge": round(sum(o["no_judge"] for o in outcomes) / total, 4),
    }


def earlier_figures(rows: list[tuple[dict, SearchResult]], rule: dict) -> dict:
    """Return the figures the project reported before the evidence rule, under this rule."""
    with_tool = [(q, r) for q, r in rows if q.get("expect")]
    without = [(q, r) for q, r in rows if not q.get("expect")]
    direct = {id(q): outcome(q, choose(r, rule))["direct"] for q, r in rows}
    top1 = sum(1 for q, r in with_tool if r.candidates and r.candidates[0].name == q["expect"])
    recall5 = sum(1 for q, r in with_tool if q["expect"] in [c.name for c in r.candidates[:5]])
    false_reuse = sum(1 for q, _ in without if direct[id(q)])
    return {
        "top1_accuracy": round(top1 / max(1, len(with_tool)), 4),
        "recall_at_5": round(recall5 / max(1, len(with_tool)), 4),
        "decision_accuracy": round(sum(direct[id(q)] == q.get("expect") for q, _ in rows)
                                   / max(1, len(rows)), 4),
        "false_reuse_rate": round(false_reuse / max(1, len(without)), 4),
        "false_reuses": false_reuse,
        "missed_reuse_rate": round(sum(1 for q, _ in with_tool if direct[id(q)] is None)
                                   / max(1, len(with_tool)), 4),
        "wrong_tool_reuses": sum(1 for q, _ in with_tool
                                 if direct[id(q)] not in (None, q["expect"])),
        "baseline_single_threshold": single_threshold_baseline(rows),
    }


def errors(rows: list[tuple[dict, SearchResult]], rule: dict) -> list[dict]:
    """Return the queries a perfect judge would still get wrong, and every false reuse."""
    found = []
    for query, result in rows:
        choice = choose(result, rule)
        seen = outcome(query, choice)
        if not seen["perfect"] or seen["false_direct"]:
            found.append({"query": query["query"], "expect": query.get("expect"),
                          "decision": choice.decision, "direct": seen["direct"],
                          "judged": seen["judged"],
                          "similarity": result.candidates[0].similarity
                          if result.candidates else None, "reason": choice.reason})
    return found


def evaluate(path: str | Path, learn: bool = False, word_checks: bool = True) -> dict:
    """Build a fresh library from the file's tools, run every query, and return the figures."""
    data = load_eval_set(path)
    with throwaway_library(data, {"word_checks": word_checks}) as library:
        rule = library.decision_rule()
        rows = collect(library, data["queries"])
        report = {"set": data.get("name", str(path)), "embedding_model": library.model_id,
                  "rule": rule, "queries": len(rows),
                  "queries_with_tool": sum(1 for q in data["queries"] if q.get("expect")),
                  "queries_without_tool": sum(1 for q in data["queries"]
                                              if not q.get("expect")),
                  "targets": TARGETS, **score(rows, rule), **earlier_figures(rows, rule)}
        if learn:
            report["learn"] = learn_and_measure(library, data["queries"], rule)
        report["errors"] = errors(rows, rule)
    return report


def learn_and_measure(library: ToolLibrary, queries: list[dict], rule: dict) -> dict:
    """Feed one half's outcomes in as evidence; measure the other half before and after."""
    order = list(range(len(queries)))
    random.Random(LEARN_SEED).shuffle(order)
    train = [queries[i] for i in sorted(order[:len(order) // 2])]
    test = [queries[i] for i in sorted(order[len(order) // 2:])]
    before = score(collect(library, test), rule)
    fed: list[Evidence] = []
    for query, result in collect(library, train):
        items = lived_outcome(query, choose(result, rule))
        library.add_evidence(items)
        fed += items
    after = score(collect(library, test), rule)
    variants = [{**q, "query": NUMBER.sub(lambda m: str(int(m.group()) + 3), q["query"])}
                for q in train if NUMBER.search(q["query"])]
    return {"seed": LEARN_SEED, "learned_from": len(train), "measured_on": len(test),
            "evidence_rows": len(fed), "first_pass": before, "after_learning": after,
            "value_variants": {"requests": len(variants),
                               **score(collect(library, variants), rule)},
            "radius_ceiling": radius_ceiling(library.index.embed_query, fed, test)}


def radius_ceiling(embed, fed: list[Evidence], test: list[dict]) -> dict:
    """Return the most direct reuse that any evidence radius allows on the unseen half.

    Each request takes the verdict of its nearest strong evidence row (``embed``: text to
    vector); a radius reuses that row's tool when the row says it serves. The widest radius
    within the false direct reuse target bounds every rule that learns from nearness alone.
    """
    strong = [e for e in fed if e.strength == "strong"]
    nearest = []
    if strong:
        rows = _unit([embed(e.request) for e in strong])
        for query in test:
            similarities = rows @ _unit([embed(query["query"])])[0]
            row = strong[int(np.argmax(similarities))]
            if row.serves:
                nearest.append((float(similarities.max()), row.tool != query.get("expect")))
    best = {"radius": None, "direct_reuse_share": 0.0, "false_direct_reuses": 0}
    wrong = 0
    for reused, (similarity, is_wrong) in enumerate(sorted(nearest, reverse=True), 1):
        wrong += is_wrong
        if wrong / len(test) > TARGETS["false_direct_reuse_rate"]:
            break  # every wider radius keeps this wrong reuse
        best = {"radius": round(similarity, 4), "direct_reuse_share": round(reused / len(test), 4),
                "false_direct_reuses": wrong}
    return best


def _unit(vectors: list[list[float]]) -> np.ndarray:
    matrix = np.asarray(vectors, dtype=np.float64)
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)


def lived_outcome(query: dict, choice: Choice) -> list[Evidence]:
    """Return the evidence a turn would leave with a perfect judge and an attentive user."""
    expect, request = query.get("expect"), query["query"]
    if choice.decision == "reuse" and choice.chosen:
        if choice.chosen.name == expect:  # it ran: weak evidence only
            return [Evidence(request=request, tool=expect, version=choice.chosen.version,
                             serves=True, source="execution")]
        return [Evidence(request=request, tool=choice.chosen.name, serves=False,
                         version=choice.chosen.version, source="user")]
    if choice.decision == "verify":
        judged = {c.name: c.version for c in choice.band}
        if expect in judged:
            return [Evidence(request=request, tool=expect, version=judged[expect],
                             serves=True, source="judge")]
        return [Evidence(request=request, tool=name, version=version, serves=False,
                         source="judge") for name, version in judged.items()]
    return []


def single_threshold_baseline(rows: list) -> dict:
    """Score the best single threshold on top-1 similarity, with no other check."""
    best = {"decision_accuracy": 0.0}
    for step in range(20, 96):
        threshold = step / 100
        correct = false_reuse = 0
        for query, result in rows:
            top = max(result.candidates, key=lambda c: c.similarity, default=None)
            reused = top.name if top and top.similarity >= threshold else None
            correct += reused == query.get("expect")
            false_reuse += reused is not None and not query.get("expect")
        accuracy = round(correct / max(1, len(rows)), 4)
        if accuracy > best["decision_accuracy"]:
            best = {"decision_accuracy": accuracy, "threshold": threshold,
                    "false_reuses": false_reuse}
    return best


def cmd_eval(args) -> int:
    """Measure discovery on a labelled file."""
    result = evaluate(args.file, learn=args.learn, word_checks=not args.no_word_checks)
    if not args.json:
        result = {k: v for k, v in result.items() if k != "errors"}
    emit(result, args.json)
    return 0


def add_parsers(sub) -> None:
    """Add `sea eval retrieval` and `sea eval synthesis`."""
    evaluation = sub.add_parser("eval", help="evaluations")
    esub = evaluation.add_subparsers(dest="eval_command", required=True)
    p = esub.add_parser("retrieval", help="discovery metrics on a labelled file")
    p.add_argument("file")
    p.add_argument("--learn", action="store_true",
                   help="learn from one half's outcomes, measure the other half")
    p.add_argument("--no-word-checks", action="store_true",
                   help="ablation: decide without the word-level near-miss checks")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)
    eval_synthesis.add_parser(esub)
