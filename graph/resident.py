"""A resident agent: one warm process serves `sea ask` from other processes.

The app and `sea chat` keep an Agent loaded (database, embeddings, sandbox pool); they listen
on a Unix socket under the data directory, readable by this user only. `sea ask` sends its
request there when an agent with the same settings is up, and runs in-process otherwise.
One JSON line in (request, session, files, settings); JSON lines out: progress events, then
the turn's summary.
"""

from __future__ import annotations

import json
import os
import socket
import socketserver
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from tools_store.db import sea_home

if TYPE_CHECKING:  # the client side must stay light: no graph imports to send a request
    from .runner import Agent

SOCKET_NAME = "agent.sock"
MAX_REQUEST_LINE = 1 << 20
SEND_TIMEOUT = 30.0  # seconds a client may leave a progress line unread


def enabled() -> bool:
    """Tell whether processes may serve or use a resident agent (``SEA_RESIDENT``, on)."""
    return os.environ.get("SEA_RESIDENT", "on").strip().lower() not in ("0", "off", "no",
                                                                         "false")


def socket_path() -> Path:
    """Return where a resident agent listens."""
    return sea_home() / SOCKET_NAME


def settings_key(model: str, backend: str, schema: str) -> dict:
    """Return the settings a resident agent must share with a client to serve it."""
    return {"model": model, "sandbox_backend": backend, "library_schema": schema}


class ResidentServer:
    """Serve an Agent's turns over a Unix socket from a background thread."""

    def __init__(self, agent: Agent, path: Path | None = None):
        self.agent = agent
        self.path = path or socket_path()
        self.key = settings_key(agent.context.model, agent.context.sandbox_backend,
                                agent.context.library_schema)
        server = self

        class Handler(socketserver.StreamRequestHandler):
            # A client that stops reading (paused in a pager, Ctrl-Z) counts as gone after
            # this long, rather than holding the turn, and its session's lock, for good.
            timeout = SEND_TIMEOUT

            def handle(self) -> None:
                server._serve_one(self.rfile, self.wfile)

        self.path.parent.mkdir(parents=True, exist_ok=True)
        if _alive(self.path):
            raise OSError(f"an agent already listens on {self.path}")
        self.path.unlink(missing_ok=True)  # a stale socket of a process that died
        old_mask = os.umask(0o177)  # the socket is this user's alone
        try:
            self._server = socketserver.ThreadingUnixStreamServer(str(self.path), Handler)
        finally:
            os.umask(old_mask)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="sea-resident")
        self._thread.start()

    def _serve_one(self, rfile, wfile) -> None:
        from .runner import summary

        gone = False

        def send(item: dict) -> None:
            wfile.write((json.dumps(item, default=str) + "\n").encode())
            wfile.flush()

        def progress(event: dict) -> None:
            # A client that went away (Ctrl-C) must not cut the turn off half-way: it runs to
            # its end, and its answer is in the session for the next look.
            nonlocal gone
            if not gone:
                try:
                    send({"kind": "event", **event})
                except OSError:
                    gone = True

        try:
            line = rfile.readline(MAX_REQUEST_LINE)
            if not line.strip():
                return  # a probe that only checks someone listens
            try:
                request, session, files = self._accept(line)
            except ValueError as exc:
                send({"kind": "refused", "reason": str(exc)})
                return
            try:
                turn = summary(self.agent.ask(request, session, on_event=progress,
                                              files=files))
            except Exception as exc:  # noqa: BLE001 - a fault here: reported as the turn's
                # error, since a client told nothing would run the request a second time.
                turn = summary({"session_id": session,
                                "error": f"{type(exc).__name__}: {exc}"})
            send({"kind": "final", "turn": turn, "scripted": self.agent.scripted})
        except OSError:
            pass  # the client went away before the answer; the session holds it

    def _accept(self, line: bytes) -> tuple[str, str, list[str] | None]:
        """Return a request line's request, session and files; ValueError says why not."""
        from .runner import new_session_id

        try:
            message = json.loads(line)
        except ValueError as exc:  # not JSON, or not UTF-8
            raise ValueError(f"bad request: {exc}") from exc
        if not isinstance(message, dict):
            raise ValueError("bad request: not a JSON object")
        if message.get("settings") != self.key:
            raise ValueError("this agent runs with other settings")
        request, session, files = (message.get("request"), message.get("session"),
                                   message.get("files") or None)
        if not isinstance(request, str) or not isinstance(session, str | None) or not (
                files is None or isinstance(files, list)
                and all(isinstance(f, str) for f in files)):
            raise ValueError("bad request: request, session and files must be text")
        return request, session or new_session_id(), files

    def close(self) -> None:
        """Stop listening and remove the socket."""
        self._server.shutdown()
        self._server.server_close()
        self.path.unlink(missing_ok=True)


def _alive(path: Path) -> bool:
    if not path.exists():
        return False
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        probe.close()


def ask_resident(request: str, session: str | None, settings: dict, files: list[str],
                 on_event: Callable[[dict], None] | None = None,
                 path: Path | None = None) -> dict | None:
    """Serve a turn through a resident agent; None when none is up or it refuses."""
    path = path or socket_path()
    if not path.exists():
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(str(path))
    except OSError:
        conn.close()
        return None
    with conn, conn.makefile("rwb") as stream:
        stream.write((json.dumps({"request": request, "session": session,
                                  "files": [str(Path(f).resolve()) for f in files],
                                  "settings": settings}) + "\n").encode())
        stream.flush()
        for line in stream:
            item = json.loads(line)
            if item["kind"] == "event":
                if on_event:
                    on_event(item)
            elif item["kind"] == "final":
                return {**item["turn"], "scripted_model": item["scripted"],
                        "served_by": "resident agent"}
            else:
                return None
    return None
