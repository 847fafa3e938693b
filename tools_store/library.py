"""The tool library: a thin front over the records, the vector index, policies and the mirror.

The database is the source of truth. A registration is one transaction that writes the
version, moves the tool's current pointer and replaces its rows in the vector index, so a
crash leaves the old library or the new version and never half of one. The readable files
are written after the commit and reconciled on start. Every failure of the database driver
comes out as a ``LibraryError``.

Why this module is long: it is the library's one public front, and each of its methods is a
few lines that delegate to ``records``, ``index``, ``policies`` or ``mirror``.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from . import db, discovery, policies, records
from .db import sea_home
from .embeddings import embedding_model_id, load_embeddings
from .errors import LibraryError, ToolNotFound
from .index import Docs, ToolIndex
from .migrations import migrate
from .mirror import FileMirror
from .models import Candidate, SearchResult, ToolRecord, ToolSpec, check_tool_name
from .sessions import SessionData
from .workflows import WorkflowStore

code_hash = records.code_hash


def _crash_point(name: str) -> None:
    # Lets the atomicity tests kill the process at a chosen point of a registration.
    if os.environ.get("SEA_CRASH_AT") == name:
        os._exit(86)


def _driver_errors(method: Callable) -> Callable:
    """Turn the database driver's errors into LibraryError (other errors are bugs)."""
    @functools.wraps(method)
    def run(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except psycopg.Error as exc:
            raise LibraryError(f"the library's database failed: {type(exc).__name__}: "
                               f"{exc}") from exc
    return run


def _wrap_public_methods(cls: type) -> type:
    for name, value in list(vars(cls).items()):
        if callable(value) and not name.startswith("_"):
            setattr(cls, name, _driver_errors(value))
    return cls


_wrap_public_methods(SessionData)
_wrap_public_methods(WorkflowStore)


@_wrap_public_methods
class ToolLibrary:
    """Register, find, version and log tools."""

    def __init__(self, url: str | None = None, schema: str | None = None,
                 files_dir: Path | None = None, model_id: str | None = None):
        schema = schema or os.environ.get("SEA_LIBRARY_SCHEMA") or "sea"
        if not schema.isidentifier():
            raise LibraryError(f"schema {schema!r} is not an identifier")
        self.url = url or db.database_url()
        self.schema = schema
        self.files_dir = files_dir or (sea_home() / "tools" if schema == "sea"
                                       else sea_home() / f"tools-{schema}")
        self.mirror = FileMirror(self.files_dir)
        self.model_id = model_id or embedding_model_id()
        self._local = threading.local()
        self.index = ToolIndex(self.url, schema, self.model_id, self._reader, self.connect)
        # Session data (items and memory) and learned workflows, on the same connections.
        self.sessions = SessionData(self.connect, self._reader, self.index, self.model_id,
                                    sea_home() / ("sessions" if schema == "sea"
                                                  else f"sessions-{schema}"))
        self.workflows = WorkflowStore(self.connect, self._reader, self.index, self.model_id)
        try:
            with self.connect() as conn:
                migrate(conn, schema)
        except psycopg.Error as exc:
            raise LibraryError(f"the library's schema could not be prepared: {exc}") from exc

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

    def vector_store(self):
        """Return the PGVectorStore over the index (loads the embedding model)."""
        return self.index.store()

    def index_model(self) -> str | None:
        """Return the id of the embedding model that built the index, if any."""
        return self.index.built_by()

    # -- registration -----------------------------------------------------------------------

    def _index_docs(self, spec: ToolSpec) -> Docs:
        """Return the (kind, text) pairs a tool is found by, served requests included."""
        docs = [("purpose", spec.index_text())]
        docs += [("example", e.strip()) for e in spec.examples[:10] if e.strip()]
        docs += [("request", r.strip()) for r in self._served_requests(spec.name) if r.strip()]
        seen: set[str] = set()
        return [(k, t) for k, t in docs if not (t in seen or seen.add(t))]

    def register(self, spec: ToolSpec, code: str, tests: str, report: dict | None = None,
                 status: str = "verified", reason: str = "created",
                 new_version: bool = False, components: list[dict] | None = None
                 ) -> ToolRecord:
        """Register a tool atomically.

        A name in use is refused unless ``new_version`` says this is a repair or an update.
        ``components`` pins a composite's component tools (name, version) with the version.
        """
        return self.register_many([(spec, code, tests, report or {}, status, reason)],
                                  new_version=new_version, components=components)[0]

    def register_many(self, items: list[tuple[ToolSpec, str, str, dict, str, str]],
                      new_version: bool = False, components: list[dict] | None = None
                      ) -> list[ToolRecord]:
        """Register several tools in one transaction (all or none)."""
        for spec, *_ in items:
            check_tool_name(spec.name)
        all_docs = [self._index_docs(spec) for spec, *_ in items]
        # Embed before the transaction: a failing model must leave nothing behind.
        vectors = self.index.embed([text for docs in all_docs for _, text in docs])
        added: list[ToolRecord] = []
        with self.connect() as conn, conn.transaction():
            position = 0
            for (spec, code, tests, report, status, reason), docs in zip(items, all_docs,
                                                                         strict=True):
                record = records.insert_version(conn, spec, code, tests, report, status,
                                                reason, new_version)
                if components:
                    records.set_components(conn, spec.name, record.version, components)
                    record.components = components
                _crash_point("after_version_insert")
                records.make_current(conn, spec.name, record.version, status)
                self.index.write(conn, spec.name, record.version, docs,
                                 vectors[position:position + len(docs)])
                position += len(docs)
                _crash_point("before_commit")
                added.append(record)
        _crash_point("after_commit")
        for record in added:
            self.mirror.write(record)
        return added

    # -- reading ----------------------------------------------------------------------------

    def get(self, name: str, version: int | None = None) -> ToolRecord:
        """Return the current (or the given) version of a tool."""
        return records.get(self._reader(), name, version)

    def list_tools(self, include_retired: bool = False) -> list[ToolRecord]:
        """Return the current version of every tool."""
        return records.current_versions(self._reader(), include_retired)

    def name_taken(self, name: str) -> bool:
        """Tell whether a tool that is not retired has this name."""
        return records.name_taken(self._reader(), name)

    def versions(self, name: str) -> list[ToolRecord]:
        """Return every version of a tool, oldest first."""
        found = records.all_versions(self._reader(), name)
        if not found:
            raise ToolNotFound(f"no tool {name!r}")
        return found

    def component_modules(self, record: ToolRecord) -> dict[str, str]:
        """Return the source files a composite needs beside it: its pinned components."""
        modules: dict[str, str] = {}
        pending = list(record.components)
        while pending:
            pin = pending.pop()
            component = self.get(pin["name"], pin["version"])
            filename = f"{component.name}.py"
            if modules.get(filename, component.code) != component.code:
                raise LibraryError(f"{record.name} needs two versions of {component.name}")
            modules[filename] = component.code
            pending += component.components
        return modules

    def executions(self, name: str, limit: int = 20) -> list[dict]:
        """Return a tool's most recent executions."""
        return records.executions(self._reader(), name, limit)

    def _served_requests(self, name: str) -> list[str]:
        limit = self.policy().get("served_requests_indexed", 20)
        return records.served_requests(self._reader(), name, limit)

    # -- changing the current version -------------------------------------------------------

    def rollback(self, name: str, version: int) -> ToolRecord:
        """Make an earlier (or any) version the current one."""
        record = self.get(name, version)
        docs = self._index_docs(record.spec)
        vectors = self.index.embed([t for _, t in docs])
        with self.connect() as conn, conn.transaction():
            records.make_current(conn, name, version, record.status)
            self.index.write(conn, name, version, docs, vectors)
        return self.get(name)

    def remove(self, name: str) -> None:
        """Retire a tool: it keeps its history but is no longer found or listed."""
        self.get(name)
        with self.connect() as conn, conn.transaction():
            records.retire(conn, name)
            self.index.delete(conn, name)

    # -- executions, reflections, workflows -------------------------------------------------

    def record_execution(self, name: str, version: int, inputs: dict, output,
                         success: bool, error: str = "", duration: float = 0.0,
                         session_id: str = "", request: str = "") -> None:
        """Log one execution, update the tool's counters, and index a served request."""
        with self.connect() as conn, conn.transaction():
            records.add_execution(conn, name, version, inputs, output, success, error,
                                  duration, session_id, request)
        if success and request.strip():
            self._index_served_request(name, version, request.strip())

    def _index_served_request(self, name: str, version: int, request: str) -> None:
        """Index a request the tool served: the best description of what it is for.

        Only the new text is embedded, and only while the tool is under the policy's cap.
        """
        if request not in self._served_requests(name):
            return  # already indexed, or past the cap
        present, indexed_version = self.index.has_text(name, request)
        if present or indexed_version != version:
            return  # the text is there already, or the index serves another version
        vector = self.index.embed([request])
        with self.connect() as conn, conn.transaction():
            conn.execute("SELECT 1 FROM tools WHERE name = %s FOR UPDATE", (name,))
            self.index.write(conn, name, version, [("request", request)], vector,
                             replace=False)

    def log_reflection(self, name: str, attempt: int, failing_tests: list[dict],
                       note: str = "", session_id: str = "") -> None:
        """Keep what failed and what the reflection changed."""
        with self.connect() as conn:
            records.add_reflection(conn, name, attempt, failing_tests, note, session_id)

    def reflections(self, name: str) -> list[dict]:
        """Return a tool's reflection log."""
        return records.reflections(self._reader(), name)

    def record_workflow(self, request_pattern: str, steps: list[dict]) -> None:
        """Keep a multi-step plan for later reuse."""
        with self.connect() as conn:
            records.add_workflow(conn, request_pattern, steps)

    # -- policy -----------------------------------------------------------------------------

    def policy(self) -> dict:
        """Return the newest policy, over the defaults."""
        return policies.current(self._reader())

    def set_policy(self, changes: dict, note: str = "") -> int:
        """Store a new policy version with ``changes`` applied; return its version."""
        with self.connect() as conn:
            return policies.store(conn, changes, note)

    def thresholds(self, policy: dict | None = None) -> dict:
        """Return the reuse / verify thresholds for this library's embedding model."""
        return policies.thresholds(policy or self.policy(), self.model_id)

    # -- discovery --------------------------------------------------------------------------

    def search(self, query: str, k: int = 5, vector: list[float] | None = None
               ) -> SearchResult:
        """Rank tools for ``query``; the caller decides what to do with them."""
        if vector is None:
            vector = self.index.embed_query(query)
        best = self.index.nearest(vector, k=max(20, k * 4))
        policy = self.policy()
        candidates = []
        for row in records.offered(self._reader(), list(best)):
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
        return SearchResult(query=query, candidates=candidates[:k],
                            thresholds=self.thresholds(policy), embedding_model=self.model_id)

    # -- re-embedding and the mirror --------------------------------------------------------

    def reembed(self, progress: Callable[[Iterable], Iterable] = lambda it: it) -> int:
        """Rebuild the index with the configured embedding model; return the tools indexed."""
        embeddings = load_embeddings(self.model_id)
        prepared = []
        for record in progress(self.list_tools()):
            docs = self._index_docs(record.spec)
            prepared.append((record.name, record.version, docs,
                             embeddings.embed_documents([t for _, t in docs])))
        self.index.rebuild(prepared, len(embeddings.embed_query("dimension")))
        return len(prepared)

    def reconcile_files(self) -> list[str]:
        """Repair the mirror from the database; return what was repaired."""
        return self.mirror.reconcile(records.all_versions(self._reader()))

    def drop(self) -> None:
        """Delete this library's schema and files (for throwaway libraries)."""
        self.close()
        with self.connect() as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                sql.Identifier(self.schema)))
        self.mirror.remove()
        self.sessions.remove_files()
