"""`sea mcp serve`: the tool library as an MCP server, every call still in the sandbox.

Built on the official ``mcp`` SDK's low-level ``Server`` rather than its decorator server
(``MCPServer``, once FastMCP): the decorator server wants each tool as a Python function
registered up front, while this server's tools are rows of a library that other processes
change while it runs. The low-level server asks two handlers what the tools are and how to
call one, on every request, so the list is always the library's; the schemas are the specs'
own JSON schemas, not ones inferred from Python signatures.

- **Tools**: every verified tool (experimental ones with ``--include-experimental``, and then
  their description says so first), with the spec's name, description and argument schema;
  a result comes back as text and as structured content ``{"result": ...}``. One more tool,
  ``ask_agent(request)``, runs the whole graph, synthesis included.
- **Calls** go through ``tools_store.calls``: the arguments are checked against the spec and
  refused above ``MAX_ARGUMENT_BYTES`` before the sandbox is touched, the call runs in the
  sandbox (a warm pool: this is a long-running process), and the execution is logged with
  source ``mcp``. Unknown tools, bad arguments, a failing tool, a sandbox or a database that is
  down all answer with an ``isError`` result whose text says why; the server stays up.
- **Changes**: the library sends a PostgreSQL ``NOTIFY`` on its channel inside every
  transaction that changes the set of current tools (register, repair, rollback, remove), in
  whatever process that happens. A background task here ``LISTEN``s and tells every client:
  a ``notifications/tools/list_changed`` on each handshake-era session that has listed the
  tools, and a ``ToolsListChanged`` event on the subscription bus that serves the 2026-07-28
  era's ``subscriptions/listen`` streams.
- **Transports**: stdio (the default; stdout carries only the protocol) and streamable HTTP
  with ``--port`` on loopback (``/mcp``, and ``/health`` for probes).

Why this module is long: it is the one MCP door, whole: the tool list, the calls, the change
notifications and the two transports share the server object and read best together.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Callable
from typing import Any

import anyio

from .ask import pool_size

# The ``mcp`` package takes a second to import: every module-level name here stays light so
# that the rest of the `sea` command does not pay for it; the server imports it when it starts.

log = logging.getLogger("sea.mcp")

SOURCE = "mcp"
ASK_AGENT = "ask_agent"
ASK_AGENT_SCHEMA = {
    "type": "object",
    "properties": {
        "request": {"type": "string", "description": "what you need, in plain words"},
        "session_id": {"type": "string",
                       "description": "continue an earlier conversation (optional)"},
    },
    "required": ["request"],
    "additionalProperties": False,
}
ASK_AGENT_DESCRIPTION = (
    "Ask the self-engineering agent. It reuses a tool of its library when one fits; otherwise "
    "it writes one (a spec, a pytest suite, an implementation verified in a sandbox), "
    "registers it and runs it. Returns the answer, the tool used and its version.")
# Handshake-era clients kept for change notifications; past this, the longest idle is dropped.
MAX_REMEMBERED_SESSIONS = 256
# How long the change listener waits before it reconnects to a database that went away.
RECONNECT_SECONDS = 2.0


def _text(payload: Any) -> list:
    import mcp_types as types

    return [types.TextContent(type="text", text=payload if isinstance(payload, str)
                              else json.dumps(payload, default=str))]


def error_result(message: str):
    """Return a tool error a client shows to its model or its user."""
    import mcp_types as types

    return types.CallToolResult(content=_text(message), is_error=True)


class LibraryServer:
    """The MCP server over one tool library, one sandbox and (for ``ask_agent``) one agent."""

    def __init__(self, schema: str | None = None, backend: str | None = None,
                 pool: int | None = None, model: str | None = None,
                 include_experimental: bool = False):
        from mcp.server.lowlevel import Server
        from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler

        from nodes.kit import services
        from nodes.kit.context import Context

        self.context = Context(model=model, sandbox_backend=backend, sandbox_pool=pool,
                               library_schema=schema)
        self.include_experimental = include_experimental
        self.library = services.library(self.context.library_schema)
        self.sandbox = services.sandbox(self.context.sandbox_backend, self.context.sandbox_pool)
        self._agent = None
        self._agent_lock = anyio.Lock()
        # Handshake-era clients that listed or called tools, by connection: they get
        # list_changed notifications on their connection's standalone channel.
        self.sessions: dict[str, Any] = {}
        self.bus = InMemorySubscriptionBus()
        self.server = Server("sea-tools", version="0.1.0", instructions=(
            "Tools written and verified by the self-engineering agent; each call runs in a "
            "sandbox. Use ask_agent when no listed tool fits."),
            on_list_tools=self._list_tools, on_call_tool=self._call_tool,
            on_subscriptions_listen=ListenHandler(self.bus))

    # -- the tool list ----------------------------------------------------------------------

    def tools(self) -> list:
        """Return the MCP tools: the offered library tools, then ``ask_agent``."""
        import mcp_types as types

        from tools_store.calls import describe, offered_tools

        listed = []
        for record in offered_tools(self.library, self.include_experimental):
            if record.name == ASK_AGENT:
                continue  # the server's own tool keeps its name
            # The return type is said, not enforced: the tests do not check the spec's type,
            # and a client validates structured content against the schema and fails hard.
            returns = record.spec.returns
            result = {"description": f"{returns.type}: {returns.description}".rstrip(": ")}
            listed.append(types.Tool(
                name=record.name, title=record.name.replace("_", " "),
                description=describe(record), input_schema=record.spec.arguments_schema(),
                output_schema={"type": "object", "properties": {"result": result},
                               "required": ["result"]},
                meta={"sea/version": record.version, "sea/status": record.status}))
        listed.append(types.Tool(name=ASK_AGENT, title="ask the agent",
                                 description=ASK_AGENT_DESCRIPTION,
                                 input_schema=ASK_AGENT_SCHEMA))
        return listed

    def _remember(self, ctx) -> None:
        """Keep a handshake-era client's session so that it hears of changes."""
        from mcp_types.version import MODERN_PROTOCOL_VERSIONS

        if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
            return  # these clients hear of changes on their subscriptions/listen stream
        headers = getattr(ctx.request, "headers", None)
        key = (headers.get("mcp-session-id") if headers is not None else None) or "stdio"
        self.sessions.pop(key, None)
        self.sessions[key] = ctx.session  # the most recently active last
        while len(self.sessions) > MAX_REMEMBERED_SESSIONS:
            self.sessions.pop(next(iter(self.sessions)))  # forget the longest idle

    async def _list_tools(self, ctx, params):
        import mcp_types as types

        self._remember(ctx)
        try:
            tools = await anyio.to_thread.run_sync(self.tools)
        except Exception as exc:  # a LibraryError or a bug: say it, stay up
            log.exception("listing the tools failed")
            raise RuntimeError(f"the tool library is unavailable: {exc}") from exc
        return types.ListToolsResult(tools=tools)

    # -- calls ------------------------------------------------------------------------------

    async def _call_tool(self, ctx, params):
        self._remember(ctx)
        arguments = params.arguments if params.arguments is not None else {}
        try:
            if params.name == ASK_AGENT:
                return await self._ask_agent(arguments)
            return await anyio.to_thread.run_sync(self.call, params.name, arguments)
        except Exception as exc:  # a bug in one call must not end the server
            log.exception("tool call %s failed", params.name)
            return error_result(f"internal error in the server: {type(exc).__name__}: {exc}")

    def call(self, name: str, arguments: dict):
        """Call a library tool in the sandbox, logged with source ``mcp``."""
        import mcp_types as types

        from sandbox import SandboxError
        from sandbox.reports import NOT_A_VERDICT, no_verdict_message
        from tools_store.calls import call_tool
        from tools_store.errors import LibraryError

        try:
            call = call_tool(self.library, self.sandbox, name, arguments, SOURCE,
                             include_experimental=self.include_experimental)
        except (LibraryError, SandboxError) as exc:
            return error_result(str(exc))
        outcome = call.result
        if outcome.status in NOT_A_VERDICT:
            return error_result(no_verdict_message(outcome.status, outcome.error, name))
        if not outcome.ok:
            return error_result(f"{name} v{call.record.version} failed: "
                                f"{outcome.describe_error()}")
        return types.CallToolResult(content=_text(outcome.result),
                                    structured_content={"result": outcome.result},
                                    meta={"sea/version": call.record.version,
                                          "sea/duration": outcome.duration})

    async def _ask_agent(self, arguments: dict):
        import mcp_types as types

        request = arguments.get("request")
        session_id = arguments.get("session_id")
        if not isinstance(request, str) or not request.strip() or not (
                session_id is None or isinstance(session_id, str)) or set(arguments) - {
                "request", "session_id"}:
            return error_result("ask_agent takes {'request': text, 'session_id': optional "
                                "text}")
        async with self._agent_lock:  # the first call builds the agent, once
            if self._agent is None:
                self._agent = await anyio.to_thread.run_sync(self._make_agent)
        turn = await anyio.to_thread.run_sync(self._agent.ask, request.strip(), session_id)
        from graph.runner import summary

        brief = summary(turn)
        payload = {key: brief[key] for key in ("answer", "tool", "version", "status", "result",
                                               "decision", "error", "session_id")}
        payload["scripted_model"] = self._agent.scripted
        return types.CallToolResult(content=_text(brief["answer"] or brief["error"] or ""),
                                    structured_content=payload, is_error=bool(brief["error"]))

    def _make_agent(self):
        from graph.runner import Agent

        return Agent(model=self.context.model, sandbox_backend=self.context.sandbox_backend,
                     sandbox_pool=self.context.sandbox_pool,
                     library_schema=self.context.library_schema)

    # -- change notifications ---------------------------------------------------------------

    async def tools_changed(self) -> None:
        """Tell every connected client that the tool list changed."""
        from mcp.server.subscriptions import ToolsListChanged

        await self.bus.publish(ToolsListChanged())
        for key, session in list(self.sessions.items()):
            try:
                await session.send_tool_list_changed()
            except Exception:  # a client that went away must not stop the rest
                self.sessions.pop(key, None)

    async def watch_library(self, ready: Callable[[], None] = lambda: None) -> None:
        """LISTEN for the library's changes (any process) and notify clients; reconnect."""
        import psycopg
        from psycopg import sql

        first = True
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                        self.library.url, autocommit=True) as conn:
                    await conn.execute(sql.SQL("LISTEN {}").format(
                        sql.Identifier(self.library.channel)))
                    if first:
                        ready()
                        first = False
                    else:
                        await self.tools_changed()  # changes may have been missed meanwhile
                    async for _ in conn.notifies():
                        await self.tools_changed()
            except psycopg.Error as exc:
                log.warning("the change listener lost the database (%s); retrying", exc)
            await anyio.sleep(RECONNECT_SECONDS)

    def close(self) -> None:
        """Close the agent's connections, if one was made."""
        if self._agent is not None:
            self._agent.close()

    # -- transports -------------------------------------------------------------------------

    def _init_options(self):
        from mcp.server.lowlevel import NotificationOptions

        return self.server.create_initialization_options(
            NotificationOptions(tools_changed=True))

    async def serve_stdio(self) -> None:
        """Serve one client over this process's stdin and stdout."""
        from mcp.server.stdio import stdio_server

        async with anyio.create_task_group() as group:
            await group.start(self._start_watch)
            async with stdio_server() as (read, write):
                await self.server.run(read, write, self._init_options())
            group.cancel_scope.cancel()

    async def serve_http(self, host: str, port: int) -> None:
        """Serve any number of clients over streamable HTTP at ``http://host:port/mcp``."""
        import uvicorn
        from starlette.responses import JSONResponse
        from starlette.routing import Route

        async def health(_request):
            pool = getattr(self.sandbox.backend, "pool", None)
            return JSONResponse({"ok": True, "server": "sea-tools",
                                 "pool": {"size": pool.size, "ready": len(pool.waiting())}
                                 if pool else None})

        app = self.server.streamable_http_app(host=host, custom_starlette_routes=[
            Route("/health", health)])
        config = uvicorn.Config(app, host=host, port=port, log_level="warning",
                                lifespan="on")
        async with anyio.create_task_group() as group:
            await group.start(self._start_watch)
            await uvicorn.Server(config).serve()
            group.cancel_scope.cancel()

    async def _start_watch(self, *, task_status=anyio.TASK_STATUS_IGNORED) -> None:
        await self.watch_library(ready=task_status.started)


def cmd_serve(args) -> int:
    """Run the MCP server until its client leaves (stdio) or it is stopped (HTTP)."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    # Nothing but the protocol may reach stdout: anything printed while starting goes aside.
    with contextlib.redirect_stdout(sys.stderr):
        server = LibraryServer(schema=args.schema, backend=args.backend, pool=args.pool,
                               model=args.model,
                               include_experimental=args.include_experimental)
    try:
        if args.port is None:
            anyio.run(server.serve_stdio)
        else:
            print(f"sea mcp: serving http://{args.host}:{args.port}/mcp", file=sys.stderr)
            anyio.run(server.serve_http, args.host, args.port)
    finally:
        server.close()
    return 0


def add_parsers(sub) -> None:
    """Add `sea mcp serve`."""
    mcp = sub.add_parser("mcp", help="the tool library as an MCP server")
    mcp_sub = mcp.add_subparsers(dest="mcp_command", required=True)
    p = mcp_sub.add_parser("serve", help="serve over stdio, or streamable HTTP with --port")
    p.add_argument("--port", type=int, help="serve streamable HTTP on this port (else stdio)")
    p.add_argument("--host", default="127.0.0.1", help="HTTP address (default: loopback)")
    p.add_argument("--include-experimental", action="store_true",
                   help="offer experimental tools too (their description says so)")
    p.add_argument("--schema", help="library schema (default: SEA_LIBRARY_SCHEMA, else sea)")
    p.add_argument("--model", help="model for ask_agent: a name, or scripted:FILE")
    p.add_argument("--backend", choices=["docker", "bwrap"], help="sandbox backend")
    p.add_argument("--pool", type=pool_size, help="warm containers (default: SEA_SANDBOX_POOL, 2)")
    p.set_defaults(func=cmd_serve)
