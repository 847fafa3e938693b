"""Run untrusted generated code: ``verify`` a pytest suite, or ``call`` one function.

A library with no LangGraph imports. Backends: ``docker`` (default; a hardened single-use
container per run, optionally from a warm pool) and ``bwrap`` (bubblewrap with cgroup limits).
"""

from __future__ import annotations

import atexit
import threading

from .core import Limits, Sandbox, env_int, stop_all
from .errors import LimitError, SandboxError, SandboxUnavailable

__all__ = ["Limits", "Sandbox", "SandboxError", "SandboxUnavailable", "close_shared",
           "make_sandbox", "shared_sandbox", "stop_all"]

BACKENDS = ("docker", "bwrap")
MAX_POOL = 64  # warm containers one process may keep


def check_pool_size(size: int) -> int:
    """Return ``size`` if it is a warm pool size (0 to MAX_POOL), else raise LimitError."""
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_POOL:
        raise LimitError(f"the warm pool size must be a whole number from 0 to {MAX_POOL}, "
                         f"not {size!r}")
    return size


def make_sandbox(backend: str = "docker", pool_size: int = 0,
                 limits: Limits | None = None) -> Sandbox:
    """Return a sandbox on ``backend``; ``pool_size`` > 0 keeps that many containers warm."""
    check_pool_size(pool_size)
    if backend == "docker":
        from .docker_backend import DockerBackend

        return Sandbox(DockerBackend(limits=limits, pool_size=pool_size))
    if backend == "bwrap":
        from .bwrap_backend import BwrapBackend

        return Sandbox(BwrapBackend(limits=limits))
    raise SandboxError(f"unknown sandbox backend {backend!r}; choose one of {BACKENDS}")


_shared: dict[tuple[str, int], Sandbox] = {}
_shared_lock = threading.Lock()


def default_pool_size() -> int:
    """Return the warm pool size from ``SEA_SANDBOX_POOL`` (default 2; 0 turns it off)."""
    return env_int("SEA_SANDBOX_POOL", 2)


def shared_sandbox(backend: str = "docker", pool_size: int | None = None) -> Sandbox:
    """Return this process's sandbox for ``backend``, shut down cleanly at exit."""
    size = default_pool_size() if pool_size is None else pool_size
    key = (backend, size if backend == "docker" else 0)
    with _shared_lock:
        if key not in _shared:
            _shared[key] = make_sandbox(backend, pool_size=key[1])
        return _shared[key]


@atexit.register
def close_shared() -> None:
    """Close every shared sandbox (their warm pools included)."""
    with _shared_lock:
        for sandbox in _shared.values():
            sandbox.close()
        _shared.clear()
