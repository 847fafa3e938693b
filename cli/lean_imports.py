"""Defer two third-party package initialisers that a turn never uses.

LangGraph and LangChain import one small submodule each from two packages whose
``__init__`` imports everything they offer: ``langgraph.runtime`` needs one protocol from
``langgraph_sdk.auth.types``, but ``langgraph_sdk/__init__`` brings the whole HTTP and
websocket client (httpx, rich, pygments, websockets); ``langsmith.run_trees`` needs one
literal type from ``langsmith.types``, whose ``__init__`` builds ~150 generated pydantic
models. Together about a fifth of a fresh `sea ask` (measured). Deferred, such a package is
registered without running its ``__init__``: its submodules import as usual (they are found
on its path), and the first attribute read from the package itself runs the ``__init__``
then, so nothing that does use it sees a difference.

Installed only by the command line's entry point, before anything else is imported; the
app and the Studio server load everything at start-up anyway.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import types

DEFERRED = ("langgraph_sdk", "langsmith.types")
_lock = threading.RLock()


class _DeferredPackage(types.ModuleType):
    """A package whose ``__init__`` runs when an attribute it would define is first read."""

    def __getattr__(self, name: str):
        # Only called when the attribute is not there yet.
        with _lock:
            code = self.__dict__.pop("_deferred_init", None)
            if code is not None:
                self.__class__ = types.ModuleType
                exec(code, self.__dict__)  # noqa: S102 - the package's own __init__
        try:
            return self.__dict__[name]
        except KeyError:
            raise AttributeError(
                f"module {self.__name__!r} has no attribute {name!r}") from None


def defer_package_init(name: str) -> bool:
    """Register package ``name`` with its ``__init__`` deferred; say whether it was."""
    if name in sys.modules:
        return False
    spec = importlib.util.find_spec(name)
    if spec is None or spec.submodule_search_locations is None or spec.loader is None:
        return False  # not installed, or not a package: nothing to defer
    module = importlib.util.module_from_spec(spec)
    module._deferred_init = spec.loader.get_code(name)
    module.__class__ = _DeferredPackage
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)
    return True


def install() -> None:
    """Defer the packages in ``DEFERRED`` (each one that is installed and not yet imported)."""
    for name in DEFERRED:
        defer_package_init(name)
