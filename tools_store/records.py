"""The library's records in SQL: tools, their versions, executions, reflections, workflows.

Plain functions over a connection whose search path is the library's schema; the caller
owns the transaction.
"""

from __future__ import annotations

import hashlib

import psycopg
from psycopg.types.json import Jsonb

from .errors import ToolExists, ToolNotFound
from .models import ToolRecord, ToolSpec

# A version joined with its tool's counters; ``current`` tells the current version.
_VERSION_ROWS = ("SELECT v.*, t.uses, t.successes, (v.version = t.current_version) AS current "
                 "FROM tools t JOIN tool_versions v ON v.name = t.name ")


def code_hash(code: str) -> str:
    """Return the hash that identifies an implementation."""
    return hashlib.sha256(code.encode()).hexdigest()


def record_of(row: dict) -> ToolRecord:
    """Build a ToolRecord from a version row (with counters where the query has them)."""
    return ToolRecord(name=row["name"], version=row["version"], status=row["status"],
                      spec=ToolSpec.model_validate(row["spec"]), code=row["code"],
                      tests=row["tests"], report=row["report"], code_hash=row["code_hash"],
                      reason=row["reason"], created_at=row["created_at"],
                      current=row.get("current", True), uses=row.get("uses", 0),
                      successes=row.get("successes", 0),
                      components=row.get("components") or [])


def insert_version(conn: psycopg.Connection, spec: ToolSpec, code: str, tests: str,
                   report: dict, status: str, reason: str, new_version: bool) -> ToolRecord:
    """Add a version and make it current; a name in use is refused unless ``new_version``."""
    row = conn.execute("SELECT current_version, status FROM tools WHERE name = %s FOR UPDATE",
                       (spec.name,)).fetchone()
    if row and row["status"] != "retired" and not new_version:
        raise ToolExists(f"a tool named {spec.name!r} exists (v{row['current_version']}); a new "
                         "version must be registered as a repair or an explicit update")
    version = 1 + conn.execute(
        "SELECT coalesce(max(version), 0) AS v FROM tool_versions WHERE name = %s",
        (spec.name,)).fetchone()["v"]
    if row is None:
        conn.execute("INSERT INTO tools (name, current_version, status) VALUES (%s, %s, %s)",
                     (spec.name, version, status))
    conn.execute(
        "INSERT INTO tool_versions (name, version, status, spec, code, tests, report, "
        "code_hash, reason) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (spec.name, version, status, Jsonb(spec.model_dump()), code, tests, Jsonb(report),
         code_hash(code), reason))
    return ToolRecord(name=spec.name, version=version, status=status, spec=spec, code=code,
                      tests=tests, report=report, code_hash=code_hash(code), reason=reason)


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
    row = conn.execute(_VERSION_ROWS + "WHERE t.name = %s AND v.version = "
                       "coalesce(%s, t.current_version)", (name, version)).fetchone()
    if row is None:
        raise ToolNotFound(f"no tool {name!r}" + (f" version {version}" if version else ""))
    return record_of(row)


def current_versions(conn: psycopg.Connection, include_retired: bool = False
                     ) -> list[ToolRecord]:
    """Return the current version of every tool, with the tool's own status."""
    rows = conn.execute(
        "SELECT v.*, t.uses, t.successes, t.status AS tool_status, true AS current "
        "FROM tools t JOIN tool_versions v ON v.name = t.name AND v.version = t.current_version "
        "WHERE %s OR t.status <> 'retired' ORDER BY t.name", (include_retired,)).fetchall()
    return [record_of({**row, "status": row["tool_status"]}) for row in rows]


def all_versions(conn: psycopg.Connection, name: str | None = None) -> list[ToolRecord]:
    """Return every version of one tool (or of all), oldest first."""
    rows = conn.execute(_VERSION_ROWS + "WHERE %s::text IS NULL OR v.name = %s "
                        "ORDER BY v.name, v.version", (name, name)).fetchall()
    return [record_of(r) for r in rows]


def name_taken(conn: psycopg.Connection, name: str) -> bool:
    """Tell whether a tool that is not retired has this name."""
    return conn.execute("SELECT 1 FROM tools WHERE name = %s AND status <> 'retired'",
                        (name,)).fetchone() is not None


def offered(conn: psycopg.Connection, names: list[str]) -> list[dict]:
    """Return what ranking needs of the named tools that are not retired."""
    return conn.execute(
        "SELECT t.name, t.current_version, t.status, t.uses, t.successes, "
        "v.spec->>'description' AS description, v.spec->'returns'->>'type' AS returns "
        "FROM tools t JOIN tool_versions v ON v.name = t.name AND v.version = t.current_version "
        "WHERE t.name = ANY(%s) AND t.status <> 'retired'", (names,)).fetchall()


def add_execution(conn: psycopg.Connection, name: str, version: int, inputs: dict, output,
                  success: bool, error: str, duration: float, session_id: str,
                  request: str) -> None:
    """Log one execution and count it on the tool."""
    conn.execute(
        "INSERT INTO tool_executions (name, version, inputs, output, success, error, duration, "
        "session_id, request) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (name, version, Jsonb(inputs), Jsonb(output), success, error[:4000], duration,
         session_id, request[:2000]))
    conn.execute("UPDATE tools SET uses = uses + 1, successes = successes + %s WHERE name = %s",
                 (int(success), name))


def executions(conn: psycopg.Connection, name: str, limit: int = 20) -> list[dict]:
    """Return a tool's most recent executions."""
    return conn.execute("SELECT * FROM tool_executions WHERE name = %s ORDER BY id DESC "
                        "LIMIT %s", (name, limit)).fetchall()


def served_requests(conn: psycopg.Connection, name: str, limit: int) -> list[str]:
    """Return the first distinct requests the tool served, up to ``limit``."""
    rows = conn.execute(
        "SELECT request, min(id) AS first FROM tool_executions "
        "WHERE name = %s AND success AND request <> '' GROUP BY request "
        "ORDER BY first LIMIT %s", (name, limit)).fetchall()
    return [r["request"] for r in rows]


def add_reflection(conn: psycopg.Connection, name: str, attempt: int, failing_tests: list[dict],
                   note: str, session_id: str) -> None:
    """Keep what failed and what the reflection changed."""
    conn.execute("INSERT INTO reflections (name, attempt, failing_tests, note, session_id) "
                 "VALUES (%s, %s, %s, %s, %s)",
                 (name, attempt, Jsonb(failing_tests), note, session_id))


def reflections(conn: psycopg.Connection, name: str) -> list[dict]:
    """Return a tool's reflection log, oldest first."""
    return conn.execute("SELECT * FROM reflections WHERE name = %s ORDER BY id",
                        (name,)).fetchall()


def add_workflow(conn: psycopg.Connection, request_pattern: str, steps: list[dict]) -> None:
    """Keep a multi-step plan for later reuse."""
    conn.execute("INSERT INTO workflow_patterns (request_pattern, steps) VALUES (%s, %s)",
                 (request_pattern, Jsonb(steps)))
