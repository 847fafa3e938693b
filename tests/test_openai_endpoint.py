"""The real-model path: langchain-openai against an OpenAI-compatible server on loopback.

No model endpoint is reachable from these machines, so the test serves the chat-completions
protocol itself, answering from the demo script. What it proves is the client side: the
request the agent sends, the parsing of a real HTTP reply, and the token usage it reports.
"""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from graph.model import DEMO_SCRIPT, ScriptedChatModel


class ChatCompletions(BaseHTTPRequestHandler):
    """POST /v1/chat/completions, answered from a script; every request is recorded."""

    script = ScriptedChatModel.from_file(DEMO_SCRIPT)
    seen: list[dict] = []
    broken_first: set[str] = set()

    def do_POST(self):  # noqa: N802 - the http.server API
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append(body)
        messages = [SystemMessage(m["content"]) if m["role"] == "system"
                    else HumanMessage(str(m["content"])) for m in body["messages"]]
        step = messages[0].content.split("\n", 1)[0].removeprefix("step: ")
        if step in self.broken_first:
            self.broken_first.discard(step)
            content = "Sure! Here is what you asked for, but not as JSON."
        else:
            content = self.script.invoke(messages).content
        reply = {"id": f"chatcmpl-{uuid.uuid4().hex[:8]}", "object": "chat.completion",
                 "created": 0, "model": body["model"],
                 "choices": [{"index": 0, "finish_reason": "stop",
                              "message": {"role": "assistant", "content": content}}],
                 "usage": {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110}}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def endpoint(monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), ChatCompletions)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    ChatCompletions.seen.clear()
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{server.server_port}/v1")
    monkeypatch.delenv("SEA_MODEL", raising=False)
    yield ChatCompletions
    server.shutdown()


def test_an_openai_compatible_endpoint_serves_the_pipeline(endpoint, docker_sandbox):
    from graph import services
    from graph.runtime import Agent

    endpoint.broken_first = {"spec"}  # one unusable reply: the agent must retry once
    agent = Agent(model="openai:local-test-model", sandbox_pool=0,
                  library_schema=f"oai_{uuid.uuid4().hex[:8]}")
    try:
        assert not agent.scripted
        state = agent.ask("convert 100 degrees Fahrenheit to Celsius")
        assert state["result"] == 37.78 and state["tool"]["status"] == "verified"
        assert {b["model"] for b in endpoint.seen} == {"local-test-model"}
        steps = [b["messages"][0]["content"].split("\n", 1)[0] for b in endpoint.seen]
        assert steps == ["step: plan", "step: spec", "step: spec", "step: tests", "step: impl",
                         "step: args", "step: answer"]
        assert state["usage"]["spec"] == {"calls": 2, "input_tokens": 200,
                                          "output_tokens": 20, "total_tokens": 220}
        assert endpoint.seen[2]["messages"][-1]["content"].startswith(
            "Your reply could not be used")
    finally:
        services.library(agent.context.library_schema).drop()
        services.forget_library(agent.context.library_schema)
        agent.close()
