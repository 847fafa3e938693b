"""The vector index: the texts a tool is found by, embedded, in a pgvector table.

The table is created through ``PGEngine`` and searched through ``PGVectorStore``; rows are
written with plain SQL inside the caller's transaction, so a registration and its index
rows commit (or vanish) together.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from . import db
from .embeddings import load_embeddings
from .errors import IndexModelMismatch

TABLE = "tool_index"
DOC_NAMESPACE = uuid.UUID("5b0c2f8e-7d1a-4c41-9a57-3f1f6f1d2a10")

Docs = list[tuple[str, str]]  # (kind, text): purpose or example
# Connections the vector store may hold per process (its searches run on one event loop).
VECTOR_POOL_SIZE = 4


class ToolIndex:
    """The index of one library schema, for one embedding model."""

    _engines: dict[str, object] = {}
    _engines_lock = threading.Lock()

    def __init__(self, url: str, schema: str, model_id: str,
                 reader: Callable[[], db.PooledReads],
                 connect: Callable[[], psycopg.Connection]):
        self.url, self.schema, self.model_id = url, schema, model_id
        self._reader, self._connect = reader, connect
        self._store = None
        self._lock = threading.Lock()
        self._recent: dict[str, list[float]] = {}

    def _engine(self):
        from langchain_postgres import PGEngine

        with self._engines_lock:
            if self.url not in self._engines:
                self._engines[self.url] = PGEngine.from_connection_string(
                    db.sqlalchemy_url(self.url), pool_pre_ping=True,
                    pool_size=VECTOR_POOL_SIZE, max_overflow=0)
            return self._engines[self.url]

    def built_by(self) -> str | None:
        """Return the id of the embedding model that built the index, if any."""
        row = self._reader().execute(
            "SELECT value FROM index_meta WHERE key = 'model'").fetchone()
        return row["value"] if row else None

    def _ensure_table(self, dimension: int) -> None:
        """Create the vector table (through PGEngine) and its HNSW index if missing."""
        def exists() -> bool:
            return bool(self._reader().execute(
                "SELECT to_regclass(%s) AS t", (f"{self.schema}.{TABLE}",)).fetchone()["t"])

        if exists():
            return
        with db.setup_lock(self.url):  # another process may be creating it right now
            if not exists():
                self._create_table(dimension)

    def _create_table(self, dimension: int) -> None:
        from langchain_postgres import Column

        self._engine().init_vectorstore_table(
            table_name=TABLE, vector_size=dimension, schema_name=self.schema,
            metadata_columns=[Column("tool_name", "TEXT"), Column("kind", "TEXT"),
                              Column("version", "INTEGER")],
            overwrite_existing=False)
        with self._connect() as conn:
            conn.execute(sql.SQL(
                "CREATE INDEX IF NOT EXISTS {} ON {} USING hnsw (embedding vector_cosine_ops)"
            ).format(sql.Identifier(f"{TABLE}_hnsw"), sql.Identifier(TABLE)))
            conn.execute(sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (tool_name)").format(
                sql.Identifier(f"{TABLE}_tool"), sql.Identifier(TABLE)))
            for key, value in (("model", self.model_id), ("dimension", str(dimension))):
                conn.execute("INSERT INTO index_meta (key, value) VALUES (%s, %s) "
                             "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                             (key, value))

    def store(self):
        """Return the PGVectorStore over the index (created on first use)."""
        with self._lock:
            if self._store is None:
                built_by = self.built_by()
                if built_by and built_by != self.model_id:
                    raise IndexModelMismatch(
                        f"the tool index was built with {built_by} but {self.model_id} is "
                        "configured; run `sea tools reembed` to rebuild it")
                # The model loads before langchain-postgres is imported: much of its load
                # (checksum, ONNX session) leaves the interpreter lock free, so in a fresh
                # process it overlaps the imports running on the main thread meanwhile.
                embeddings = load_embeddings(self.model_id)
                from langchain_postgres import PGVectorStore

                self._ensure_table(len(embeddings.embed_query("dimension")))
                self._store = PGVectorStore.create_sync(
                    engine=self._engine(), embedding_service=embeddings,
                    table_name=TABLE, schema_name=self.schema,
                    metadata_columns=["tool_name", "kind", "version"])
            return self._store

    def embed(self, texts: list[str]) -> list[list[float]]:
        """Embed documents with the index's model."""
        return self.store().embeddings.embed_documents(texts) if texts else []

    def embed_query(self, text: str) -> list[float]:
        """Embed a query with the index's model (a turn's request is embedded once)."""
        vector = self._recent.get(text)
        if vector is None:
            vector = self.store().embeddings.embed_query(text)
            if len(self._recent) >= 256:
                self._recent.clear()
            self._recent[text] = vector
        return vector

    @staticmethod
    def write(conn: psycopg.Connection, name: str, version: int, docs: Docs,
              vectors: list[list[float]], replace: bool = True) -> None:
        """Write a tool's rows in ``conn``'s transaction (``replace``: its old rows go)."""
        if replace:
            ToolIndex.delete(conn, name)
        with conn.cursor() as cur:
            cur.executemany(
                sql.SQL("INSERT INTO {} (langchain_id, content, embedding, tool_name, kind, "
                        "version, langchain_metadata) VALUES (%s, %s, %s::vector, %s, %s, %s, "
                        "%s)").format(sql.Identifier(TABLE)),
                [(str(uuid.uuid5(DOC_NAMESPACE, f"{name}:{version}:{kind}:{text}")), text,
                  str([float(x) for x in vector]), name, kind, version, Jsonb({}))
                 for (kind, text), vector in zip(docs, vectors, strict=True)])

    @staticmethod
    def delete(conn: psycopg.Connection, name: str) -> None:
        """Remove a tool's rows in ``conn``'s transaction."""
        conn.execute(sql.SQL("DELETE FROM {} WHERE tool_name = %s").format(
            sql.Identifier(TABLE)), (name,))

    def nearest(self, vector: list[float], k: int) -> dict[str, tuple[float, str, int]]:
        """Return, per tool among the ``k`` nearest rows, its best (similarity, text, version)."""
        hits = self.store().similarity_search_with_score_by_vector(vector, k=k)
        best: dict[str, tuple[float, str, int]] = {}
        for doc, distance in hits:
            name = doc.metadata.get("tool_name")
            similarity = 1.0 - float(distance)
            if name and (name not in best or similarity > best[name][0]):
                best[name] = (similarity, doc.page_content, doc.metadata.get("version"))
        return best

    def similarity_to(self, vector: list[float], names: list[str]
                      ) -> dict[str, tuple[float, str, int]]:
        """Return, per named tool, its best (similarity, text, version) to ``vector``."""
        rows = self._reader().execute(sql.SQL(
            "SELECT DISTINCT ON (tool_name) tool_name, content, version, "
            "1 - (embedding <=> %s::vector) AS similarity FROM {} WHERE tool_name = ANY(%s) "
            "ORDER BY tool_name, embedding <=> %s::vector").format(sql.Identifier(TABLE)),
            (str(vector), names, str(vector))).fetchall()
        return {r["tool_name"]: (float(r["similarity"]), r["content"], r["version"])
                for r in rows}

    def rebuild(self, entries: Callable[[psycopg.Connection],
                                        list[tuple[str, int, Docs, list[list[float]]]]],
                dimension: int) -> int:
        """Drop the table and write the rows ``entries`` gives anew; return how many tools.

        ``entries`` returns (name, version, docs, vectors) in the transaction that writes them,
        so that they are the tools of that moment.
        """
        with self._connect() as conn, conn.transaction():
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(TABLE)))
            conn.execute("DELETE FROM index_meta")
        with self._lock:
            self._store = None
        self._ensure_table(dimension)
        with self._connect() as conn, conn.transaction():
            rows = entries(conn)
            # A registration in the moment the table was empty wrote its rows: all are
            # written again from ``rows``, which include it.
            conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(TABLE)))
            for name, version, docs, vectors in rows:
                self.write(conn, name, version, docs, vectors, replace=False)
        self.store()
        return len(rows)
