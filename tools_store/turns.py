"""The chat app's sessions and turns, kept beside the checkpointer (migration 5).

The checkpointer keeps what the graph needs to go on (its state and messages); a turn's
story for people — its progress events, decision, tool and version, arguments, result,
error and token usage — is kept here, one row per turn, with the turn's status (queued,
running, done, failed, interrupted). Interrupted turns never reach the graph's ``answer``,
so only a table beside the graph's state can keep them. Sessions carry an owner and a title.
"""

from __future__ import annotations

import functools
import json

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from .library import _wrap_public_methods
from .text import check_storable

TITLE_CHARS = 80
STORY_FIELDS = ("answer", "decision", "tool", "version", "tool_status", "arguments", "result",
                "error", "usage", "route", "events")
_dumps = functools.partial(json.dumps, default=str)


def _json(value) -> Jsonb:
    return Jsonb(value, dumps=_dumps)


@_wrap_public_methods
class TurnLog:
    """Sessions (owner, title, dates) and their turns in the library's schema."""

    def __init__(self, url: str, schema: str, size: int = 4):
        self.schema = schema
        # Checked when borrowed: a connection the server dropped (a restart) is replaced.
        self.pool = ConnectionPool(url, min_size=1, max_size=size, open=True,
                                   check=ConnectionPool.check_connection, kwargs={
            "autocommit": True, "row_factory": dict_row,
            "options": f"-c search_path={schema},public"})

    def close(self) -> None:
        """Close the connection pool."""
        self.pool.close()

    # -- sessions ---------------------------------------------------------------------------

    def owner_of(self, session_id: str) -> str | None:
        """Return the owner of a session, or None for a session this log does not know."""
        with self.pool.connection() as conn:
            row = conn.execute("SELECT owner FROM chat_sessions WHERE session_id = %s",
                               (session_id,)).fetchone()
        return row["owner"] if row else None

    def sessions(self, owner: str, limit: int = 50) -> list[dict]:
        """Return an owner's sessions, most recently used first, with their turn counts."""
        with self.pool.connection() as conn:
            return conn.execute(
                "SELECT s.session_id, s.title, s.created_at, s.updated_at, "
                "count(t.turn) AS turns FROM chat_sessions s "
                "LEFT JOIN chat_turns t ON t.session_id = s.session_id WHERE s.owner = %s "
                "GROUP BY s.session_id ORDER BY s.updated_at DESC LIMIT %s",
                (owner, limit)).fetchall()

    def rename(self, session_id: str, title: str) -> None:
        """Give a session a new title (ValueError for a blank one or one it cannot store)."""
        title = " ".join(title.split())[:TITLE_CHARS]
        if not title:
            raise ValueError("a session's title cannot be blank")
        check_storable("title", title)
        with self.pool.connection() as conn:
            conn.execute("UPDATE chat_sessions SET title = %s WHERE session_id = %s",
                         (title, session_id))

    def delete(self, session_id: str) -> None:
        """Forget a session and its turns."""
        with self.pool.connection() as conn:
            conn.execute("DELETE FROM chat_sessions WHERE session_id = %s", (session_id,))

    # -- turns ------------------------------------------------------------------------------

    def add_turn(self, session_id: str, owner: str, request: str,
                 input_files: list[str] | None = None) -> int:
        """Queue a turn and return its number; a new session takes the request as its title.

        Raises PermissionError when the session belongs to another owner, ValueError for a
        request or file name that cannot be stored (a NUL, a lone surrogate).
        """
        check_storable("request", request)
        for name in input_files or []:
            check_storable("file name", name)
        with self.pool.connection() as conn, conn.transaction():
            conn.execute("INSERT INTO chat_sessions (session_id, owner, title) "
                         "VALUES (%s, %s, %s) ON CONFLICT (session_id) DO NOTHING",
                         (session_id, owner, " ".join(request.split())[:TITLE_CHARS]))
            row = conn.execute("SELECT owner FROM chat_sessions WHERE session_id = %s "
                               "FOR UPDATE", (session_id,)).fetchone()
            if row["owner"] != owner:
                raise PermissionError(f"session {session_id} belongs to someone else")
            turn = 1 + conn.execute("SELECT coalesce(max(turn), 0) AS n FROM chat_turns "
                                    "WHERE session_id = %s", (session_id,)).fetchone()["n"]
            conn.execute("INSERT INTO chat_turns (session_id, turn, request, status, "
                         "input_files) VALUES (%s, %s, %s, 'queued', %s)",
                         (session_id, turn, request, _json(input_files or [])))
            conn.execute("UPDATE chat_sessions SET updated_at = now() WHERE session_id = %s",
                         (session_id,))
        return turn

    def start(self, session_id: str, turn: int) -> None:
        """Mark a turn as running."""
        with self.pool.connection() as conn:
            conn.execute("UPDATE chat_turns SET status = 'running', started_at = now() "
                         "WHERE session_id = %s AND turn = %s", (session_id, turn))

    def finish(self, session_id: str, turn: int, status: str, story: dict) -> None:
        """Keep a finished turn's story: ``status`` is done, failed or interrupted."""
        values = {key: story.get(key) for key in STORY_FIELDS}
        for key in ("answer", "decision", "error"):
            values[key] = values[key] or ""
        for key, empty in (("usage", {}), ("route", []), ("events", [])):
            values[key] = _json(values[key] or empty)
        values["result"] = _json(values["result"])  # a JSON null for no result
        if values["arguments"] is not None:
            values["arguments"] = _json(values["arguments"])
        with self.pool.connection() as conn, conn.transaction():
            conn.execute(
                "UPDATE chat_turns SET status = %(status)s, finished_at = now(), "
                "answer = %(answer)s, decision = %(decision)s, tool = %(tool)s, "
                "version = %(version)s, tool_status = %(tool_status)s, "
                "arguments = %(arguments)s, result = %(result)s, error = %(error)s, "
                "usage = %(usage)s, route = %(route)s, events = %(events)s "
                "WHERE session_id = %(session_id)s AND turn = %(turn)s",
                {**values, "status": status, "session_id": session_id, "turn": turn})
            conn.execute("UPDATE chat_sessions SET updated_at = now() WHERE session_id = %s",
                         (session_id,))

    def turns(self, session_id: str) -> list[dict]:
        """Return a session's turns, oldest first."""
        with self.pool.connection() as conn:
            return conn.execute("SELECT * FROM chat_turns WHERE session_id = %s ORDER BY turn",
                                (session_id,)).fetchall()

    def interrupt_unfinished(self, reason: str) -> int:
        """Mark turns left queued or running by a stopped process as interrupted."""
        with self.pool.connection() as conn:
            cursor = conn.execute(
                "UPDATE chat_turns SET status = 'interrupted', error = %s, "
                "finished_at = now() WHERE status IN ('queued', 'running')", (reason,))
            return cursor.rowcount

