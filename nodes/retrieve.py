"""retrieve: search the library with the self-contained request (never with the history)."""

from __future__ import annotations

from langgraph.runtime import Runtime

from .kit.context import Context
from .kit.node import event, library, node


@node("retrieve")
def retrieve(state: dict, runtime: Runtime[Context]) -> dict:
    """Rank the library's tools for the request."""
    result = library(runtime).search(state.get("standalone_request") or state["request"])
    top = [{"name": c.name, "similarity": c.similarity, "score": c.score,
            "conflict": c.conflict} for c in result.candidates[:3]]
    summary = ", ".join(f"{c['name']} (similarity {c['similarity']:.2f}, score "
                        f"{c['score']:.2f}{'; ' + c['conflict'] if c['conflict'] else ''})"
                        for c in top) or "no tools yet"
    event("retrieve", f"candidates: {summary}", candidates=top)
    return {"search": result.model_dump(mode="json")}
