"""Evidence: verdicts on whether a tool serves a request, kept with the request's embedding.

Every judged decision, every user verdict and every successful execution leaves a row: the
request, its embedding, the tool and version, the verdict, where it came from (``judge``,
``user`` or ``execution``) and its strength. A judge's or a user's verdict is strong; a run
that merely did not crash is weak, and weak evidence never allows a direct reuse on its own.

Two lookups serve the decision, in one round trip:

* the same request: rows whose *template* (the request with its literal values - numbers,
  quoted text - replaced) equals the new request's. Measured with the local model, a
  request with its direction swapped ("5 miles to km" for "5 km to miles") sits at cosine
  0.99 while the same request with another number sits at 0.83, so no radius can stand for
  "the same request"; the template can, and it is the only match that allows a direct reuse
  or a refusal without a judge;
* the nearest rows by embedding (HNSW), within the policy's evidence radius: contrary
  evidence there blocks a direct reuse and sends the request to the judge, and a tool that
  served a nearby request is shown to the judge.

The table comes from migration 3 with an untyped ``vector`` column; its dimension and HNSW
index are set when the first row is written (the dimension is the embedding model's).
"""

from __future__ import annotations

import re

import psycopg
from psycopg.rows import tuple_row

from .models import Evidence, EvidenceHit

# A number standing alone (not part of a word such as base64 or ipv4), inner separators
# included: 42, 98.6, 1,000, 2020-01-01, 10.0.0.0/24, 01:02:03.
_NUMBER = re.compile(r"(?<![^\W_])\d+(?:[.,:/-]\d+)*(?![^\W_])")
# Text in quotes that are not apostrophes inside a word ("it's" is not a quotation).
_QUOTED = re.compile(r"(?<!\w)(['\"`“‘])([^'\"`“”‘’]{1,200})(['\"`”’])(?!\w)")
_TOKENS = re.compile(r"[^\W_]+|[#$€£%…]")
_COLUMNS = ("id, request, tool_name, tool_version, verdict, source, strength, reason, "
            "session_id")


# One round trip; the vector is sent once and inlined (NOT MATERIALIZED), so the nearest
# rows come from the HNSW index rather than a scan of the whole table.
LOOKUP = (
    "WITH q AS NOT MATERIALIZED (SELECT %s::vector AS v) "
    f"(SELECT {_COLUMNS}, 1 - (embedding <=> q.v) AS similarity, true AS same "
    "FROM evidence, q WHERE template = %s AND NOT retracted ORDER BY id DESC LIMIT %s) "
    "UNION ALL "
    f"(SELECT {_COLUMNS}, 1 - (embedding <=> q.v) AS similarity, false AS same "
    "FROM evidence, q WHERE NOT retracted ORDER BY embedding <=> q.v LIMIT %s)")


def request_template(request: str) -> str:
    """Return the request with its literal values replaced: the same request, any values."""
    text = _QUOTED.sub(" … ", request.lower())
    return " ".join(_TOKENS.findall(_NUMBER.sub(" # ", text)))


def _vector(values: list[float]) -> str:
    return str([float(x) for x in values])


def ensure_index(conn: psycopg.Connection, dimension: int) -> None:
    """Give the embedding column its dimension and an HNSW index (once)."""
    with conn.cursor(row_factory=tuple_row) as cur:
        typmod = cur.execute("SELECT atttypmod FROM pg_attribute WHERE attrelid = "
                             "'evidence'::regclass AND attname = 'embedding'").fetchone()[0]
    if typmod == dimension:
        return
    conn.execute(f"ALTER TABLE evidence ALTER COLUMN embedding TYPE vector({int(dimension)})")
    conn.execute("CREATE INDEX IF NOT EXISTS evidence_hnsw ON evidence "
                 "USING hnsw (embedding vector_cosine_ops)")


def add(conn: psycopg.Connection, items: list[Evidence], vectors: list[list[float]]) -> None:
    """Write evidence rows in ``conn``'s transaction."""
    if not items:
        return
    ensure_index(conn, len(vectors[0]))
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO evidence (request, template, embedding, tool_name, tool_version, "
            "verdict, source, strength, reason, session_id) VALUES "
            "(%s, %s, %s::vector, %s, %s, %s, %s, %s, %s, %s)",
            [(e.request[:2000], request_template(e.request), _vector(v), e.tool, e.version,
              "serves" if e.serves else "does-not-serve", e.source, e.strength,
              e.reason[:1000], e.session_id) for e, v in zip(items, vectors, strict=True)])


def lookup(conn: psycopg.Connection, request: str, vector: list[float], radius: float,
           limit: int = 20) -> list[EvidenceHit]:
    """Return the same request's evidence and the nearest rows within ``radius``.

    Rows marked wrong are left out. Same-request rows come first, newest first; then the
    nearest others, nearest first.
    """
    rows = conn.execute(LOOKUP, (_vector(vector), request_template(request), limit,
                                 limit)).fetchall()
    hits, seen = [], set()
    for row in rows:
        if row["id"] in seen or not (row["same"] or row["similarity"] >= radius):
            continue
        seen.add(row["id"])
        hits.append(EvidenceHit(
            id=row["id"], request=row["request"], tool=row["tool_name"],
            version=row["tool_version"], serves=row["verdict"] == "serves",
            source=row["source"], strength=row["strength"], reason=row["reason"],
            similarity=round(float(row["similarity"]), 4), same_request=row["same"]))
    return hits


def retract(conn: psycopg.Connection, request: str, tool: str) -> int:
    """Mark the positive evidence for ``tool`` on the same request as wrong; return how many."""
    return conn.execute(
        "UPDATE evidence SET retracted = true WHERE template = %s AND tool_name = %s "
        "AND verdict = 'serves' AND NOT retracted",
        (request_template(request), tool)).rowcount


def listing(conn: psycopg.Connection, tool: str | None = None, limit: int = 50) -> list[dict]:
    """Return recent evidence rows (without their vectors), newest first."""
    return conn.execute(
        f"SELECT {_COLUMNS}, template, retracted, created_at FROM evidence "
        "WHERE %s::text IS NULL OR tool_name = %s ORDER BY id DESC LIMIT %s",
        (tool, tool, limit)).fetchall()


def all_requests(reads) -> list[tuple[int, str]]:
    """Return (id, request) of every row, for re-embedding (``reads``: the library's reads)."""
    rows = reads.execute("SELECT id, request FROM evidence ORDER BY id").fetchall()
    return [(row["id"], row["request"]) for row in rows]


def reembed(conn: psycopg.Connection, vectors: dict[int, list[float]], dimension: int) -> None:
    """Replace every row's vector (another embedding model) in ``conn``'s transaction."""
    conn.execute("DROP INDEX IF EXISTS evidence_hnsw")
    conn.execute("ALTER TABLE evidence ALTER COLUMN embedding TYPE vector")
    with conn.cursor() as cur:
        cur.executemany("UPDATE evidence SET embedding = %s::vector WHERE id = %s",
                        [(_vector(v), i) for i, v in vectors.items()])
    ensure_index(conn, dimension)
