"""The library as LangChain tools, so any LangGraph agent can bind them; each call sandboxed.

``library_tools`` gives one ``StructuredTool`` per offered tool: its name, its description,
its JSON schema as the argument schema; a call runs in the sandbox and is logged with source
``langchain`` (``tools_store.calls``). Bad arguments, a failing tool and a sandbox that is
down raise ``ToolException``, which LangChain hands to the model as the tool's message
(``handle_tool_error``) instead of ending the run.

``retrieve_tools_function`` is the library's own search in the shape ``langgraph-bigtool``
expects of ``retrieve_tools_function``: a typed, documented function of a query that returns
tool ids, here the tool names that ``tool_registry`` maps to the tools.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from langchain_core.tools import StructuredTool, ToolException

from sandbox import Sandbox

from .calls import call_tool, describe, offered, offered_tools
from .errors import LibraryError
from .models import ToolRecord

SOURCE = "langchain"


def _as_tool(library, sandbox: Sandbox, record: ToolRecord,
             include_experimental: bool) -> StructuredTool:
    def run(**arguments):
        try:
            call = call_tool(library, sandbox, record.name, arguments, SOURCE,
                             include_experimental=include_experimental)
        except LibraryError as exc:
            raise ToolException(str(exc)) from exc
        if not call.ok:
            raise ToolException(f"{record.name} failed: {call.result.describe_error()}")
        return json.dumps(call.result.result)

    schema = record.spec.arguments_schema()
    schema["description"] = describe(record)
    return StructuredTool.from_function(func=run, name=record.name,
                                        description=describe(record), args_schema=schema,
                                        handle_tool_error=True)


def library_tools(library, sandbox: Sandbox, include_experimental: bool = False
                  ) -> list[StructuredTool]:
    """Return the library's offered tools (verified; experimental on request) as tools."""
    return [_as_tool(library, sandbox, record, include_experimental)
            for record in offered_tools(library, include_experimental)]


def tool_registry(library, sandbox: Sandbox, include_experimental: bool = False
                  ) -> dict[str, StructuredTool]:
    """Return the tools by id (their names), the registry ``langgraph-bigtool`` takes."""
    return {tool.name: tool for tool in library_tools(library, sandbox, include_experimental)}


def retrieve_tools_function(library, limit: int = 3, include_experimental: bool = False
                            ) -> Callable[[str], list[str]]:
    """Return a search over the library that answers tool ids for a query."""
    def retrieve_tools(query: str) -> list[str]:
        """Retrieve tools to use, given a search query describing the task."""
        found = library.search(query, k=limit).candidates
        return [c.name for c in found
                if offered(c.status, include_experimental)]

    return retrieve_tools
