"""A session runs one turn at a time, across processes: a PostgreSQL advisory lock per turn.

Two turns of one session at once (two terminals, the app and `sea ask` through it, an MCP
client) both started from the same last checkpoint, and the one that ended second wrote over
the other's messages. The lock serialises them; the server releases it when a process dies
holding it. Its connections come from a pool of their own: a turn holds one throughout, which
would drain the checkpointer's pool, and opening one per turn costs a handshake each time (tens
of milliseconds to a remote PostgreSQL over TLS).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg_pool import ConnectionPool

WAITING = "Another turn of this session is running; this one starts when it ends."
POLL_SECONDS = 0.2  # between tries for a busy session's lock
POOL_SIZE = 64  # turns one process may run at once, each holding a connection


def pool(url: str) -> ConnectionPool:
    """Return the pool that holds the locks of this process's running turns."""
    return ConnectionPool(url, min_size=0, max_size=POOL_SIZE, open=True,
                          check=ConnectionPool.check_connection, reset=_release_all,
                          kwargs={"autocommit": True, "prepare_threshold": 0})


def _release_all(conn: psycopg.Connection) -> None:
    # A connection goes back holding no lock, whatever cut its turn off (an interrupt between
    # taking the lock and noting it, say): kept, it would hold that session for good.
    conn.execute("SELECT pg_advisory_unlock_all()")


class TurnLock:
    """A session's turn lock on one connection: ``retry`` until ``acquired``.

    Released when its connection goes back to the pool (``_release_all``), however the turn
    ended.
    """

    TRY = "SELECT pg_try_advisory_lock(hashtext('sea-turn'), hashtext(%s))"

    def __init__(self, conn: psycopg.Connection, session_id: str):
        self.conn = conn
        self.session_id = session_id
        self.acquired = False

    def retry(self) -> bool:
        """Try to take the lock without waiting; tell whether it is held now."""
        row = self.conn.execute(self.TRY, (self.session_id,)).fetchone()
        self.acquired = bool(row[0])
        return self.acquired


@contextmanager
def held(locks: ConnectionPool, session_id: str) -> Iterator[TurnLock]:
    """Try the session's lock once; it is released when the block ends."""
    with locks.connection() as conn:
        lock = TurnLock(conn, session_id)
        lock.retry()
        yield lock
