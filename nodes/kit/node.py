"""What every node shares: progress events, the model, the libraries, and error handling."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

from langgraph.config import get_config, get_stream_writer
from langgraph.runtime import Runtime

from sandbox import SandboxError
from tools_store.errors import LibraryError

from . import services
from .context import Context
from .dataflow import items_listing
from .model import StepError, load_chat_model

# Failures that end a turn with a clear message; anything else is a bug and surfaces.
EXPECTED = (StepError, SandboxError, LibraryError)


def event(step: str, message: str, **data) -> None:
    """Send a progress event to whoever streams the run (the UI, the CLI, Studio)."""
    item = {"step": step, "message": message, "time": round(time.time(), 3), **data}
    try:
        get_stream_writer()(item)
    except RuntimeError:
        pass  # called outside a graph run (unit tests of a node)


def node(step: str) -> Callable:
    """Wrap a node: turn expected failures into the turn's error."""
    def wrap(func: Callable) -> Callable:
        @functools.wraps(func)
        def run(state: dict, runtime: Runtime[Context]) -> dict:
            try:
                return func(state, runtime) or {}
            except EXPECTED as exc:
                message = f"{step} failed: {exc}"
                event(step, message, level="error")
                return {"error": message}
        return run
    return wrap


def model(runtime: Runtime[Context]):
    """Return the chat model the run is configured with."""
    return load_chat_model(runtime.context.model)


def library(runtime: Runtime[Context]):
    """Return the tool library of the run."""
    return services.library(runtime.context.library_schema)


def sandbox(runtime: Runtime[Context], limits: dict | None = None):
    """Return the sandbox of the run (held to tighter ``limits`` when given)."""
    if limits:
        return services.sandbox(runtime.context.sandbox_backend, 0, limits)
    return services.sandbox(runtime.context.sandbox_backend, runtime.context.sandbox_pool)


def session_of(runtime: Runtime[Context]) -> str:
    """Return the session of the run: the context's, else the thread's (Studio)."""
    if runtime.context.session_id:
        return runtime.context.session_id
    try:
        return str(get_config()["configurable"].get("thread_id") or "default")
    except RuntimeError:
        return "default"  # called outside a graph run (unit tests of a node)


def history_text(state: dict) -> str:
    """Render the session for a prompt: memory, recent turns, and the session's data."""
    lines = [f"{turn['role']}: {turn['content']}" for turn in state.get("history", [])]
    parts = [state.get("memory", ""),
             "Conversation so far:\n" + "\n".join(lines) if lines else "",
             items_listing(state.get("items") or [])]
    return "\n\n".join(part for part in parts if part)
