"""The library's schema, applied by the project itself, safe to run any number of times.

Why this module is long: it is the schema's history, one migration after another, and a
user's library may stand at any of them; split, that one ordered list would be scattered.
"""

from __future__ import annotations

import json

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from .db import take_setup_lock
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
    # Where an execution came from: the agent's graph, the MCP server, LangChain tools.
    (2, """
    ALTER TABLE tool_executions ADD COLUMN IF NOT EXISTS source text NOT NULL DEFAULT 'agent';
    """),
    # 3: discovery by evidence. Verdicts with their embeddings (the dimension and the HNSW
    # index are set by the first write: the embedding model decides them); served requests
    # that were index rows (a wrong reuse could lock itself in) move here as weak evidence;
    # the execution cache; the thresholds of the evidence rule replace the old ones (they
    # meant "reuse on similarity", which the new rule no longer does).
    (3, """
    CREATE TABLE IF NOT EXISTS evidence (
        id bigserial PRIMARY KEY,
        request text NOT NULL,
        template text NOT NULL,
        embedding vector NOT NULL,
        tool_name text NOT NULL,
        tool_version integer NOT NULL,
        verdict text NOT NULL CHECK (verdict IN ('serves', 'does-not-serve')),
        source text NOT NULL CHECK (source IN ('judge', 'user', 'execution')),
        strength text NOT NULL CHECK (strength IN ('strong', 'weak')),
        reason text NOT NULL DEFAULT '',
        session_id text NOT NULL DEFAULT '',
        retracted boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX IF NOT EXISTS evidence_template ON evidence (template);
    CREATE INDEX IF NOT EXISTS evidence_tool ON evidence (tool_name);
    CREATE INDEX IF NOT EXISTS evidence_session ON evidence (session_id);
    -- Their template is only approximate: weak evidence is never matched as the same request.
    DO $$ BEGIN
        IF to_regclass('tool_index') IS NOT NULL THEN
            INSERT INTO evidence (request, template, embedding, tool_name, tool_version,
                                  verdict, source, strength, reason)
            SELECT content, lower(content), embedding, tool_name, version, 'serves',
                   'execution', 'weak', 'a served request, indexed before evidence existed'
            FROM tool_index WHERE kind = 'request';
            DELETE FROM tool_index WHERE kind = 'request';
        END IF;
    END $$;
    CREATE TABLE IF NOT EXISTS execution_cache (
        tool_name text NOT NULL,
        tool_version integer NOT NULL,
        code_hash text NOT NULL,
        key text NOT NULL,
        arguments jsonb NOT NULL,
        files jsonb NOT NULL DEFAULT '[]',
        result jsonb,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        PRIMARY KEY (tool_name, tool_version, code_hash, key)
    );
    ALTER TABLE tool_executions ADD COLUMN IF NOT EXISTS cached boolean NOT NULL DEFAULT false;
    INSERT INTO policies (version, value, note)
    SELECT max(version) + 1,
           (SELECT value FROM policies ORDER BY version DESC LIMIT 1)
           || jsonb_build_object('thresholds', '""" + json.dumps(
               DEFAULT_POLICY["thresholds"]) + """'::jsonb),
           'migration 3: thresholds of the evidence rule (the old ones meant reuse on '
           'similarity alone)'
    FROM policies HAVING count(*) > 0;
    """),
    # The chat app's sessions and turns: each turn keeps its story (events, decision, tool,
    # result, error, usage) beside the checkpointer, which keeps only what the graph needs.
    # It landed after 6 did; `migrate` applies every version a library lacks, not only the
    # ones above its highest, so a library already at 6 still gets it.
    (5, """
    CREATE TABLE IF NOT EXISTS chat_sessions (
        session_id text PRIMARY KEY,
        owner text NOT NULL DEFAULT '',
        title text NOT NULL DEFAULT '',
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX IF NOT EXISTS chat_sessions_owner ON chat_sessions (owner, updated_at);
    CREATE TABLE IF NOT EXISTS chat_turns (
        session_id text NOT NULL REFERENCES chat_sessions(session_id) ON DELETE CASCADE,
        turn integer NOT NULL,
        request text NOT NULL,
        status text NOT NULL
            CHECK (status IN ('queued', 'running', 'done', 'failed', 'interrupted')),
        input_files jsonb NOT NULL DEFAULT '[]',
        answer text NOT NULL DEFAULT '',
        decision text NOT NULL DEFAULT '',
        tool text,
        version integer,
        tool_status text,
        arguments jsonb,
        result jsonb,
        error text NOT NULL DEFAULT '',
        usage jsonb NOT NULL DEFAULT '{}',
        route jsonb NOT NULL DEFAULT '[]',
        events jsonb NOT NULL DEFAULT '[]',
        created_at timestamptz NOT NULL DEFAULT now(),
        started_at timestamptz,
        finished_at timestamptz,
        PRIMARY KEY (session_id, turn)
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
    # The input files each execution read ([name, sha256], sorted): a repair's replay runs a
    # past call again only with the very files it had. NULL for executions logged before,
    # whose files nobody knows.
    (8, """
    ALTER TABLE tool_executions ADD COLUMN IF NOT EXISTS files jsonb;
    """),
]


def migrate(conn: psycopg.Connection, schema: str) -> list[int]:
    """Apply the migrations ``schema`` lacks; return the versions applied."""
    applied: list[int] = []
    with conn.transaction():
        # Processes starting at once must not race on the extension, the schema or a
        # migration: all of it happens under the one setup lock.
        take_setup_lock(conn, transaction=True)
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
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
