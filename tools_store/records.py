"""The library's records in SQL: tools, their versions, executions, reflections, workflows.

A version's figures (uses, successes, median latency) are computed from its executions, so
they are per version and never drift from the log.

Plain functions over a connection whose search path is the library's schema; the caller
owns the transaction.
"""

from __future__ import annotations

import hashlib

import psycopg
from psycopg.types.json import Jsonb

from .errors import ToolChanged, ToolExists, ToolNotFound
from .models import ToolRecord, ToolSpec
from .text import storable, unstorable

# The figures of version ``v`` from its executions (index on name, version, id). A success
# the user marked wrong is not a success.
_STATS = ("LEFT JOIN LATERAL (SELECT count(*) AS uses, count(*) FILTER (WHERE e.success AND "
          "NOT e.marked_wrong) AS successes, percentile_cont(0.5) WITHIN GROUP (ORDER BY "
          "e.duration) AS p50_latency FROM tool_executions e WHERE e.name = v.name AND "
          "e.version = v.version) s ON true ")
# A version with its figures; ``current`` tells the current version.
_VERSION_ROWS = ("SELECT v.*, s.uses, s.successes, s.p50_latency, "
                 "(v.version = t.current_version) AS current "
                 "FROM tools t JOIN tool_versions v ON v.name = t.name " + _STATS)


def code_hash(code: str) -> str:
    """Return the hash that identifies an implementation."""
    return hashlib.sha256(code.encode()).hexdigest()


def record_of(row: dict) -> ToolRecord:
    """Build a ToolRecord from a version row (with counters where the query has them)."""
    return ToolRecord(name=row["name"], version=row["version"], status=row["status"],
                      spec=ToolSpec.model_validate(row["spec"]), code=row["code"],
                      tests=row["tests"], report=row["report"], code_hash=row["code_hash"],
                      reason=row["reason"], created_at=row["created_at"],
                      current=row.get("current", True), uses=row.get("uses") or 0,
                      successes=row.get("successes") or 0,
                      p50_latency=row.get("p50_latency"), parent=row.get("parent"),
                      origin=row.get("origin") or {},
                      components=row.get("components") or [])


def insert_version(conn: psycopg.Connection, spec: ToolSpec, code: str, tests: str,
                   report: dict, status: str, reason: str, new_version: bool,
                   origin: dict | None = None) -> ToolRecord:
    """Add a version; a name in use is refused unless ``new_version``.

    Its parent is the version a repair started from (``origin["from_version"]``), else the
    version that was current (none for a new or a retired tool).
    """
    row = conn.execute("SELECT current_version, status FROM tools WHERE name = %s FOR UPDATE",
                       (spec.name,)).fetchone()
    if row and row["status"] != "retired" and not new_version:
        raise ToolExists(f"a tool named {spec.name!r} exists (v{row['current_version']}); a new "
                         "version must be registered as a repair or an explicit update")
    repaired = (origin or {}).get("from_version") if (origin or {}).get("kind") == "repair" \
        else None
    if repaired is not None and (row is None or row["status"] == "retired"
                                 or row["current_version"] != repaired):
        # Made current, a repair of a version that is no longer current would replace the
        # newer one and drop the tests it added (two repairs at once: the last one won).
        now = "retired" if row is None or row["status"] == "retired" \
            else f"v{row['current_version']} is current"
        raise ToolChanged(f"{spec.name} changed while v{repaired} was being repaired ({now}); "
                          "the repair was not registered")
    version = 1 + conn.execute(
        "SELECT coalesce(max(version), 0) AS v FROM tool_versions WHERE name = %s",
        (spec.name,)).fetchone()["v"]
    if row is None and conn.execute(
            "INSERT INTO tools (name, current_version, status) VALUES (%s, %s, %s) "
            "ON CONFLICT (name) DO NOTHING RETURNING name",
            (spec.name, version, status)).fetchone() is None:
        # Another session registered the name after our check, and committed first.
        raise ToolExists(f"a tool named {spec.name!r} was registered meanwhile by another "
                         "session")
    parent = (origin or {}).get("from_version") or (
        row["current_version"] if row and row["status"] != "retired" else None)
    conn.execute(
        "INSERT INTO tool_versions (name, version, status, spec, code, tests, report, "
        "code_hash, reason, parent, origin) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (spec.name, version, status, Jsonb(spec.model_dump()), code, tests, Jsonb(report),
         code_hash(code), reason, parent, Jsonb(origin or {})))
    return ToolRecord(name=spec.name, version=version, status=status, spec=spec, code=code,
                      tests=tests, report=report, code_hash=code_hash(code), reason=reason,
                      parent=parent, origin=origin or {})


def set_components(conn: psycopg.Connection, name: str, version: int,
                   components: list[dict]) -> None:
    """Record the pinned component tools of a composite version."""
    conn.execute("UPDATE tool_versions SET components = %s WHERE name = %s AND version = %s",
                 (Jsonb(components), name, version))


def make_current(conn: psycopg.Connection, name: str, version: int, status: str) -> None:
    """Point the tool at ``version``."""
    conn.execute("UPDATE tools SET current_version = %s, status = %s, updated_at = now() "
                 "WHERE name = %s", (version, status, name))


def retire(conn: psycopg.Connection, name: str) -> None:
    """Mark a tool retired: kept with its history, no longer offered."""
    conn.execute("UPDATE tools SET status = 'retired', updated_at = now() WHERE name = %s",
                 (name,))


def get(conn: psycopg.Connection, name: str, version: int | None = None) -> ToolRecord:
    """Return the current (or the given) version of a tool."""
    row = None if unstorable(name) else conn.execute(
        _VERSION_ROWS + "WHERE t.name = %s AND v.version = coalesce(%s, t.current_version)",
        (name, version)).fetchone()
    if row is None:
        raise ToolNotFound(f"no tool {name!r}" + (f" version {version}"
                                                   if version is not None else ""))
    return record_of(row)


def current_versions(conn: psycopg.Connection, include_retired: bool = False
                     ) -> list[ToolRecord]:
    """Return the current version of every tool, with the tool's own status."""
    rows = conn.execute(
        "SELECT v.*, s.uses, s.successes, s.p50_latency, t.status AS tool_status, "
        "true AS current FROM tools t JOIN tool_versions v ON v.name = t.name AND "
        "v.version = t.current_version " + _STATS
        + "WHERE %s OR t.status <> 'retired' ORDER BY t.name", (include_retired,)).fetchall()
    return [record_of({**row, "status": row["tool_status"]}) for row in rows]


def all_versions(conn: psycopg.Connection, name: str | None = None) -> list[ToolRecord]:
    """Return every version of one tool (or of all), oldest first."""
    if name is not None and unstorable(name):  # names nothing, and PostgreSQL refuses it
        return []
    rows = conn.execute(_VERSION_ROWS + "WHERE %s::text IS NULL OR v.name = %s "
                        "ORDER BY v.name, v.version", (name, name)).fetchall()
    return [record_of(r) for r in rows]


def name_taken(conn: psycopg.Connection, name: str) -> bool:
    """Tell whether a tool that is not retired has this name."""
    # A name holding a NUL or a lone surrogate names nothing (and PostgreSQL refuses it).
    return not unstorable(name) and conn.execute(
        "SELECT 1 FROM tools WHERE name = %s AND status <> 'retired'", (name,)
    ).fetchone() is not None


def offered(conn: psycopg.Connection, names: list[str]) -> list[dict]:
    """Return what ranking needs of the named tools that are not retired.

    The figures are the current version's: a repaired or rolled-back tool is ranked by the
    code that will run.
    """
    return conn.execute(
        "SELECT t.name, t.current_version, t.status, s.uses, s.successes, "
        "v.spec->>'description' AS description, v.spec->'returns'->>'type' AS returns "
        "FROM tools t JOIN tool_versions v ON v.name = t.name AND v.version = t.current_version "
        + _STATS + "WHERE t.name = ANY(%s) AND t.status <> 'retired'", (names,)).fetchall()


def add_execution(conn: psycopg.Connection, name: str, version: int, inputs: dict, output,
                  success: bool, error: str, duration: float, session_id: str,
                  request: str, source: str = "agent", cached: bool = False,
                  ran_hash: str = "", files: list[list[str]] | None = None) -> None:
    """Log one execution and count it on the tool.

    ``source``: agent, mcp or langchain; ``cached``: served from the cache; ``ran_hash``:
    the hash of the code that ran, the version's own when not given (a version's code never
    changes), so no execution is logged without one; ``files``: the input files it read,
    [name, sha256] (none when not given). Text PostgreSQL cannot store is escaped, so the
    execution is still logged.
    """
    conn.execute(
        "INSERT INTO tool_executions (name, version, inputs, output, success, error, duration, "
        "session_id, request, source, cached, code_hash, files) VALUES (%s, %s, %s, %s, %s, "
        "%s, %s, %s, %s, %s, %s, coalesce(nullif(%s, ''), (SELECT code_hash FROM "
        "tool_versions WHERE name = %s AND version = %s), ''), %s)",
        (name, version, Jsonb(storable(inputs)), Jsonb(storable(output)), success,
         storable(error[:4000]), duration, storable(session_id), storable(request[:2000]),
         source, cached, ran_hash, name, version, Jsonb(storable(files or []))))
    conn.execute("UPDATE tools SET uses = uses + 1, successes = successes + %s WHERE name = %s",
                 (int(success), name))


def executions(conn: psycopg.Connection, name: str, limit: int = 20) -> list[dict]:
    """Return a tool's most recent executions."""
    return conn.execute("SELECT * FROM tool_executions WHERE name = %s ORDER BY id DESC "
                        "LIMIT %s", (name, limit)).fetchall()


def last_execution(conn: psycopg.Connection, session_id: str) -> dict | None:
    """Return the session's most recent execution, if any."""
    return conn.execute("SELECT * FROM tool_executions WHERE session_id = %s AND "
                        "session_id <> '' ORDER BY id DESC LIMIT 1", (session_id,)).fetchone()


def mark_wrong(conn: psycopg.Connection, execution_id: int, note: str) -> None:
    """Record that the user marked an execution's answer wrong."""
    conn.execute("UPDATE tool_executions SET marked_wrong = true, feedback = %s WHERE id = %s",
                 (note[:2000], execution_id))


# The latest successful run of each distinct call (inputs and files) of a tool, leaving out
# inputs the user ever marked wrong, whatever other runs gave for them.
_REPLAY_CANDIDATES = (
    "SELECT DISTINCT ON (inputs, files) inputs, output, version, id, files, "
    "(files IS NULL OR files = '[]'::jsonb OR files = %s::jsonb) AS at_hand "
    "FROM tool_executions e WHERE name = %s AND success AND NOT EXISTS (SELECT 1 FROM "
    "tool_executions w WHERE w.name = e.name AND w.inputs = e.inputs AND w.marked_wrong) "
    "ORDER BY inputs, files, id DESC")


def replay_set(conn: psycopg.Connection, name: str, limit: int,
               files: list[list[str]]) -> tuple[list[dict], int]:
    """Return recent calls replayable on ``files`` ([name, sha256]), and how many are not.

    Up to ``limit`` distinct successful calls of a tool, with their outputs. A call can be
    replayed when it read no files, exactly those, or was logged before files were recorded
    (``files`` None). The limit counts only those: calls on other files must not use up the
    replay's budget.
    """
    rows = conn.execute(
        f"SELECT inputs, output, version, id, files FROM ({_REPLAY_CANDIDATES}) c "
        "WHERE at_hand ORDER BY id DESC LIMIT %s", (Jsonb(files), name, limit)).fetchall()
    elsewhere = conn.execute(
        f"SELECT count(*) AS n FROM ({_REPLAY_CANDIDATES}) c WHERE NOT at_hand",
        (Jsonb(files), name)).fetchone()["n"]
    return rows, elsewhere


def first_uses(conn: psycopg.Connection, name: str, version: int, window: int) -> dict:
    """Return how many of a version's uses there are, and the successes among its first few."""
    return conn.execute(
        "SELECT (SELECT count(*) FROM tool_executions WHERE name = %s AND version = %s) AS "
        "uses, count(*) FILTER (WHERE success AND NOT marked_wrong) AS successes, count(*) AS "
        "counted FROM (SELECT success, marked_wrong FROM tool_executions WHERE name = %s AND "
        "version = %s ORDER BY id LIMIT %s) f", (name, version, name, version, window)).fetchone()


def add_event(conn: psycopg.Connection, name: str, kind: str, from_version: int | None,
              to_version: int | None, reason: str) -> None:
    """Record a change of a tool's current version (a rollback) or its retirement."""
    conn.execute("INSERT INTO tool_events (name, kind, from_version, to_version, reason) "
                 "VALUES (%s, %s, %s, %s, %s)", (name, kind, from_version, to_version, reason))


def events(conn: psycopg.Connection, name: str) -> list[dict]:
    """Return a tool's rollbacks and retirements, oldest first."""
    return conn.execute("SELECT * FROM tool_events WHERE name = %s ORDER BY id",
                        (name,)).fetchall()


def add_reflection(conn: psycopg.Connection, name: str, attempt: int, failing_tests: list[dict],
                   note: str, session_id: str, kind: str = "verify",
                   version: int | None = None, details: dict | None = None) -> None:
    """Keep what failed and what the reflection changed (``kind`` repair: on ``version``)."""
    conn.execute("INSERT INTO reflections (name, attempt, failing_tests, note, session_id, "
                 "kind, version, details) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                 (name, attempt, Jsonb(failing_tests), note, session_id, kind, version,
                  Jsonb(details or {})))


def reflections(conn: psycopg.Connection, name: str) -> list[dict]:
    """Return a tool's reflection log, oldest first."""
    return conn.execute("SELECT * FROM reflections WHERE name = %s ORDER BY id",
                        (name,)).fetchall()


def add_workflow(conn: psycopg.Connection, request_pattern: str, steps: list[dict]) -> None:
    """Keep a multi-step plan for later reuse."""
    conn.execute("INSERT INTO workflow_patterns (request_pattern, steps) VALUES (%s, %s)",
                 (request_pattern, Jsonb(steps)))
