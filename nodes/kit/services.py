"""The libraries the graph composes, one of each per process: the tool library, the sandbox.

Tests of the graph put stand-ins here with ``use``; everything else asks ``library`` and
``sandbox`` and gets the real, shared ones.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator

from sandbox import Sandbox, shared_sandbox
from tools_store.errors import LibraryError
from tools_store.library import ToolLibrary

_libraries: dict[str, ToolLibrary] = {}
_stand_ins: dict[str, object] = {}
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


def sandbox(backend: str = "docker", pool: int = 0) -> Sandbox:
    """Return this process's sandbox for ``backend`` with ``pool`` warm containers."""
    if "sandbox" in _stand_ins:
        return _stand_ins["sandbox"]  # type: ignore[return-value]
    return shared_sandbox(backend, pool)


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
