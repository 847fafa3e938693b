"""A tool's visible history, version by version.

Each version's code diff, its tests and which version added them, the repair that made it
(the failure, the reflections) and the rollbacks since: a read-only composition of records
the library already keeps, which the command line and the app both show.
"""

from __future__ import annotations

import difflib

from sandbox.core import declared_tests

from .models import ToolRecord


def code_diff(before: ToolRecord | None, after: ToolRecord) -> str:
    """Return the unified diff of a version's code against the version it was made from."""
    old = before.code.splitlines() if before else []
    label = f"v{before.version}" if before else "(nothing)"
    return "\n".join(difflib.unified_diff(old, after.code.splitlines(), label,
                                          f"v{after.version}", lineterm=""))


def _tests(record: ToolRecord, by_version: dict[int, ToolRecord]) -> list[dict]:
    """Name each test of a version with the version (up its chain of parents) that added it."""
    chain = [record]
    while chain[-1].parent is not None and chain[-1].parent in by_version:
        chain.append(by_version[chain[-1].parent])
    found = []
    for name in sorted(declared_tests(record.tests)):
        added = next(v for v in reversed(chain) if name in declared_tests(v.tests))
        found.append({"name": name, "added_in": added.version, "added_by": added.reason})
    return found


def _reflections(record: ToolRecord, reflections: list[dict],
                 earlier: ToolRecord | None) -> list[dict]:
    """Return the reflections that led to a version.

    For a repair: the repair reflections on its parent in the turn that made it; for a
    version written from scratch: the verification reflections since the version before.
    """
    if record.origin.get("kind") == "repair":
        chosen = [r for r in reflections if r["kind"] == "repair"
                  and r["version"] == record.parent
                  and r["session_id"] == record.origin.get("session_id", "")
                  and r["created_at"] <= record.created_at]
    else:
        start = earlier.created_at if earlier else None
        chosen = [r for r in reflections if r["kind"] == "verify"
                  and (start is None or r["created_at"] > start)
                  and r["created_at"] <= record.created_at]
    return [{"attempt": r["attempt"], "kind": r["kind"], "note": r["note"],
             "failing": r["failing_tests"], "details": r["details"],
             "at": str(r["created_at"])} for r in chosen]


def version_history(versions: list[ToolRecord], reflections: list[dict],
                    events: list[dict]) -> dict:
    """Return ``versions`` (oldest first) and ``events`` as people read them."""
    by_version = {v.version: v for v in versions}
    shown = []
    for index, record in enumerate(versions):
        base = by_version.get(record.parent) if record.parent is not None else None
        shown.append({
            "version": record.version, "status": record.status, "current": record.current,
            "reason": record.reason, "parent": record.parent,
            "code_hash": record.code_hash[:12], "created_at": str(record.created_at),
            "uses": record.uses, "successes": record.successes,
            "success_rate": record.success_rate, "p50_latency_s": record.p50_latency,
            "mutation_score": (record.report.get("mutation") or {}).get("score"),
            "diff": code_diff(base, record),
            "tests": _tests(record, by_version),
            "failure": record.origin.get("failure"),
            "origin": record.origin,
            "reflections": _reflections(record, reflections,
                                        versions[index - 1] if index else None)})
    return {"versions": shown,
            "events": [{"kind": e["kind"], "from_version": e["from_version"],
                        "to_version": e["to_version"], "reason": e["reason"],
                        "at": str(e["created_at"])} for e in events]}
