"""The tool library: a thin front over the records, the vector index, policies and the mirror.

The database is the source of truth. A registration is one transaction that writes the
version, moves the tool's current pointer and replaces its rows in the vector index, so a
crash leaves the old library or the new version and never half of one. The readable files
are written after the commit and reconciled on start. Every failure of the database driver
comes out as a ``LibraryError``.

Why this module is long: it is the library's one public front, and each of its methods is a
few lines that delegate to ``records``, ``index``, ``evidence``, ``cache``, ``policies`` or
``mirror``.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from . import cache, db, discovery, evidence, policies, records
from .db import sea_home
from .embeddings import embedding_model_id, load_embeddings
from .errors import BadQuery, LibraryError, ToolNotFound
from .history import version_history
from .index import Docs, ToolIndex
from .migrations import migrate
from .mirror import FileMirror
from .models import Candidate, Evidence, SearchResult, ToolRecord, ToolSpec, check_tool_name
from .sessions import SessionData, check_session_id
from .text import check_storable, unstorable
from .workflows import WorkflowStore

code_hash = records.code_hash
log = logging.getLogger(__name__)


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
        self._reads = db.PooledReads(self.url, schema)
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

    def _reader(self) -> db.PooledReads:
        """Return the library's reads: each statement borrows a connection of a small pool."""
        return self._reads

    def close(self) -> None:
        """Close the read connections."""
        self._reads.close()

    @property
    def channel(self) -> str:
        """Return the PostgreSQL channel notified when the set of current tools changes."""
        return f"sea_tools_{self.schema}"

    def _notify_changed(self, conn: psycopg.Connection) -> None:
        """Tell listeners (say, an MCP server in another process) the tool list changed.

        Sent inside the caller's transaction, so it is delivered only if that commits.
        """
        conn.execute(sql.SQL("NOTIFY {}").format(sql.Identifier(self.channel)))

    def vector_store(self):
        """Return the PGVectorStore over the index (loads the embedding model)."""
        return self.index.store()

    def index_model(self) -> str | None:
        """Return the id of the embedding model that built the index, if any."""
        return self.index.built_by()

    # -- registration -----------------------------------------------------------------------

    def _index_docs(self, spec: ToolSpec) -> Docs:
        """Return the (kind, text) pairs a tool is found by: its purpose and examples.

        Served requests are not among them: a wrong reuse would lock itself in. They are
        weak evidence instead (``add_evidence``).
        """
        docs = [("purpose", spec.index_text())]
        docs += [("example", e.strip()) for e in spec.examples[:10] if e.strip()]
        seen: set[str] = set()
        return [(k, t) for k, t in docs if not (t in seen or seen.add(t))]

    def register(self, spec: ToolSpec, code: str, tests: str, report: dict | None = None,
                 status: str = "verified", reason: str = "created",
                 new_version: bool = False, origin: dict | None = None,
                 components: list[dict] | None = None) -> ToolRecord:
        """Register a tool atomically.

        A name in use is refused unless ``new_version`` says this is a repair or an update;
        ``origin`` keeps what a repair started from (the failure, the tests it added);
        ``components`` pins a composite's component tools (name, version) with the version.
        """
        return self.register_many([(spec, code, tests, report or {}, status, reason)],
                                  new_version=new_version, origins=[origin or {}],
                                  components=components)[0]

    def register_many(self, items: list[tuple[ToolSpec, str, str, dict, str, str]],
                      new_version: bool = False, origins: list[dict] | None = None,
                      components: list[dict] | None = None) -> list[ToolRecord]:
        """Register several tools in one transaction (all or none)."""
        for spec, *_ in items:
            check_tool_name(spec.name)
        all_docs = [self._index_docs(spec) for spec, *_ in items]
        # Embed before the transaction: a failing model must leave nothing behind.
        vectors = self.index.embed([text for docs in all_docs for _, text in docs])
        added: list[ToolRecord] = []
        with self.connect() as conn, conn.transaction():
            position = 0
            for index, ((spec, code, tests, report, status, reason), docs) in enumerate(
                    zip(items, all_docs, strict=True)):
                record = records.insert_version(conn, spec, code, tests, report, status,
                                                reason, new_version,
                                                (origins or [])[index] if origins else None)
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
            self._notify_changed(conn)
        _crash_point("after_commit")
        for record in added:  # a mirror that cannot be written is a pending repair, no more
            problem = self.mirror.write(record)
            if problem:
                log.warning("%s v%s is registered but its files were not written: %s",
                            record.name, record.version, problem)
        return added

    def mirror_problem(self, name: str, version: int) -> str:
        """Return why a version's readable files could not be written, if they could not."""
        return self.mirror.pending.get((name, version), "")

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

    def last_execution(self, session_id: str) -> dict | None:
        """Return a session's most recent execution (the answer a user may mark wrong)."""
        return records.last_execution(self._reader(), session_id)

    def replay_set(self, name: str, limit: int, files: list[list[str]] | None = None
                   ) -> tuple[list[dict], int]:
        """Return recent calls a repair can replay on ``files``, and how many read others.

        Distinct successful calls, none the user marked wrong, with their outputs.
        """
        return records.replay_set(self._reader(), name, limit, files or [])

    def events(self, name: str) -> list[dict]:
        """Return a tool's rollbacks and retirements, with their reasons."""
        return records.events(self._reader(), name)

    def history(self, name: str) -> dict:
        """Return every version with its diff, added tests, repairs, failures and events."""
        return version_history(self.versions(name), self.reflections(name), self.events(name))

    # -- changing the current version -------------------------------------------------------

    def rollback(self, name: str, version: int, reason: str = "by hand",
                 kind: str = "rollback", only_from: int | None = None) -> ToolRecord | None:
        """Make an earlier (or any) version the current one, recording why.

        ``only_from``: roll back only while that version is still the current one of a tool
        in use, else do nothing and return None. An automatic rollback is decided before it
        runs, and meanwhile the tool may have been retired (which a rollback by hand undoes
        on purpose) or repaired.
        """
        check_storable("reason", reason)
        record = self.get(name, version)
        docs = self._index_docs(record.spec)
        vectors = self.index.embed([t for _, t in docs])
        with self.connect() as conn, conn.transaction():
            now = conn.execute("SELECT current_version, status FROM tools WHERE name = %s "
                               "FOR UPDATE", (name,)).fetchone()
            if only_from is not None and (now["current_version"] != only_from
                                          or now["status"] == "retired"):
                return None
            previous = now["current_version"]
            records.make_current(conn, name, version, record.status)
            self.index.write(conn, name, version, docs, vectors)
            self._notify_changed(conn)
            records.add_event(conn, name, kind, previous, version, reason)
        return self.get(name)

    def remove(self, name: str, reason: str = "by hand") -> None:
        """Retire a tool: it keeps its history but is no longer found or listed."""
        check_storable("reason", reason)
        current = self.get(name).version
        with self.connect() as conn, conn.transaction():
            records.retire(conn, name)
            self.index.delete(conn, name)
            self._notify_changed(conn)
            records.add_event(conn, name, "retire", current, None, reason)

    # -- executions, reflections, workflows -------------------------------------------------

    def record_execution(self, name: str, version: int, inputs: dict, output,
                         success: bool, error: str = "", duration: float = 0.0,
                         session_id: str = "", request: str = "", source: str = "agent",
                         cached: bool = False, code_hash: str = "",
                         files: list[list[str]] | None = None) -> dict | None:
        """Log one execution, update the tool's counters, roll back a regressing version.

        ``source`` says who called: ``agent`` (the graph), ``mcp``, ``langchain``;
        ``code_hash`` is the hash of the code that ran (the version's own when not given);
        ``files`` the input files it read, [name, sha256] (``cache.file_hashes``).
        When this use is the policy's ``rollback_window``-th of a version that does worse
        over them than its predecessor did, the predecessor is made current again; the
        rollback event is returned.
        """
        window = int(self.policy()["rollback_window"])
        with self.connect() as conn, conn.transaction():
            records.add_execution(conn, name, version, inputs, output, success, error,
                                  duration, session_id, request, source, cached, code_hash,
                                  files)
            regression = self._regression(conn, name, version, window)
        if regression is None:
            return None
        done = self.rollback(name, regression["to_version"], regression["reason"],
                             "auto_rollback", only_from=version)
        return regression if done else None

    def _regression(self, conn: psycopg.Connection, name: str, version: int,
                    window: int) -> dict | None:
        """Tell whether the current ``version`` just completed a worse first window."""
        row = conn.execute("SELECT t.current_version, t.status, v.parent FROM tools t JOIN "
                           "tool_versions v ON v.name = t.name AND v.version = %s "
                           "WHERE t.name = %s", (version, name)).fetchone()
        if not row or row["current_version"] != version or row["parent"] is None \
                or row["status"] == "retired":  # a retired tool stays retired
            return None
        first = records.first_uses(conn, name, version, window)
        if first["uses"] != window or window <= 0:
            return None
        before = records.get(conn, name, row["parent"])
        if before.success_rate is None or first["successes"] / window >= before.success_rate:
            return None
        reason = (f"v{version} succeeded in {first['successes']} of its first {window} uses "
                  f"({first['successes'] / window:.0%}), below v{before.version}'s "
                  f"{before.success_rate:.0%} over {before.uses}")
        return {"from_version": version, "to_version": before.version, "reason": reason}

    # -- evidence ---------------------------------------------------------------------------

    def add_evidence(self, items: list[Evidence]) -> None:
        """Keep verdicts on (request, tool), each with its request's embedding."""
        items = [e for e in items if e.request.strip()]
        if not items:
            return
        vectors = [self.index.embed_query(e.request) for e in items]
        with self.connect() as conn, conn.transaction():
            evidence.add(conn, items, vectors)

    def feedback(self, session_id: str, serves: bool, note: str = "") -> Evidence:
        """Record a user's verdict on the session's last tool run; return the evidence.

        "Wrong" also marks the positive evidence for that tool on the same request (any
        session) as wrong, so it no longer allows a direct reuse.
        """
        check_session_id(session_id)
        run = records.last_execution(self._reader(), session_id)
        if run is None or not run["request"]:
            raise ToolNotFound(f"session {session_id!r} has no tool run to give feedback on")
        item = Evidence(request=run["request"], tool=run["name"], version=run["version"],
                        serves=serves, source="user", session_id=session_id,
                        reason=note or ("the user confirmed the answer" if serves
                                        else "the user marked the answer wrong"))
        vector = self.index.embed_query(item.request)
        with self.connect() as conn, conn.transaction():
            if not serves:
                evidence.retract(conn, item.request, item.tool)
            evidence.add(conn, [item], [vector])
        return item

    def nearby_evidence(self, query: str, vector: list[float], radius: float) -> list:
        """Return the same request's evidence and the nearest within ``radius``."""
        return evidence.lookup(self._reader(), query, vector, radius)

    def evidence(self, tool: str | None = None, limit: int = 50) -> list[dict]:
        """Return recent evidence (of one tool, or all), newest first."""
        return evidence.listing(self._reader(), tool, limit)

    # -- the execution cache ----------------------------------------------------------------

    def cached_result(self, record: ToolRecord, arguments: dict,
                      hashes: list[list[str]]) -> tuple[bool, object]:
        """Return (found, result) of an earlier identical call of this very version.

        ``hashes``: the call's input files, [name, sha256] (``cache.file_hashes``).
        """
        key = cache.cache_key(arguments, hashes)
        return cache.get(self._reader(), record.name, record.version, record.code_hash, key)

    def cache_result(self, record: ToolRecord, arguments: dict,
                     hashes: list[list[str]], result, ttl_seconds: int) -> None:
        """Keep a deterministic call's result for ``ttl_seconds`` (``hashes`` as above)."""
        with self.connect() as conn:
            cache.put(conn, record.name, record.version, record.code_hash,
                      cache.cache_key(arguments, hashes), arguments, hashes, result,
                      ttl_seconds)

    def log_reflection(self, name: str, attempt: int, failing_tests: list[dict],
                       note: str = "", session_id: str = "", kind: str = "verify",
                       version: int | None = None, details: dict | None = None) -> None:
        """Keep what failed and what the reflection changed (a repair names its version)."""
        with self.connect() as conn:
            records.add_reflection(conn, name, attempt, failing_tests, note, session_id, kind,
                                   version, details)

    def mark_wrong(self, execution_id: int, note: str = "") -> None:
        """Record that the user marked an execution's answer wrong (it is never replayed)."""
        with self.connect() as conn:
            records.mark_wrong(conn, execution_id, note)

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

    def policy_history(self) -> list[dict]:
        """Return every policy version, oldest first."""
        return policies.history(self._reader())

    def rollback_policy(self, version: int) -> int:
        """Make an earlier policy apply again (as a new version); return the new version."""
        with self.connect() as conn:
            return policies.rollback(conn, version)

    def thresholds(self, policy: dict | None = None) -> dict:
        """Return the reuse / verify / evidence thresholds for this library's embedding model."""
        return policies.thresholds(policy or self.policy(), self.model_id)

    def decision_rule(self, policy: dict | None = None) -> dict:
        """Return the thresholds and settings the reuse decision applies."""
        return policies.decision_rule(policy or self.policy(), self.model_id)

    # -- discovery --------------------------------------------------------------------------

    def search(self, query: str, k: int = 5, vector: list[float] | None = None
               ) -> SearchResult:
        """Rank tools for ``query`` and find the evidence near it; the caller decides.

        Tools that stored evidence names are offered too, even when their purpose is not
        among the nearest.
        """
        if not query.strip():  # every tool would rank by the vector of nothing
            raise BadQuery("the search query is empty")
        if problem := unstorable(query):
            raise BadQuery(f"the search query holds {problem}")
        if vector is None:
            vector = self.index.embed_query(query)
        best = self.index.nearest(vector, k=max(20, k * 4))
        policy = self.policy()
        rule = policies.decision_rule(policy, self.model_id)
        hits = self.nearby_evidence(query, vector, rule["evidence"])
        named = {h.tool for h in hits}
        if named - set(best):
            best.update(self.index.similarity_to(vector, sorted(named - set(best))))
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
        kept = candidates[:k] + [c for c in candidates[k:] if c.name in named]
        return SearchResult(query=query, candidates=kept, thresholds=self.thresholds(policy),
                            embedding_model=self.model_id, evidence=hits, rule=rule)

    # -- re-embedding and the mirror --------------------------------------------------------

    def reembed(self, progress: Callable[[Iterable], Iterable] = lambda it: it) -> int:
        """Rebuild the index with the configured embedding model; return the tools indexed."""
        embeddings = load_embeddings(self.model_id)

        def embedded(record: ToolRecord) -> tuple:
            docs = self._index_docs(record.spec)
            return (record.name, record.version, docs,
                    embeddings.embed_documents([t for _, t in docs]))

        prepared = {record.name: embedded(record) for record in progress(self.list_tools())}
        dimension = len(embeddings.embed_query("dimension"))

        def as_now(conn: psycopg.Connection) -> list[tuple]:
            # Registrations, rollbacks and retirements wait until the index is whole; a tool
            # that changed while the others were embedded is embedded again here (before,
            # its current version was left out of the index, and search lost the tool).
            conn.execute("LOCK TABLE tools IN SHARE MODE")
            return [prepared[r.name] if prepared.get(r.name, ("", 0))[1] == r.version
                    else embedded(r) for r in records.current_versions(conn)]

        indexed = self.index.rebuild(as_now, dimension)
        rows = evidence.all_requests(self._reader())
        if rows:
            vectors = embeddings.embed_documents([request for _, request in rows])
            with self.connect() as conn, conn.transaction():
                evidence.reembed(conn, {i: v for (i, _), v in zip(rows, vectors, strict=True)},
                                 dimension)
        return indexed

    def mirror_differences(self) -> list[dict]:
        """Say how the readable files differ from the database, changing nothing."""
        since = time.time()
        return self.mirror.differences(records.all_versions(self._reader()), since)

    def reconcile_files(self) -> list[str]:
        """Repair the mirror from the database; return what was (or could not be) repaired."""
        since = time.time()
        return self.mirror.reconcile(records.all_versions(self._reader()), since)

    def drop(self) -> None:
        """Delete this library's schema and files (for throwaway libraries)."""
        self.close()
        with self.connect() as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                sql.Identifier(self.schema)))
        self.mirror.remove()
        self.sessions.remove_files()
