"""What every node shares: progress events, the model, the libraries, and error handling."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

import psycopg
from docker.errors import DockerException
from langgraph.config import get_stream_writer
from langgraph.runtime import Runtime

from graph import services
from graph.context import Context
from graph.model import StepError, load_chat_model
from sandbox import SandboxUnavailable
from state.graph_state import RESET
from tools_store.db import DatabaseUnavailable
from tools_store.library import ToolExists, ToolNotFound

# Failures that end a turn with a clear message instead of a crash.
EXPECTED = (StepError, SandboxUnavailable, DatabaseUnavailable, ToolExists, ToolNotFound,
            ValueError, OSError, psycopg.Error, DockerException)


def event(step: str, message: str, **data) -> dict:
    """Build a progress event, send it to whoever streams, and return it for the state."""
    item = {"step": step, "message": message, "time": round(time.time(), 3), **data}
    try:
        get_stream_writer()(item)
    except RuntimeError:
        pass  # called outside a graph run (unit tests of a node)
    return item


def node(step: str) -> Callable:
    """Wrap a node: record the route, and turn expected failures into the turn's error."""
    def wrap(func: Callable) -> Callable:
        @functools.wraps(func)
        def run(state: dict, runtime: Runtime[Context]) -> dict:
            try:
                update = func(state, runtime) or {}
            except EXPECTED as exc:
                message = f"{step} failed: {exc}"
                return {"error": message, "route": [step],
                        "events": [event(step, message, level="error")]}
            route = update.get("route", [])
            reset = route[:1] == [RESET]
            update["route"] = ([RESET] if reset else []) + [step] + route[int(reset):]
            return update
        return run
    return wrap


def model(runtime: Runtime[Context]):
    """Return the chat model the run is configured with."""
    return load_chat_model(runtime.context.model)


def library(runtime: Runtime[Context]):
    """Return the tool library of the run."""
    return services.library(runtime.context.library_schema)


def sandbox(runtime: Runtime[Context]):
    """Return the sandbox of the run."""
    return services.sandbox(runtime.context.sandbox_backend, runtime.context.sandbox_pool)


def history_text(state: dict) -> str:
    """Render the recent turns for a prompt."""
    lines = [f"{turn['role']}: {turn['content']}" for turn in state.get("history", [])]
    return "Conversation so far:\n" + "\n".join(lines) if lines else ""
