"""`sea eval retrieval FILE`: discovery measured on a labelled set, in a throwaway library."""

from __future__ import annotations

import json
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from nodes.decide import preview
from tools_store.library import ToolLibrary
from tools_store.models import ToolSpec

from . import eval_synthesis
from .output import emit


@dataclass
class Routed:
    """A query's ranked candidates and the decision the graph would make without a model."""

    candidates: list
    decision: str
    chosen: object
    reason: str


def load_eval_set(path: str | Path) -> dict:
    """Read and check an evaluation file (tools with name and description; queries)."""
    data = json.loads(Path(path).read_text())
    if not isinstance(data.get("tools"), list) or not isinstance(data.get("queries"), list):
        raise ValueError(f"{path}: expected 'tools' and 'queries' lists")
    names = {t["name"] for t in data["tools"]}
    for query in data["queries"]:
        if query.get("expect") is not None and query["expect"] not in names:
            raise ValueError(f"{path}: query {query['query']!r} expects an unknown tool")
    return data


def fixture_spec(tool: dict) -> ToolSpec:
    """Turn an evaluation tool into a spec the library can index."""
    return ToolSpec(name=tool["name"], description=tool["description"],
                    examples=tool.get("examples", []))


def evaluate(path: str | Path) -> dict:
    """Build a fresh library from the file's tools, run every query, and return the metrics."""
    data = load_eval_set(path)
    with tempfile.TemporaryDirectory(prefix="sea-eval-") as tmp:
        library = ToolLibrary(schema=f"sea_eval_{uuid.uuid4().hex[:10]}",
                              files_dir=Path(tmp) / "tools")
        try:
            library.register_many([
                (fixture_spec(t), f"def {t['name']}(*args, **kwargs):\n"
                 "    raise NotImplementedError('evaluation fixture')\n", "", {},
                 "verified", "evaluation fixture") for t in data["tools"]])
            thresholds = library.thresholds()
            rows = []
            for query in data["queries"]:
                result = library.search(query["query"], k=5)
                rows.append((query, Routed(result.candidates, *preview(result))))
        finally:
            library.drop()
    return metrics(rows, thresholds, library.model_id)


def metrics(rows: list, thresholds: dict, model_id: str) -> dict:
    """Compute the discovery metrics from (query, SearchResult) pairs."""
    with_tool = [(q, r) for q, r in rows if q.get("expect")]
    without = [(q, r) for q, r in rows if not q.get("expect")]

    def routed(result) -> str | None:
        """Return the tool reused, or None: without a model the verify band synthesizes."""
        if result.decision == "reuse" and result.chosen:
            return result.chosen.name
        return None

    top1 = sum(1 for q, r in with_tool if r.candidates and r.candidates[0].name == q["expect"])
    recall5 = sum(1 for q, r in with_tool if q["expect"] in [c.name for c in r.candidates[:5]])
    correct = sum(1 for q, r in rows if routed(r) == q.get("expect"))
    false_reuse = sum(1 for q, r in without if routed(r) is not None)
    missed = sum(1 for q, r in with_tool if routed(r) is None)
    wrong_tool = sum(1 for q, r in with_tool if routed(r) not in (None, q["expect"]))
    verify = sum(1 for _, r in rows if r.decision == "verify")
    errors = [{"query": q["query"], "expect": q.get("expect"), "decision": r.decision,
               "chosen": r.chosen.name if r.chosen else None,
               "similarity": r.candidates[0].similarity if r.candidates else None,
               "reason": r.reason} for q, r in rows if routed(r) != q.get("expect")]
    return {
        "embedding_model": model_id,
        "thresholds": thresholds,
        # No model judges here: a request sent to the verify band counts as "synthesize".
        "verify_band_counts_as": "synthesize",
        "queries": len(rows),
        "queries_with_tool": len(with_tool),
        "queries_without_tool": len(without),
        "top1_accuracy": round(top1 / max(1, len(with_tool)), 4),
        "recall_at_5": round(recall5 / max(1, len(with_tool)), 4),
        "decision_accuracy": round(correct / max(1, len(rows)), 4),
        "false_reuse_rate": round(false_reuse / max(1, len(without)), 4),
        "false_reuses": false_reuse,
        "missed_reuse_rate": round(missed / max(1, len(with_tool)), 4),
        "wrong_tool_reuses": wrong_tool,
        "verify_band_share": round(verify / max(1, len(rows)), 4),
        "baseline_single_threshold": single_threshold_baseline(rows),
        "errors": errors,
    }


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
    result = evaluate(args.file)
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
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)
    eval_synthesis.add_parser(esub)
