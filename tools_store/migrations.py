"""The library's schema, applied by the project itself, safe to run any number of times."""

from __future__ import annotations

import json

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from .policies import DEFAULT_POLICY

MIGRATIONS: list[tuple[int, str]] = [
    (1, """
    CREATE TABLE IF NOT EXISTS tools (
        name text PRIMARY KEY,
        current_version integer NOT NULL,
        status text NOT NULL CHECK (status IN ('verified', 'experimental', 'retired')),
        uses integer NOT NULL DEFAULT 0,
        successes integer NOT NULL DEFAULT 0,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE IF NOT EXISTS tool_versions (
        name text NOT NULL REFERENCES tools(name) ON DELETE CASCADE,
        version integer NOT NULL,
        status text NOT NULL CHECK (status IN ('verified', 'experimental', 'retired')),
        spec jsonb NOT NULL,
        code text NOT NULL,
        tests text NOT NULL,
        report jsonb NOT NULL DEFAULT '{}',
        code_hash text NOT NULL,
        reason text NOT NULL DEFAULT '',
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (name, version)
    );
    CREATE TABLE IF NOT EXISTS tool_executions (
        id bigserial PRIMARY KEY,
        name text NOT NULL,
        version integer NOT NULL,
        inputs jsonb NOT NULL,
        output jsonb,
        success boolean NOT NULL,
        error text NOT NULL DEFAULT '',
        duration double precision NOT NULL DEFAULT 0,
        session_id text NOT NULL DEFAULT '',
        request text NOT NULL DEFAULT '',
        created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX IF NOT EXISTS tool_executions_name ON tool_executions (name, created_at);
    CREATE TABLE IF NOT EXISTS workflow_patterns (
        id bigserial PRIMARY KEY,
        request_pattern text NOT NULL,
        steps jsonb NOT NULL,
        uses integer NOT NULL DEFAULT 0,
        created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE IF NOT EXISTS policies (
        version integer PRIMARY KEY,
        value jsonb NOT NULL,
        note text NOT NULL DEFAULT '',
        created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE IF NOT EXISTS reflections (
        id bigserial PRIMARY KEY,
        name text NOT NULL,
        attempt integer NOT NULL,
        failing_tests jsonb NOT NULL,
        note text NOT NULL DEFAULT '',
        session_id text NOT NULL DEFAULT '',
        created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE IF NOT EXISTS index_meta (
        key text PRIMARY KEY,
        value text NOT NULL
    );
    """),
    # Self-repair: executions record the code that ran and whether the user marked the answer
    # wrong; versions record the version they were made from and why; counters per version
    # are computed from the executions (hence the index); rollbacks and retirements are
    # events with a reason. Versions made before this had no other way to come about than
    # after the one before them, so their parent is that one.
    (6, """
    ALTER TABLE tool_executions ADD COLUMN IF NOT EXISTS code_hash text NOT NULL DEFAULT '';
    ALTER TABLE tool_executions ADD COLUMN IF NOT EXISTS marked_wrong boolean NOT NULL
        DEFAULT false;
    ALTER TABLE tool_executions ADD COLUMN IF NOT EXISTS feedback text NOT NULL DEFAULT '';
    UPDATE tool_executions e SET code_hash = v.code_hash FROM tool_versions v
        WHERE e.code_hash = '' AND v.name = e.name AND v.version = e.version;
    CREATE INDEX IF NOT EXISTS tool_executions_version ON tool_executions (name, version, id);
    CREATE INDEX IF NOT EXISTS tool_executions_session ON tool_executions (session_id, id);
    ALTER TABLE tool_versions ADD COLUMN IF NOT EXISTS parent integer;
    ALTER TABLE tool_versions ADD COLUMN IF NOT EXISTS origin jsonb NOT NULL DEFAULT '{}';
    UPDATE tool_versions SET parent = version - 1 WHERE parent IS NULL AND version > 1;
    ALTER TABLE reflections ADD COLUMN IF NOT EXISTS kind text NOT NULL DEFAULT 'verify';
    ALTER TABLE reflections ADD COLUMN IF NOT EXISTS version integer;
    ALTER TABLE reflections ADD COLUMN IF NOT EXISTS details jsonb NOT NULL DEFAULT '{}';
    CREATE TABLE IF NOT EXISTS tool_events (
        id bigserial PRIMARY KEY,
        name text NOT NULL,
        kind text NOT NULL,
        from_version integer,
        to_version integer,
        reason text NOT NULL DEFAULT '',
        created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX IF NOT EXISTS tool_events_name ON tool_events (name, id);
    """),
]


def migrate(conn: psycopg.Connection, schema: str) -> list[int]:
    """Apply the migrations ``schema`` lacks; return the versions applied."""
    applied: list[int] = []
    with conn.transaction():
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        # Two processes starting at once must not both apply a migration.
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"sea-migrate-{schema}",))
        conn.execute(sql.SQL("SET LOCAL search_path TO {}, public").format(
            sql.Identifier(schema)))
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                     "version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
        with conn.cursor(row_factory=tuple_row) as cur:
            done = {row[0] for row in cur.execute("SELECT version FROM schema_migrations")}
        for version, statements in MIGRATIONS:
            if version in done:
                continue
            conn.execute(statements)
            conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
            applied.append(version)
        if not conn.execute("SELECT 1 FROM policies LIMIT 1").fetchone():
            conn.execute("INSERT INTO policies (version, value, note) VALUES (1, %s, %s)",
                         (json.dumps(DEFAULT_POLICY), "seed"))
    return applied
