"""The libraries the graph composes, one per process: the tool library and the sandbox."""

from __future__ import annotations

import logging
import threading

from sandbox import Sandbox, default_pool_size, shared_sandbox
from tools_store.library import ToolLibrary

_libraries: dict[str, ToolLibrary] = {}
_lock = threading.Lock()
log = logging.getLogger(__name__)


def library(schema: str = "sea") -> ToolLibrary:
    """Return this process's tool library for ``schema``."""
    with _lock:
        if schema not in _libraries:
            _libraries[schema] = ToolLibrary(schema=schema)
            for repair in _libraries[schema].reconcile_files():
                log.warning("tool files repaired from the database: %s", repair)
        return _libraries[schema]


def forget_library(schema: str) -> None:
    """Drop the cached library of ``schema`` (after the schema itself was dropped)."""
    with _lock:
        _libraries.pop(schema, None)


def sandbox(backend: str = "docker", pool: int = -1) -> Sandbox:
    """Return this process's sandbox for ``backend`` (``pool`` -1: SEA_SANDBOX_POOL)."""
    return shared_sandbox(backend, default_pool_size() if pool < 0 else pool)
