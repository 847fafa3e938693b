"""The libraries the graph composes, one of each per process: the tool library, the sandbox.

Tests of the graph put stand-ins here with ``use``; everything else asks ``library`` and
``sandbox`` and gets the real, shared ones.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import replace

from sandbox import Limits, Sandbox, make_sandbox, shared_sandbox
from tools_store.errors import LibraryError
from tools_store.library import ToolLibrary

_libraries: dict[str, ToolLibrary] = {}
_stand_ins: dict[str, object] = {}
_limited: dict[tuple, Sandbox] = {}
_lock = threading.Lock()
log = logging.getLogger(__name__)


def library(schema: str = "sea") -> ToolLibrary:
    """Return this process's tool library for ``schema``."""
    if "library" in _stand_ins:
        return _stand_ins["library"]  # type: ignore[return-value]
    with _lock:
        if schema not in _libraries:
            lib = ToolLibrary(schema=schema)
            try:  # the files are a mirror: failing to repair them never stops a request
                for repair in lib.reconcile_files():
                    log.warning("tool files repaired from the database: %s", repair)
            except (OSError, LibraryError) as exc:
                log.warning("the tool files could not be checked against the database: %s",
                            exc)
            _libraries[schema] = lib
        return _libraries[schema]


def forget_library(schema: str) -> None:
    """Drop the cached library of ``schema`` (after the schema itself was dropped)."""
    with _lock:
        _libraries.pop(schema, None)


def sandbox(backend: str = "docker", pool: int = 0, limits: dict | None = None) -> Sandbox:
    """Return this process's sandbox for ``backend`` with ``pool`` warm containers.

    ``limits`` (``timeout`` seconds, ``memory_mb``) asks for a sandbox held to tighter
    limits than the configured ones (an experimental tool runs in one); it keeps no pool.
    """
    if "sandbox" in _stand_ins:
        return _stand_ins["sandbox"]  # type: ignore[return-value]
    if not limits:
        return shared_sandbox(backend, pool)
    base = Limits()
    tight = replace(base, timeout=min(base.timeout, float(limits.get("timeout", base.timeout))),
                    memory_mb=min(base.memory_mb, int(limits.get("memory_mb", base.memory_mb))))
    key = (backend, tight.timeout, tight.memory_mb)
    with _lock:
        if key not in _limited:
            _limited[key] = make_sandbox(backend, limits=tight)
        return _limited[key]


def warm_up(schema: str, backend: str, pool: int | None) -> None:
    """Load what a first request waits for: the library with its embedding model, the sandbox.

    A sandbox without a warm pool starts one container ahead (a one-shot command; one with a
    pool has its containers ready already). Runs in the background while the caller loads;
    what fails here, the turn meets and reports.
    """
    sandbox(backend, pool).head_start()
    library(schema).index.embed_query("warm up")


@atexit.register
def _close_limited() -> None:
    with _lock:
        for held in _limited.values():
            held.close()
        _limited.clear()


@contextlib.contextmanager
def use(**stand_ins: object) -> Iterator[None]:
    """Serve ``library=`` and/or ``sandbox=`` stand-ins while the block runs (tests)."""
    unknown = set(stand_ins) - {"library", "sandbox"}
    if unknown:
        raise TypeError(f"no service named {', '.join(sorted(unknown))}")
    _stand_ins.update(stand_ins)
    try:
        yield
    finally:
        for name in stand_ins:
            _stand_ins.pop(name, None)
