"""Session data: every turn's results and files as named, typed items, and turn memory.

An item is a row in ``session_items`` (name, kind, shape, size, hash, the turn and step that
made it, where it came from); a file's bytes live under ``<root>/<session>/t<turn>/...`` in the
data directory, a value's JSON in the row. Names are unique per session: a newer item takes
the plain name and the older one is renamed after its turn (``margins.t2.csv``), so "the
margins file" means the latest and nothing is lost. ``session_turns`` keeps an embedding of
each turn that left the recent window, so the most relevant earlier turns can be found.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import shutil
import unicodedata
import uuid
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from .errors import ItemMissing

TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t"}
MAX_SHAPE_BYTES = 32 * 1024 * 1024  # files larger than this are not parsed for a shape
MAX_SESSION_ID = 128  # sessions are keyed by it in indexed columns and in folder names
UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9_.-]")  # what a folder or file name made safe never holds


def check_session_id(session: str) -> str:
    """Return ``session`` if it can key a session, else raise ValueError saying why.

    Any text of up to MAX_SESSION_ID characters: longer ids overflow the database's index
    rows after a turn has done its work, and control characters (NUL among them) and lone
    surrogates (bytes that are not UTF-8) can be neither stored nor printed.
    """
    if not isinstance(session, str) or not session:
        raise ValueError("the session id is empty")
    if len(session) > MAX_SESSION_ID:
        raise ValueError(f"the session id has {len(session):,} characters; at most "
                         f"{MAX_SESSION_ID} are allowed")
    # Control characters (NUL and newlines among them) and lone surrogates; other
    # characters, emoji joiners and non-breaking spaces included, are fine.
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in session):
        raise ValueError("the session id holds a control character or text that is not "
                         "valid UTF-8; use printable text")
    return session


def safe_session(session: str) -> str:
    """Return a folder name for a session id (ids may be any text)."""
    cleaned = UNSAFE_CHARS.sub("_", session or "default").lstrip(".")[:80]
    if cleaned != session:
        cleaned += "-" + hashlib.sha256(session.encode()).hexdigest()[:8]
    return cleaned or "default"


def human_size(size: int) -> str:
    """Return a byte count for people."""
    for unit in ("bytes", "KB", "MB"):
        if size < 1024 or unit == "MB":
            return f"{size} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} bytes"


def describe_value(value: Any) -> tuple[str, str]:
    """Return (kind, shape) of a JSON value: rows of records or lists are a table."""
    if isinstance(value, list) and value and all(isinstance(r, dict) for r in value):
        columns = {key for row in value for key in row}
        return "table", f"{len(value)} rows x {len(columns)} columns"
    if isinstance(value, list) and value and all(isinstance(r, list) for r in value):
        return "table", f"{len(value)} rows x {max(len(r) for r in value)} columns"
    if isinstance(value, bool) or value is None:
        return "value", "boolean" if isinstance(value, bool) else "null"
    if isinstance(value, int | float):
        return "value", "number"
    if isinstance(value, str):
        return "value", f"text of {len(value)} characters"
    if isinstance(value, list):
        return "value", f"list of {len(value)}"
    return "value", f"object with {len(value)} keys"


def describe_file(name: str, data: bytes) -> tuple[str, str]:
    """Return (kind, shape) of a file: CSV and TSV files are tables."""
    delimiter = TABLE_SUFFIXES.get(PurePosixPath(name).suffix.lower())
    if delimiter and len(data) <= MAX_SHAPE_BYTES:
        try:
            rows = [r for r in csv.reader(io.StringIO(data.decode("utf-8-sig")),
                                          delimiter=delimiter) if r]
        except (UnicodeDecodeError, csv.Error):
            return "file", human_size(len(data))
        if rows:
            return "table", (f"{len(rows) - 1} rows x {len(rows[0])} columns "
                             f"({', '.join(rows[0][:8])})")
    return "file", human_size(len(data))


def older_name(name: str, turn: int, taken: set[str]) -> str:
    """Return the name an older item gets when a newer one takes its plain name."""
    path = PurePosixPath(name)
    base = f"{path.stem}.t{turn}{path.suffix}" if path.suffix else f"{name}.t{turn}"
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}.{n}", n + 1
    return candidate


class SessionData:
    """The items and turn memory of every session in one library schema."""

    def __init__(self, connect: Callable[[], psycopg.Connection],
                 reader: Callable[[], psycopg.Connection], index, model_id: str, root: Path):
        self._connect, self._reader, self._index = connect, reader, index
        self.model_id = model_id
        self.root = root

    def folder(self, session: str) -> Path:
        """Return where a session's files live."""
        return self.root / safe_session(session)

    # -- items ------------------------------------------------------------------------------

    def _row(self, row: dict) -> dict:
        item = dict(row)
        item["path"] = str(self.folder(row["session_id"]) / row["path"]) if row["path"] else None
        item["available"] = item["path"] is None or (
            Path(item["path"]).is_file() and Path(item["path"]).stat().st_size == row["size"])
        item["created_at"] = str(row["created_at"])
        return item

    def _insert(self, session: str, item: dict) -> dict:
        """Insert an item; an older item of the same name is renamed after its turn."""
        with self._connect() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"items-{session}",))
            old = conn.execute("SELECT * FROM session_items WHERE session_id = %s AND name = %s",
                               (session, item["name"])).fetchone()
            if old and old["sha256"] == item["sha256"] and old["kind"] == item["kind"] and (
                    self._row(old)["available"]):
                return self._row(old)  # the same data under the same name: one item
            if old:
                taken = {r["name"] for r in conn.execute(
                    "SELECT name FROM session_items WHERE session_id = %s", (session,))}
                conn.execute("UPDATE session_items SET name = %s WHERE id = %s",
                             (older_name(old["name"], old["turn"], taken), old["id"]))
            row = conn.execute(
                "INSERT INTO session_items (session_id, name, kind, shape, size, sha256, turn, "
                "step, source, path, value) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "RETURNING *",
                (session, item["name"], item["kind"], item["shape"], item["size"],
                 item["sha256"], item["turn"], item.get("step"), item["source"],
                 item.get("path"), Jsonb(item["value"]) if "value" in item else None)
            ).fetchone()
        return self._row(row)

    def add_file(self, session: str, turn: int, name: str, data: bytes, source: str,
                 step: int | None = None) -> dict:
        """Keep a file (a user's upload or a tool's output) as an item; return the item."""
        if "/" in name or name.startswith(".") or not name:
            raise ItemMissing(f"a session file may not be named {name!r}")
        relative = f"t{turn}/" + (f"s{step}/" if step is not None else "") + name
        target = self.folder(session) / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.with_name(f".{name}.{uuid.uuid4().hex[:8]}")
        staging.write_bytes(data)
        staging.replace(target)
        kind, shape = describe_file(name, data)
        return self._insert(session, {"name": name, "kind": kind, "shape": shape,
                                      "size": len(data), "turn": turn, "step": step,
                                      "sha256": hashlib.sha256(data).hexdigest(),
                                      "source": source, "path": relative})

    def add_value(self, session: str, turn: int, name: str, value: Any, source: str,
                  step: int | None = None) -> dict:
        """Keep a JSON result as an item; return the item."""
        encoded = json.dumps(value, sort_keys=True).encode()
        kind, shape = describe_value(value)
        return self._insert(session, {"name": name, "kind": kind, "shape": shape,
                                      "size": len(encoded), "turn": turn, "step": step,
                                      "sha256": hashlib.sha256(encoded).hexdigest(),
                                      "source": source, "value": value})

    def items(self, session: str) -> list[dict]:
        """Return a session's items, newest first, each saying whether its file is there."""
        rows = self._reader().execute(
            "SELECT * FROM session_items WHERE session_id = %s ORDER BY turn DESC, id DESC",
            (session,)).fetchall()
        return [self._row(r) for r in rows]

    def get(self, session: str, name: str) -> dict:
        """Return one item by name; raise ItemMissing naming the items there are."""
        row = self._reader().execute(
            "SELECT * FROM session_items WHERE session_id = %s AND name = %s",
            (session, name)).fetchone()
        if row is None:
            names = [i["name"] for i in self.items(session)][:12]
            raise ItemMissing(f"this session has no data named {name!r}"
                              + (f" (it has: {', '.join(names)})" if names else
                                 " (it has no data yet)"))
        return self._row(row)

    def read(self, session: str, name: str) -> bytes:
        """Return an item's bytes (a value as JSON); explain a file that is gone."""
        item = self.get(session, name)
        if item["path"] is None:
            return json.dumps(item["value"]).encode()
        if not item["available"]:
            raise ItemMissing(
                f"the file of {name!r} (made in turn {item['turn']}) is no longer in the data "
                "directory, so it cannot be used; give the file again (upload or --data)")
        return Path(item["path"]).read_bytes()

    # -- memory -----------------------------------------------------------------------------

    def relevant_turns(self, session: str, turns: list[tuple[int, str]], query: str,
                       k: int, floor: float) -> list[dict]:
        """Return up to ``k`` of ``turns`` (number, text) most similar to ``query``.

        Each turn's embedding is stored the first time it is needed.
        """
        if not turns or k <= 0:
            return []
        numbers = [n for n, _ in turns]
        have = {r["turn"] for r in self._reader().execute(
            "SELECT turn FROM session_turns WHERE session_id = %s AND model = %s "
            "AND turn = ANY(%s)", (session, self.model_id, numbers)).fetchall()}
        missing = [(n, text) for n, text in turns if n not in have]
        if missing:
            vectors = self._index.embed([text for _, text in missing])
            with self._connect() as conn, conn.transaction():
                for (n, text), vector in zip(missing, vectors, strict=True):
                    conn.execute(
                        "INSERT INTO session_turns (session_id, turn, model, text, embedding) "
                        "VALUES (%s, %s, %s, %s, %s::vector) ON CONFLICT DO NOTHING",
                        (session, n, self.model_id, text, str([float(x) for x in vector])))
        vector = str([float(x) for x in self._index.embed_query(query)])
        rows = self._reader().execute(
            "SELECT turn, text, 1 - (embedding <=> %s::vector) AS similarity "
            "FROM session_turns WHERE session_id = %s AND model = %s AND turn = ANY(%s) "
            "ORDER BY similarity DESC LIMIT %s",
            (vector, session, self.model_id, numbers, k)).fetchall()
        return [dict(r) for r in rows if r["similarity"] >= floor]

    def delete(self, session: str) -> None:
        """Forget a session's items, turn memory and files (its turns are the turn log's)."""
        with self._connect() as conn, conn.transaction():
            conn.execute("DELETE FROM session_items WHERE session_id = %s", (session,))
            conn.execute("DELETE FROM session_turns WHERE session_id = %s", (session,))
        shutil.rmtree(self.folder(session), ignore_errors=True)

    def remove_files(self) -> None:
        """Delete every session's files (with a throwaway library)."""
        shutil.rmtree(self.root, ignore_errors=True)
