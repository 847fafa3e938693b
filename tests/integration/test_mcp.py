"""`sea mcp serve` driven by the official MCP client over stdio and streamable HTTP.

The server runs as its own process on a throwaway library; tools are registered from this
process, so a change notification must cross processes (PostgreSQL LISTEN/NOTIFY). Tool
calls run in the real Docker sandbox: the probe tool returns the uid it ran as, which is the
sandbox's unprivileged user, never this process's.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from contextlib import asynccontextmanager

import anyio
import mcp_types as types
import pytest
from mcp import Client, ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from servers import ROOT, free_port, serve

from nodes.kit.scripted import DEMO_SCRIPT
from sandbox.core import UID_FLOOR
from tools_store.calls import MAX_ARGUMENT_BYTES
from tools_store.library import ToolLibrary
from tools_store.models import ToolSpec

WORD_COUNT = ToolSpec(name="word_count", description="Count the number of words in a text.",
                      parameters=[{"name": "text", "type": "string",
                                   "description": "the text"}],
                      returns={"type": "integer", "description": "how many words"})
PROBE = ToolSpec(name="uid_probe", description="Return the user id the code runs as.",
                 returns={"type": "integer"})
FAILING = ToolSpec(name="always_fails", description="Raise an error on every call.",
                   parameters=[{"name": "x", "type": "integer"}])
SHOUT = ToolSpec(name="shout_text", description="Upper-case a text and add an exclamation.",
                 parameters=[{"name": "text", "type": "string"}])
LATER = ToolSpec(name="reverse_text", description="Reverse the characters of a text.",
                 parameters=[{"name": "text", "type": "string"}])
WAIT = 60  # seconds a notification or a call may take before the test fails


@pytest.fixture(scope="module")
def library(docker_sandbox):
    lib = ToolLibrary(schema=f"mcp_{uuid.uuid4().hex[:8]}")
    lib.register(WORD_COUNT, "def word_count(text):\n    return len(text.split())\n", "")
    lib.register(PROBE, "import os\n\ndef uid_probe():\n    return os.getuid()\n", "")
    lib.register(FAILING, "def always_fails(x):\n    raise ValueError(f'no {x}')\n", "")
    lib.register(SHOUT, "def shout_text(text):\n    return text\n", "",
                 status="experimental")
    yield lib
    lib.drop()


def server_env(library, **extra) -> dict:
    return {**os.environ, "SEA_LIBRARY_SCHEMA": library.schema, "SEA_SANDBOX_POOL": "2",
            "SEA_MODEL": f"scripted:{DEMO_SCRIPT}", **extra}


@asynccontextmanager
async def stdio_session(library, *extra_args: str, **env):
    params = StdioServerParameters(command=sys.executable,
                                   args=["-m", "cli", "mcp", "serve", *extra_args],
                                   env=server_env(library, **env), cwd=str(ROOT))
    changed = anyio.Event()
    holder = {"changed": changed}

    async def on_message(message):
        if isinstance(message, types.ToolListChangedNotification):
            holder["changed"].set()

    async with stdio_client(params) as (read, write), ClientSession(
            read, write, message_handler=on_message, read_timeout_seconds=WAIT) as session:
        await session.initialize()
        yield session, holder


def names(listing) -> list[str]:
    return [tool.name for tool in listing.tools]


def text_of(result) -> str:
    return " ".join(block.text for block in result.content)


def test_stdio_lists_calls_logs_and_answers_bad_input_cleanly(library):
    async def scenario():
        async with stdio_session(library) as (session, holder):
            listing = await session.list_tools()
            assert names(listing) == ["always_fails", "uid_probe", "word_count", "ask_agent"]
            tool = next(t for t in listing.tools if t.name == "word_count")
            assert tool.input_schema == WORD_COUNT.arguments_schema()
            assert tool.description.startswith("Count the number of words")
            assert tool.output_schema["properties"]["result"] == {
                "description": "integer: how many words"}

            result = await session.call_tool("word_count", {"text": "one two three"})
            assert not result.is_error and result.structured_content == {"result": 3}
            assert json.loads(text_of(result)) == 3
            probe = await session.call_tool("uid_probe", {})
            # Each run's implementation has a fresh user of its own, far above the host's.
            assert probe.structured_content["result"] >= UID_FLOOR > os.getuid()

            bad_type = await session.call_tool("word_count", {"text": 5})
            assert bad_type.is_error and "argument 'text' must be str" in text_of(bad_type)
            missing = await session.call_tool("word_count", {})
            assert missing.is_error and "missing argument 'text'" in text_of(missing)
            extra = await session.call_tool("word_count", {"text": "a", "lang": "en"})
            assert extra.is_error and "unknown arguments: lang" in text_of(extra)
            unknown = await session.call_tool("no_such_tool", {"x": 1})
            assert unknown.is_error and "no tool 'no_such_tool'" in text_of(unknown)
            hidden = await session.call_tool("shout_text", {"text": "hi"})
            assert hidden.is_error and "experimental" in text_of(hidden)
            huge = await session.call_tool("word_count",
                                           {"text": "word " * (MAX_ARGUMENT_BYTES // 5 + 10)})
            assert huge.is_error and f"the limit is {MAX_ARGUMENT_BYTES}" in text_of(huge)
            failed = await session.call_tool("always_fails", {"x": 7})
            assert failed.is_error and "ValueError: no 7" in text_of(failed)
            # The server is still there after all of that.
            again = await session.call_tool("word_count", {"text": "still here"})
            assert again.structured_content == {"result": 2}

    anyio.run(scenario)
    runs = library.executions("word_count")
    assert [(r["source"], r["inputs"], r["output"], r["success"]) for r in runs[:2]] == [
        ("mcp", {"text": "still here"}, 2, True), ("mcp", {"text": "one two three"}, 3, True)]
    assert len(runs) == 2  # refused arguments never reached the sandbox nor the log
    assert runs[0]["duration"] > 0
    (failure,) = library.executions("always_fails")
    assert failure["source"] == "mcp" and not failure["success"]
    assert "ValueError" in failure["error"]
    assert library.executions("uid_probe")[0]["output"] >= UID_FLOOR


def test_stdio_experimental_tools_on_request_and_a_registration_is_announced(library):
    async def scenario():
        async with stdio_session(library, "--include-experimental") as (session, holder):
            listing = await session.list_tools()
            assert "shout_text" in names(listing) and "reverse_text" not in names(listing)
            shout = next(t for t in listing.tools if t.name == "shout_text")
            assert shout.description.startswith("EXPERIMENTAL: shout_text v1")
            called = await session.call_tool("shout_text", {"text": "hi"})
            assert called.structured_content == {"result": "hi"}

            await anyio.to_thread.run_sync(lambda: library.register(
                LATER, "def reverse_text(text):\n    return text[::-1]\n", ""))
            with anyio.fail_after(WAIT):
                await holder["changed"].wait()
            assert "reverse_text" in names(await session.list_tools())
            reversed_ = await session.call_tool("reverse_text", {"text": "abc"})
            assert reversed_.structured_content == {"result": "cba"}

            async def after(change) -> None:
                holder["changed"] = anyio.Event()
                await anyio.to_thread.run_sync(change)
                with anyio.fail_after(WAIT):
                    await holder["changed"].wait()

            await after(lambda: library.register(  # a repair: a new version of the tool
                LATER, "def reverse_text(text):\n    return text[::-1].upper()\n", "",
                reason="repair", new_version=True))
            repaired = await session.call_tool("reverse_text", {"text": "abc"})
            assert repaired.structured_content == {"result": "CBA"}
            await after(lambda: library.rollback("reverse_text", 1))
            rolled_back = await session.call_tool("reverse_text", {"text": "abc"})
            assert rolled_back.structured_content == {"result": "cba"}
            await after(lambda: library.remove("reverse_text"))
            assert "reverse_text" not in names(await session.list_tools())

    anyio.run(scenario)
    assert library.executions("shout_text")[0]["source"] == "mcp"
    assert [r["version"] for r in library.executions("reverse_text")] == [1, 2, 1]


def test_a_sandbox_that_is_down_is_a_clear_error(library, tmp_path):
    async def scenario():
        async with stdio_session(library, "--pool", "0",
                                 DOCKER_HOST=f"unix://{tmp_path}/no-docker.sock") as (
                session, _):
            result = await session.call_tool("word_count", {"text": "a b"})
            assert result.is_error
            assert "the sandbox is unavailable, nothing ran" in text_of(result)
            assert "Docker daemon is not reachable" in text_of(result)

    before = len(library.executions("word_count", limit=1000))
    anyio.run(scenario)
    assert len(library.executions("word_count", limit=1000)) == before


@pytest.fixture(scope="module")
def http_server(library, tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("mcp") / "mcp-http.log"
    command = [sys.executable, "-m", "cli", "mcp", "serve", "--port", str(port)]
    with serve(command, f"http://127.0.0.1:{port}/health", server_env(library), log):
        yield f"http://127.0.0.1:{port}/mcp"


@asynccontextmanager
async def http_session(url: str):
    changed = anyio.Event()
    holder = {"changed": changed}

    async def on_message(message):
        if isinstance(message, types.ToolListChangedNotification):
            holder["changed"].set()

    async with streamable_http_client(url) as (read, write), ClientSession(
            read, write, message_handler=on_message, read_timeout_seconds=WAIT) as session:
        await session.initialize()
        yield session, holder


def test_http_two_clients_call_concurrently_and_both_hear_of_a_new_tool(library, http_server):
    texts = [" ".join(["w"] * n) for n in range(1, 7)]

    async def scenario():
        async with http_session(http_server) as (legacy, holder), Client(
                http_server, read_timeout_seconds=WAIT) as modern:
            assert "word_count" in names(await legacy.list_tools())
            assert "word_count" in names(await modern.list_tools())
            results: dict = {}

            async def call(client, text):
                results[text] = await client.call_tool("word_count", {"text": text})

            with anyio.fail_after(WAIT):
                async with anyio.create_task_group() as group:
                    for i, text in enumerate(texts):
                        group.start_soon(call, legacy if i % 2 else modern, text)
            assert {t: r.structured_content for t, r in results.items()} == {
                t: {"result": len(t.split())} for t in texts}
            bad = await modern.call_tool("word_count", {"text": ["not", "text"]})
            assert bad.is_error and "must be str" in text_of(bad)

            async with modern.listen(tools_list_changed=True) as subscription:
                await anyio.to_thread.run_sync(lambda: library.register(
                    ToolSpec(name="count_letters", description="Count the letters in a text.",
                             parameters=[{"name": "text", "type": "string"}]),
                    "def count_letters(text):\n    return sum(c.isalpha() for c in text)\n",
                    ""))
                with anyio.fail_after(WAIT):
                    event = await subscription.__anext__()
                    await holder["changed"].wait()
            assert type(event).__name__ == "ToolsListChanged"
            assert "count_letters" in names(await modern.list_tools())
            assert "count_letters" in names(await legacy.list_tools())
            counted = await legacy.call_tool("count_letters", {"text": "a1b2"})
            assert counted.structured_content == {"result": 2}

    mcp_before = [r for r in library.executions("word_count", 1000) if r["source"] == "mcp"]
    anyio.run(scenario)
    mcp_after = [r for r in library.executions("word_count", 1000) if r["source"] == "mcp"]
    assert len(mcp_after) - len(mcp_before) == len(texts)
    assert {r["inputs"]["text"] for r in mcp_after[:len(texts)]} == set(texts)


def test_ask_agent_synthesizes_a_tool_and_the_list_grows(library, http_server):
    async def scenario():
        async with http_session(http_server) as (session, holder):
            assert "fahrenheit_to_celsius" not in names(await session.list_tools())
            answer = await session.call_tool(
                "ask_agent", {"request": "convert 100 degrees Fahrenheit to Celsius"})
            assert not answer.is_error, text_of(answer)
            turn = answer.structured_content
            assert (turn["tool"], turn["version"], turn["status"]) == (
                "fahrenheit_to_celsius", 1, "verified")
            assert turn["decision"] == "synthesize" and turn["result"] == 37.78
            assert "37.78" in turn["answer"] and turn["scripted_model"] is True
            with anyio.fail_after(WAIT):
                await holder["changed"].wait()
            assert "fahrenheit_to_celsius" in names(await session.list_tools())
            direct = await session.call_tool("fahrenheit_to_celsius", {"fahrenheit": 212})
            assert direct.structured_content == {"result": 100.0}
            empty = await session.call_tool("ask_agent", {"request": ""})
            assert empty.is_error and "ask_agent takes" in text_of(empty)

    anyio.run(scenario)
    sources = [r["source"] for r in library.executions("fahrenheit_to_celsius")]
    assert sources == ["mcp", "agent"]
