"""A resident agent serves `sea ask` from another process; other settings fall back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest
from servers import ROOT

from graph.resident import ResidentServer, ask_resident, settings_key, socket_path
from graph.runner import Agent
from nodes.kit import services
from nodes.kit.scripted import DEMO_SCRIPT


@pytest.fixture
def resident(docker_sandbox, monkeypatch):
    monkeypatch.setenv("SEA_RESIDENT", "on")
    schema = f"resident_{uuid.uuid4().hex[:8]}"
    agent = Agent(model=f"scripted:{DEMO_SCRIPT}", sandbox_pool=0, library_schema=schema)
    server = ResidentServer(agent)
    yield agent, server
    server.close()
    services.library(schema).drop()
    services.forget_library(schema)
    agent.close()


def sea_ask(request: str, schema: str, *extra: str) -> dict:
    env = {**os.environ, "SEA_LIBRARY_SCHEMA": schema, "SEA_MODEL": f"scripted:{DEMO_SCRIPT}"}
    run = subprocess.run([sys.executable, "-m", "cli", "ask", request, "--json", *extra],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    return json.loads(run.stdout)


def test_sea_ask_is_served_by_the_resident_agent(resident):
    agent, server = resident
    out = sea_ask("convert 100 degrees Fahrenheit to Celsius", agent.context.library_schema)
    assert out["served_by"] == "resident agent" and out["result"] == 37.78
    assert out["route"][-1] == "answer" and out["scripted_model"] is True
    # The turn ran in the resident process: its library has the tool now.
    assert agent.library.get("fahrenheit_to_celsius").status == "verified"
    assert oct(socket_path().stat().st_mode & 0o777) == "0o600"


def test_other_settings_or_in_process_are_served_here(resident):
    agent, _ = resident
    other = f"resident_other_{uuid.uuid4().hex[:6]}"
    try:
        out = sea_ask("convert 100 degrees Fahrenheit to Celsius", other)
        assert out["served_by"] == "this process" and out["result"] == 37.78
    finally:
        services.library(other).drop()
        services.forget_library(other)
    out = sea_ask("convert 100 degrees Fahrenheit to Celsius", agent.context.library_schema,
                  "--in-process")
    assert out["served_by"] == "this process"


def test_a_second_server_on_the_same_socket_is_refused(resident):
    agent, _ = resident
    with pytest.raises(OSError, match="already listens"):
        ResidentServer(agent)


def test_a_probe_or_a_broken_request_never_breaks_the_server(resident):
    import socket as sockets

    agent, _ = resident
    key = settings_key(agent.context.model, agent.context.sandbox_backend,
                       agent.context.library_schema)
    replies = []
    for payload in (b"", b"not json\n", b"[1, 2]\n", b"\xff\n",
                    json.dumps({"request": 5, "settings": key}).encode() + b"\n",
                    json.dumps({"request": "x", "files": "a.csv", "settings": key}).encode()
                    + b"\n"):
        with sockets.socket(sockets.AF_UNIX, sockets.SOCK_STREAM) as conn:
            conn.connect(str(socket_path()))
            conn.sendall(payload)
            conn.shutdown(sockets.SHUT_WR)
            replies.append([json.loads(line) for line in conn.makefile()])
    assert replies[0] == []  # a probe
    assert all(r[0]["kind"] == "refused" and r[0]["reason"].startswith("bad request")
               for r in replies[1:]) and all(len(r) == 1 for r in replies[1:])
    assert "must be text" in replies[-1][0]["reason"]
    assert ask_resident("x", None, {**key, "model": "other"}, []) is None  # other settings


def test_a_fault_in_the_resident_turn_is_its_error_not_a_second_run(resident, monkeypatch):
    from tools_store.library import ToolLibrary

    agent, _ = resident
    key = settings_key(agent.context.model, agent.context.sandbox_backend,
                       agent.context.library_schema)

    def fault(*args, **kwargs):
        raise ZeroDivisionError("a bug in the resident agent")

    monkeypatch.setattr(ToolLibrary, "search", fault)
    out = ask_resident("convert 100 degrees Fahrenheit to Celsius", "fault-1", key, [])
    # Before, the client heard nothing and ran the request again in its own process.
    assert out is not None and out["served_by"] == "resident agent"
    assert out["error"] == "ZeroDivisionError: a bug in the resident agent"
    assert out["session_id"] == "fault-1"


def test_a_client_that_goes_away_does_not_cut_the_turn_off(resident):
    import socket as sockets
    import time

    agent, _ = resident
    key = settings_key(agent.context.model, agent.context.sandbox_backend,
                       agent.context.library_schema)
    request = "convert 100 degrees Fahrenheit to Celsius"
    with sockets.socket(sockets.AF_UNIX, sockets.SOCK_STREAM) as conn:
        conn.connect(str(socket_path()))
        conn.sendall((json.dumps({"request": request, "session": "gone-1", "files": [],
                                  "settings": key}) + "\n").encode())
        assert json.loads(conn.makefile().readline())["kind"] == "event"
    # Ctrl-C after the first progress line: the turn still runs to its end in the agent.
    deadline = time.monotonic() + 240
    while len(agent.conversation("gone-1")) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert [m["content"] for m in agent.conversation("gone-1")] == [
        request, "100 °F is 37.78 °C."]
    assert agent.library.get("fahrenheit_to_celsius").status == "verified"


def test_no_resident_means_none(tmp_path):
    assert ask_resident("x", None, settings_key("m", "docker", "sea"), [],
                        path=tmp_path / "agent.sock") is None
