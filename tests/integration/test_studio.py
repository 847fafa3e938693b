"""LangGraph Studio's server: `langgraph dev` on a free port, driven through the SDK."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

from servers import free_port, serve

from nodes.kit.scripted import DEMO_SCRIPT


def test_langgraph_dev_serves_the_graph(docker_sandbox, tmp_path):
    from langgraph_sdk import get_sync_client

    port = free_port()
    command = [str(Path(sys.executable).with_name("langgraph")), "dev", "--port", str(port),
               "--host", "127.0.0.1", "--no-browser", "--no-reload"]
    url = f"http://127.0.0.1:{port}"
    with serve(command, f"{url}/ok", {}, tmp_path / "langgraph-dev.log"):
        client = get_sync_client(url=url)
        (assistant,) = client.assistants.search(graph_id="agent")
        schemas = client.assistants.get_schemas(assistant["assistant_id"])
        fields = schemas["context_schema"]["properties"]
        assert {"model", "sandbox_backend", "reuse_threshold", "max_retries"} <= set(fields)
        assert all(field.get("description") for field in fields.values())  # a form in Studio
        drawing = client.assistants.get_graph(assistant["assistant_id"])
        nodes = {node["id"] for node in drawing["nodes"]}
        assert {"enrich", "plan", "retrieve", "decide", "spec", "tests", "impl", "verify",
                "reflect", "register", "execute", "answer"} <= nodes
        conditional = {(e["source"], e["target"]) for e in drawing["edges"]
                       if e.get("conditional")}
        assert {("verify", "reflect"), ("reflect", "verify"), ("verify", "register"),
                ("decide", "execute"), ("decide", "spec")} <= conditional
        # The repair loop: a failure in use (or a thumbs-down) -> reflect -> gate.
        assert {("execute", "reflect"), ("reflect", "gate"), ("gate", "register"),
                ("gate", "reflect"), ("enrich", "feedback"), ("feedback", "reflect")} <= conditional
        # The mutation gate's loop: Studio draws every way out of strengthen.
        assert {("verify", "strengthen"), ("strengthen", "strengthen"),
                ("strengthen", "reflect"), ("strengthen", "register")} <= conditional
        thread = client.threads.create()
        route = []
        for part in client.runs.stream(
                thread["thread_id"], assistant["assistant_id"],
                input={"request": "convert 100 degrees Fahrenheit to Celsius"},
                context={"model": f"scripted:{DEMO_SCRIPT}", "sandbox_pool": 0,
                         "library_schema": f"studio_{uuid.uuid4().hex[:8]}"},
                stream_mode="updates"):
            if part.event == "updates":
                route += list(part.data)
        state = client.threads.get_state(thread["thread_id"])["values"]
        assert state.get("result") == 37.78, (route, state.get("error"))
        assert route[-1] == "answer" and "verify" in route
        assert state["tool"]["status"] == "verified"
