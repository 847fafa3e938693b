"""The tool library: versioned tools in PostgreSQL, indexed by meaning, mirrored to files.

The database is the source of truth. A registration is one transaction that writes the
version, moves the tool's current pointer and replaces its rows in the vector index, so a
crash leaves the old library or the new version and never half of one. The readable files
under ``<data dir>/tools`` are written after the commit and reconciled on start.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from .models import Candidate, SearchResult, ToolRecord, ToolSpec, check_tool_name

from . import db, discovery
from .db import sea_home
from .embeddings import embedding_model_id, load_embeddings
from .migrations import DEFAULT_POLICY, migrate

INDEX_TABLE = "tool_index"
DOC_NAMESPACE = uuid.UUID("5b0c2f8e-7d1a-4c41-9a57-3f1f6f1d2a10")


class ToolExists(ValueError):
    """A tool of that name exists and the registration was not meant as a new version."""


class ToolNotFound(KeyError):
    """No tool (or version) of that name."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "tool not found"


class IndexModelMismatch(RuntimeError):
    """The index was built by another embedding model than the configured one."""


def _crash_point(name: str) -> None:
    # Lets the atomicity tests kill the process at a chosen point of a registration.
    if os.environ.get("SEA_CRASH_AT") == name:
        os._exit(86)


def _overlay(base: dict, changes: dict) -> dict:
    """Return a copy of ``base`` with ``changes`` applied, merging nested dicts one level."""
    merged = json.loads(json.dumps(base))
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key].update(value)
        else:
            merged[key] = value
    return merged


def code_hash(code: str) -> str:
    """Return the hash that identifies an implementation."""
    return hashlib.sha256(code.encode()).hexdigest()


class ToolLibrary:
    """Register, find, version and log tools."""

    _engines: dict[str, object] = {}
    _engines_lock = threading.Lock()

    def __init__(self, url: str | None = None, schema: str | None = None,
                 files_dir: Path | None = None, model_id: str | None = None):
        schema = schema or os.environ.get("SEA_LIBRARY_SCHEMA") or "sea"
        if not schema.isidentifier():
            raise ValueError(f"schema {schema!r} is not an identifier")
        self.url = url or db.database_url()
        self.schema = schema
        self.files_dir = files_dir or (sea_home() / "tools" if schema == "sea"
                                       else sea_home() / f"tools-{schema}")
        self.model_id = model_id or embedding_model_id()
        self._store = None
        self._store_lock = threading.Lock()
        self._local = threading.local()
        with self.connect() as conn:
            migrate(conn, schema)

    # -- connections ------------------------------------------------------------------------

    def connect(self) -> psycopg.Connection:
        """Open a connection whose search path is this library's schema."""
        conn = db.connect(self.url, row_factory=dict_row)
        conn.execute(sql.SQL("SET search_path TO {}, public").format(
            sql.Identifier(self.schema)))
        conn.commit()
        return conn

    def _reader(self) -> psycopg.Connection:
        """Return this thread's long-lived autocommit connection for reads."""
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = self.connect()
            conn.autocommit = True
            self._local.conn = conn
        return conn

    def close(self) -> None:
        """Close this thread's read connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and not conn.closed:
            conn.close()

    # -- the vector index -------------------------------------------------------------------

    def _engine(self):
        from langchain_postgres import PGEngine

        with self._engines_lock:
            if self.url not in self._engines:
                self._engines[self.url] = PGEngine.from_connection_string(
                    db.sqlalchemy_url(self.url), pool_pre_ping=True)
            return self._engines[self.url]

    def index_model(self) -> str | None:
        """Return the id of the embedding model that built the index, if any."""
        row = self._reader().execute(
            "SELECT value FROM index_meta WHERE key = 'model'").fetchone()
        return row["value"] if row else None

    def _ensure_index(self, dimension: int) -> None:
        """Create the vector table (through PGEngine) and its HNSW index if missing."""
        from langchain_postgres import Column

        exists = self._reader().execute(
            "SELECT to_regclass(%s) AS t", (f"{self.schema}.{INDEX_TABLE}",)).fetchone()["t"]
        if exists:
            return
        self._engine().init_vectorstore_table(
            table_name=INDEX_TABLE, vector_size=dimension, schema_name=self.schema,
            metadata_columns=[Column("tool_name", "TEXT"), Column("kind", "TEXT"),
                              Column("version", "INTEGER")],
            overwrite_existing=False)
        with self.connect() as conn:
            conn.execute(sql.SQL(
                "CREATE INDEX IF NOT EXISTS {} ON {} USING hnsw (embedding vector_cosine_ops)"
            ).format(sql.Identifier(f"{INDEX_TABLE}_hnsw"), sql.Identifier(INDEX_TABLE)))
            conn.execute(sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (tool_name)").format(
                sql.Identifier(f"{INDEX_TABLE}_tool"), sql.Identifier(INDEX_TABLE)))
            conn.execute("INSERT INTO index_meta (key, value) VALUES ('model', %s) "
                         "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                         (self.model_id,))
            conn.execute("INSERT INTO index_meta (key, value) VALUES ('dimension', %s) "
                         "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                         (str(dimension),))

    def vector_store(self):
        """Return the PGVectorStore over the index (created on first use)."""
        with self._store_lock:
            if self._store is None:
                from langchain_postgres import PGVectorStore

                built_by = self.index_model()
                if built_by and built_by != self.model_id:
                    raise IndexModelMismatch(
                        f"the tool index was built with {built_by} but {self.model_id} is "
                        "configured; run `sea tools reembed` to rebuild it")
                embeddings = load_embeddings(self.model_id)
                self._ensure_index(len(embeddings.embed_query("dimension")))
                self._store = PGVectorStore.create_sync(
                    engine=self._engine(), embedding_service=embeddings,
                    table_name=INDEX_TABLE, schema_name=self.schema,
                    metadata_columns=["tool_name", "kind", "version"])
            return self._store

    def _index_docs(self, spec: ToolSpec) -> list[tuple[str, str]]:
        """Return the (kind, text) pairs a tool is found by, served requests included."""
        docs = [("purpose", spec.index_text())]
        docs += [("example", e.strip()) for e in spec.examples[:10] if e.strip()]
        docs += [("request", r.strip()) for r in self._served_requests(spec.name) if r.strip()]
        seen: set[str] = set()
        return [(k, t) for k, t in docs if not (t in seen or seen.add(t))]

    def _write_index_rows(self, conn: psycopg.Connection, name: str, version: int,
                          docs: list[tuple[str, str]], vectors: list[list[float]],
                          replace: bool = True) -> None:
        # Written in the registration's own transaction (not through the store's separate
        # connection), so the index can never disagree with the committed library.
        if replace:
            conn.execute(sql.SQL("DELETE FROM {} WHERE tool_name = %s").format(
                sql.Identifier(INDEX_TABLE)), (name,))
        with conn.cursor() as cur:
            cur.executemany(
                sql.SQL("INSERT INTO {} (langchain_id, content, embedding, tool_name, kind, "
                        "version, langchain_metadata) VALUES (%s, %s, %s::vector, %s, %s, %s, "
                        "%s)").format(sql.Identifier(INDEX_TABLE)),
                [(str(uuid.uuid5(DOC_NAMESPACE, f"{name}:{version}:{kind}:{text}")), text,
                  str([float(x) for x in vector]), name, kind, version, Jsonb({}))
                 for (kind, text), vector in zip(docs, vectors, strict=True)])

    # -- registration -----------------------------------------------------------------------

    def register(self, spec: ToolSpec, code: str, tests: str, report: dict | None = None,
                 status: str = "verified", reason: str = "created",
                 new_version: bool = False) -> ToolRecord:
        """Register a tool atomically.

        A name in use is refused unless ``new_version`` says this is a repair or an update.
        """
        return self.register_many([(spec, code, tests, report or {}, status, reason)],
                                  new_version=new_version)[0]

    def register_many(self, items: list[tuple[ToolSpec, str, str, dict, str, str]],
                      new_version: bool = False) -> list[ToolRecord]:
        """Register several tools in one transaction (all or none)."""
        for spec, *_ in items:
            check_tool_name(spec.name)
        store = self.vector_store()
        all_docs = [self._index_docs(spec) for spec, *_ in items]
        # Embed before the transaction: a failing model must leave nothing behind.
        flat = [text for docs in all_docs for _, text in docs]
        vectors = store.embeddings.embed_documents(flat) if flat else []
        records: list[ToolRecord] = []
        with self.connect() as conn, conn.transaction():
            position = 0
            for (spec, code, tests, report, status, reason), docs in zip(items, all_docs,
                                                                         strict=True):
                row = conn.execute("SELECT current_version, status FROM tools WHERE name = %s "
                                   "FOR UPDATE", (spec.name,)).fetchone()
                if row and row["status"] != "retired" and not new_version:
                    raise ToolExists(
                        f"a tool named {spec.name!r} exists (v{row['current_version']}); a new "
                        "version must be registered as a repair or an explicit update")
                version = 1 + (conn.execute(
                    "SELECT coalesce(max(version), 0) AS v FROM tool_versions WHERE name = %s",
                    (spec.name,)).fetchone()["v"])
                if row is None:
                    conn.execute("INSERT INTO tools (name, current_version, status) "
                                 "VALUES (%s, %s, %s)", (spec.name, version, status))
                conn.execute(
                    "INSERT INTO tool_versions (name, version, status, spec, code, tests, report,"
                    " code_hash, reason) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (spec.name, version, status, Jsonb(spec.model_dump()), code, tests,
                     Jsonb(report), code_hash(code), reason))
                _crash_point("after_version_insert")
                conn.execute("UPDATE tools SET current_version = %s, status = %s, "
                             "updated_at = now() WHERE name = %s", (version, status, spec.name))
                self._write_index_rows(conn, spec.name, version, docs,
                                       vectors[position:position + len(docs)])
                position += len(docs)
                _crash_point("before_commit")
                records.append(ToolRecord(name=spec.name, version=version, status=status,
                                          spec=spec, code=code, tests=tests, report=report,
                                          code_hash=code_hash(code), reason=reason))
        _crash_point("after_commit")
        for record in records:
            self._write_files(record)
        return records

    # -- reading ----------------------------------------------------------------------------

    def _record(self, row: dict) -> ToolRecord:
        return ToolRecord(name=row["name"], version=row["version"], status=row["status"],
                          spec=ToolSpec.model_validate(row["spec"]), code=row["code"],
                          tests=row["tests"], report=row["report"], code_hash=row["code_hash"],
                          reason=row["reason"], created_at=row["created_at"],
                          current=row.get("current", True), uses=row.get("uses", 0),
                          successes=row.get("successes", 0))

    def get(self, name: str, version: int | None = None) -> ToolRecord:
        """Return the current (or the given) version of a tool."""
        row = self._reader().execute(
            "SELECT v.*, t.uses, t.successes, (v.version = t.current_version) AS current "
            "FROM tools t JOIN tool_versions v ON v.name = t.name "
            "WHERE t.name = %s AND v.version = coalesce(%s, t.current_version)",
            (name, version)).fetchone()
        if row is None:
            raise ToolNotFound(f"no tool {name!r}" + (f" version {version}" if version else ""))
        return self._record(row)

    def list_tools(self, include_retired: bool = False) -> list[ToolRecord]:
        """Return the current version of every tool."""
        rows = self._reader().execute(
            "SELECT v.*, t.uses, t.successes, t.status AS tool_status, true AS current "
            "FROM tools t JOIN tool_versions v "
            "ON v.name = t.name AND v.version = t.current_version "
            "WHERE %s OR t.status <> 'retired' ORDER BY t.name", (include_retired,)).fetchall()
        records = []
        for row in rows:
            row["status"] = row["tool_status"]
            records.append(self._record(row))
        return records

    def name_taken(self, name: str) -> bool:
        """Tell whether a tool that is not retired has this name."""
        return self._reader().execute(
            "SELECT 1 FROM tools WHERE name = %s AND status <> 'retired'", (name,)
        ).fetchone() is not None

    def versions(self, name: str) -> list[ToolRecord]:
        """Return every version of a tool, oldest first."""
        rows = self._reader().execute(
            "SELECT v.*, t.uses, t.successes, (v.version = t.current_version) AS current "
            "FROM tool_versions v JOIN tools t ON t.name = v.name WHERE v.name = %s "
            "ORDER BY v.version", (name,)).fetchall()
        if not rows:
            raise ToolNotFound(f"no tool {name!r}")
        return [self._record(r) for r in rows]

    def executions(self, name: str, limit: int = 20) -> list[dict]:
        """Return a tool's most recent executions."""
        return self._reader().execute(
            "SELECT * FROM tool_executions WHERE name = %s ORDER BY id DESC LIMIT %s",
            (name, limit)).fetchall()

    def _served_requests(self, name: str) -> list[str]:
        """Return the first distinct requests the tool served (up to the policy's cap)."""
        limit = self.policy().get("served_requests_indexed", 20)
        rows = self._reader().execute(
            "SELECT request, min(id) AS first FROM tool_executions "
            "WHERE name = %s AND success AND request <> '' GROUP BY request "
            "ORDER BY first LIMIT %s", (name, limit)).fetchall()
        return [r["request"] for r in rows]

    # -- changing the current version -------------------------------------------------------

    def _reindex(self, conn: psycopg.Connection, record: ToolRecord) -> None:
        docs = self._index_docs(record.spec)
        vectors = self.vector_store().embeddings.embed_documents([t for _, t in docs])
        self._write_index_rows(conn, record.name, record.version, docs, vectors)

    def rollback(self, name: str, version: int) -> ToolRecord:
        """Make an earlier (or any) version the current one."""
        record = self.get(name, version)
        with self.connect() as conn, conn.transaction():
            conn.execute("UPDATE tools SET current_version = %s, status = %s, "
                         "updated_at = now() WHERE name = %s", (version, record.status, name))
            self._reindex(conn, record)
        return self.get(name)

    def remove(self, name: str) -> None:
        """Retire a tool: it keeps its history but is no longer found or listed."""
        self.get(name)
        with self.connect() as conn, conn.transaction():
            conn.execute("UPDATE tools SET status = 'retired', updated_at = now() "
                         "WHERE name = %s", (name,))
            conn.execute(sql.SQL("DELETE FROM {} WHERE tool_name = %s").format(
                sql.Identifier(INDEX_TABLE)), (name,))

    # -- executions, reflections, policy ----------------------------------------------------

    def record_execution(self, name: str, version: int, inputs: dict, output,
                         success: bool, error: str = "", duration: float = 0.0,
                         session_id: str = "", request: str = "") -> None:
        """Log one execution, update the tool's counters, and index a served request."""
        with self.connect() as conn, conn.transaction():
            conn.execute(
                "INSERT INTO tool_executions (name, version, inputs, output, success, error, "
                "duration, session_id, request) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (name, version, Jsonb(inputs), Jsonb(output), success, error[:4000], duration,
                 session_id, request[:2000]))
            conn.execute("UPDATE tools SET uses = uses + 1, successes = successes + %s "
                         "WHERE name = %s", (int(success), name))
        if success and request.strip():
            self._index_served_request(name, version, request.strip())

    def _index_served_request(self, name: str, version: int, request: str) -> None:
        """Index a request the tool served: the best description of what it is for.

        Only the new text is embedded, and only while the tool is under the policy's cap.
        """
        if request not in self._served_requests(name):
            return  # already indexed, or past the cap
        reader = self._reader()
        indexed = reader.execute(sql.SQL(
            "SELECT count(*) FILTER (WHERE content = %s) AS same, max(version) AS version "
            "FROM {} WHERE tool_name = %s").format(sql.Identifier(INDEX_TABLE)),
            (request, name)).fetchone()
        if indexed["same"] or indexed["version"] != version:
            return  # the text is there already, or the index serves another version
        vector = self.vector_store().embeddings.embed_documents([request])
        with self.connect() as conn, conn.transaction():
            conn.execute("SELECT 1 FROM tools WHERE name = %s FOR UPDATE", (name,))
            self._write_index_rows(conn, name, version, [("request", request)], vector,
                                   replace=False)

    def log_reflection(self, name: str, attempt: int, failing_tests: list[dict],
                       note: str = "", session_id: str = "") -> None:
        """Keep what failed and what the reflection changed."""
        with self.connect() as conn:
            conn.execute("INSERT INTO reflections (name, attempt, failing_tests, note, "
                         "session_id) VALUES (%s, %s, %s, %s, %s)",
                         (name, attempt, Jsonb(failing_tests), note, session_id))

    def reflections(self, name: str) -> list[dict]:
        """Return a tool's reflection log."""
        return self._reader().execute(
            "SELECT * FROM reflections WHERE name = %s ORDER BY id", (name,)).fetchall()

    def record_workflow(self, request_pattern: str, steps: list[dict]) -> None:
        """Keep a multi-step plan for later reuse."""
        with self.connect() as conn:
            conn.execute("INSERT INTO workflow_patterns (request_pattern, steps) VALUES (%s, %s)",
                         (request_pattern, Jsonb(steps)))

    def policy(self) -> dict:
        """Return the newest policy, over the defaults."""
        row = self._reader().execute(
            "SELECT value FROM policies ORDER BY version DESC LIMIT 1").fetchone()
        return _overlay(DEFAULT_POLICY, row["value"] if row else {})

    def set_policy(self, changes: dict, note: str = "") -> int:
        """Store a new policy version with ``changes`` applied; return its version."""
        value = _overlay(self.policy(), changes)
        with self.connect() as conn, conn.transaction():
            conn.execute("LOCK TABLE policies IN EXCLUSIVE MODE")
            version = conn.execute("SELECT coalesce(max(version), 0) + 1 AS v "
                                   "FROM policies").fetchone()["v"]
            conn.execute("INSERT INTO policies (version, value, note) VALUES (%s, %s, %s)",
                         (version, Jsonb(value), note))
        return version

    def thresholds(self, policy: dict | None = None) -> dict:
        """Return the reuse / verify thresholds for this library's embedding model."""
        table = (policy or self.policy())["thresholds"]
        return table.get(self.model_id) or table["default"]

    # -- discovery --------------------------------------------------------------------------

    def search(self, query: str, k: int = 5, vector: list[float] | None = None
               ) -> SearchResult:
        """Rank tools for ``query`` and decide reuse, verify or synthesize."""
        store = self.vector_store()
        if vector is None:
            vector = store.embeddings.embed_query(query)
        hits = store.similarity_search_with_score_by_vector(vector, k=max(20, k * 4))
        best: dict[str, tuple[float, str, int]] = {}
        for doc, distance in hits:
            name = doc.metadata.get("tool_name")
            similarity = 1.0 - float(distance)
            if name and (name not in best or similarity > best[name][0]):
                best[name] = (similarity, doc.page_content, doc.metadata.get("version"))
        policy = self.policy()
        rows = self._reader().execute(
            "SELECT t.name, t.current_version, t.status, t.uses, t.successes, "
            "v.spec->>'description' AS description, v.spec->'returns'->>'type' AS returns "
            "FROM tools t JOIN tool_versions v "
            "ON v.name = t.name AND v.version = t.current_version "
            "WHERE t.name = ANY(%s) AND t.status <> 'retired'", (list(best),)).fetchall()
        candidates = []
        for row in rows:
            similarity, text, version = best[row["name"]]
            if version != row["current_version"]:
                continue  # a stale index row; never offer a version that is not current
            rate = row["successes"] / row["uses"] if row["uses"] else None
            candidates.append(Candidate(
                name=row["name"], version=row["current_version"], status=row["status"],
                description=row["description"], similarity=round(similarity, 4),
                matched_text=text, success_rate=rate, uses=row["uses"],
                score=round(discovery.rank_score(similarity, rate, row["uses"], row["status"],
                                                 policy["weights"]), 4),
                conflict=discovery.conflict(row["name"], row["description"], query,
                                            row["returns"] or "")))
        candidates.sort(key=lambda c: -c.score)
        candidates = candidates[:k]
        limits = self.thresholds(policy)
        decision, chosen, reason = discovery.decide(candidates, limits["reuse"],
                                                    limits["verify"])
        return SearchResult(query=query, candidates=candidates, decision=decision,
                            chosen=chosen, reason=reason, thresholds=limits,
                            embedding_model=self.model_id)

    # -- re-embedding -----------------------------------------------------------------------

    def reembed(self, progress: Callable[[Iterable], Iterable] = lambda it: it) -> int:
        """Rebuild the index with the configured embedding model; return the tools indexed."""
        embeddings = load_embeddings(self.model_id)
        dimension = len(embeddings.embed_query("dimension"))
        tools = self.list_tools()
        prepared = []
        for record in progress(tools):
            docs = self._index_docs(record.spec)
            prepared.append((record, docs, embeddings.embed_documents([t for _, t in docs])))
        with self.connect() as conn, conn.transaction():
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(INDEX_TABLE)))
            conn.execute("DELETE FROM index_meta")
        with self._store_lock:
            self._store = None
        self._ensure_index(dimension)
        with self.connect() as conn, conn.transaction():
            for record, docs, vectors in prepared:
                self._write_index_rows(conn, record.name, record.version, docs, vectors)
        self.vector_store()
        return len(prepared)

    # -- the readable mirror ----------------------------------------------------------------

    def _version_dir(self, name: str, version: int) -> Path:
        return self.files_dir / name / f"v{version}"

    @staticmethod
    def _file_contents(record: ToolRecord) -> dict[str, str]:
        spec = record.spec.model_dump()
        spec.update(version=record.version, status=record.status, reason=record.reason,
                    code_hash=record.code_hash)
        return {"tool.py": record.code, "test_tool.py": record.tests,
                "spec.json": json.dumps(spec, indent=2, sort_keys=True) + "\n"}

    def _write_files(self, record: ToolRecord) -> None:
        """Write a version's files through a temporary folder renamed into place."""
        target = self._version_dir(record.name, record.version)
        staging = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}")
        staging.mkdir(parents=True)
        for filename, content in self._file_contents(record).items():
            (staging / filename).write_text(content)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)

    def reconcile_files(self) -> list[str]:
        """Repair the mirror from the database; return what was repaired."""
        repairs: list[str] = []
        expected: set[Path] = set()
        rows = self._reader().execute(
            "SELECT v.*, true AS current FROM tool_versions v ORDER BY name, version").fetchall()
        for row in rows:
            record = self._record(row)
            folder = self._version_dir(record.name, record.version)
            expected.add(folder)
            contents = self._file_contents(record)
            drifted = [f for f, text in contents.items()
                       if not (folder / f).exists() or (folder / f).read_text() != text]
            if drifted:
                self._write_files(record)
                repairs.append(f"rewrote {record.name} v{record.version}: {', '.join(drifted)}")
        if self.files_dir.exists():
            for tool_dir in self.files_dir.iterdir():
                if not tool_dir.is_dir():
                    continue
                for folder in tool_dir.iterdir():
                    if folder.is_dir() and folder not in expected:
                        shutil.rmtree(folder)
                        repairs.append(f"removed {tool_dir.name}/{folder.name}: not in the "
                                       "database")
                if not any(tool_dir.iterdir()):
                    tool_dir.rmdir()
        return repairs

    def drop(self) -> None:
        """Delete this library's schema and files (for throwaway libraries)."""
        self.close()
        with self.connect() as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                sql.Identifier(self.schema)))
        shutil.rmtree(self.files_dir, ignore_errors=True)
