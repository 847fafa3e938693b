"""Calling the library's tools from outside the agent: the MCP server and LangChain tools.

One path for every such door: the tool is looked up (current version, retired tools are
unknown, experimental ones only when the caller opted in), the arguments are measured and
checked against the spec before anything reaches the sandbox, the call runs in the sandbox,
and the execution is logged with its ``source`` so success rates and repairs see it.

A sandbox that is down is answered as such and not logged: nothing ran, and it says nothing
about the tool.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sandbox import Sandbox
from sandbox.reports import NOT_A_VERDICT, CallResult

from .errors import LibraryError, ToolNotFound
from .models import ToolRecord, check_arguments

# The largest arguments object a caller may send, as JSON. The sandbox's own job limit is far
# larger; this one keeps a misbehaving client from filling the execution log.
MAX_ARGUMENT_BYTES = 256 * 1024


class InvalidArguments(LibraryError, ValueError):
    """Arguments that fail the tool's schema, or are too large to accept."""


@dataclass
class ToolCall:
    """One finished call: the version that ran and what the sandbox reported."""

    record: ToolRecord
    arguments: dict
    result: CallResult

    @property
    def ok(self) -> bool:
        """Tell whether the tool returned a value."""
        return self.result.ok


def offered(status: str, include_experimental: bool) -> bool:
    """Tell whether a door offers a tool of this status: verified, experimental on request."""
    return status == "verified" or (include_experimental and status == "experimental")


def offered_tools(library, include_experimental: bool = False) -> list[ToolRecord]:
    """Return the current version of every tool the doors offer, by name."""
    return [r for r in library.list_tools() if offered(r.status, include_experimental)]


def describe(record: ToolRecord) -> str:
    """Return the description a client shows; an experimental tool says so first."""
    text = (record.spec.description + "\n\n" + record.spec.docstring).strip()
    if record.status == "experimental":
        text = (f"EXPERIMENTAL: {record.name} v{record.version} did not pass its own tests; "
                f"its results may be wrong.\n\n{text}")
    return text


def checked_arguments(record: ToolRecord, arguments) -> dict:
    """Return the arguments with defaults filled, or raise InvalidArguments saying why."""
    try:
        size = len(json.dumps(arguments, allow_nan=False).encode())
    except (TypeError, ValueError) as exc:
        raise InvalidArguments(f"arguments are not JSON: {exc}") from exc
    if size > MAX_ARGUMENT_BYTES:
        raise InvalidArguments(f"arguments are {size} bytes of JSON; the limit is "
                               f"{MAX_ARGUMENT_BYTES}")
    try:
        return check_arguments(arguments if arguments is not None else {}, record.spec)
    except ValueError as exc:
        raise InvalidArguments(f"{record.name}: {exc}") from exc


def find(library, name: str, include_experimental: bool = False) -> ToolRecord:
    """Return the current version of an offered tool, or raise ToolNotFound."""
    record = library.get(name) if library.name_taken(name) else None
    if record is None or not offered(record.status, include_experimental):
        hint = (" (it is experimental; the server must include experimental tools)"
                if record is not None and record.status == "experimental" else "")
        raise ToolNotFound(f"no tool {name!r}{hint}")
    return record


def call_tool(library, sandbox: Sandbox, name: str, arguments, source: str,
              include_experimental: bool = False, session_id: str = "",
              request: str = "") -> ToolCall:
    """Call an offered tool in the sandbox and log the execution under ``source``.

    Raises ToolNotFound or InvalidArguments before the sandbox is touched; a failing tool
    or a sandbox that is down comes back in the ToolCall's result.
    """
    record = find(library, name, include_experimental)
    checked = checked_arguments(record, arguments)
    # A composite imports its pinned components: they ship beside it as modules.
    modules = library.component_modules(record) if record.components else None
    result = sandbox.call(record.code, record.name, checked, modules=modules)
    if result.status not in NOT_A_VERDICT:  # nothing ran, or not the tool's doing
        library.record_execution(record.name, record.version, checked,
                                 result.result if result.ok else None, result.ok,
                                 result.describe_error(), result.duration, session_id, request,
                                 source=source)
    return ToolCall(record=record, arguments=checked, result=result)
