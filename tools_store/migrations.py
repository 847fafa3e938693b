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
    # Session data, memory beyond the window, learned workflows, composite tools.
    (7, """
    ALTER TABLE tool_versions ADD COLUMN IF NOT EXISTS components jsonb NOT NULL DEFAULT '[]';
    ALTER TABLE workflow_patterns
        ADD COLUMN IF NOT EXISTS key text,
        ADD COLUMN IF NOT EXISTS standalone text NOT NULL DEFAULT '',
        ADD COLUMN IF NOT EXISTS params jsonb NOT NULL DEFAULT '[]',
        ADD COLUMN IF NOT EXISTS returns jsonb NOT NULL DEFAULT '{}',
        ADD COLUMN IF NOT EXISTS successes integer NOT NULL DEFAULT 0,
        ADD COLUMN IF NOT EXISTS composite text,
        ADD COLUMN IF NOT EXISTS composite_version integer,
        ADD COLUMN IF NOT EXISTS promotion jsonb NOT NULL DEFAULT '{}',
        ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now();
    CREATE UNIQUE INDEX IF NOT EXISTS workflow_patterns_key ON workflow_patterns (key);
    CREATE TABLE IF NOT EXISTS workflow_runs (
        id bigserial PRIMARY KEY,
        workflow_id bigint NOT NULL REFERENCES workflow_patterns(id) ON DELETE CASCADE,
        session_id text NOT NULL DEFAULT '',
        request text NOT NULL DEFAULT '',
        arguments jsonb NOT NULL DEFAULT '{}',
        files jsonb NOT NULL DEFAULT '{}',
        result jsonb,
        outputs jsonb NOT NULL DEFAULT '{}',
        success boolean NOT NULL,
        error text NOT NULL DEFAULT '',
        reused boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX IF NOT EXISTS workflow_runs_workflow ON workflow_runs (workflow_id, id);
    CREATE TABLE IF NOT EXISTS workflow_texts (
        workflow_id bigint NOT NULL REFERENCES workflow_patterns(id) ON DELETE CASCADE,
        model text NOT NULL,
        kind text NOT NULL CHECK (kind IN ('request', 'step')),
        text text NOT NULL,
        embedding vector NOT NULL,
        PRIMARY KEY (workflow_id, model, kind, text)
    );
    CREATE TABLE IF NOT EXISTS session_items (
        id bigserial PRIMARY KEY,
        session_id text NOT NULL,
        name text NOT NULL,
        kind text NOT NULL CHECK (kind IN ('value', 'table', 'file')),
        shape text NOT NULL DEFAULT '',
        size bigint NOT NULL DEFAULT 0,
        sha256 text NOT NULL DEFAULT '',
        turn integer NOT NULL,
        step integer,
        source text NOT NULL,
        path text,
        value jsonb,
        created_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (session_id, name)
    );
    CREATE TABLE IF NOT EXISTS session_turns (
        session_id text NOT NULL,
        turn integer NOT NULL,
        model text NOT NULL,
        text text NOT NULL,
        embedding vector NOT NULL,
        PRIMARY KEY (session_id, turn, model)
    );
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
