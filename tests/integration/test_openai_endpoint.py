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

from nodes.kit.scripted import DEMO_SCRIPT, ScriptedChatModel

# A real endpoint is told nothing but the prompt; this server tells the step by the reply
# schema the prompt asks for (the implementation schema serves impl and reflect alike).
STEP_OF_SCHEMA = {"PlanReply": "plan", "JudgeReply": "judge", "SpecReply": "spec",
                  "TestsReply": "tests", "ImplReply": "impl", "ArgsReply": "args",
                  "AnswerReply": "answer", "StrengthenReply": "strengthen",
                  "RepairReply": "repair"}


def step_and_request(messages: list[dict]) -> tuple[str, str]:
    """Read the step from the schema's title and the request from the 'Request:' line."""
    system = messages[0]["content"]
    # Instructions may show JSON of their own: the schema is what follows its marker.
    marker = "matching this JSON schema:\n"
    schema = json.loads(system[system.index(marker) + len(marker):])
    first_user = next(m["content"] for m in messages if m["role"] == "user")
    request = first_user.split("\n", 1)[0].removeprefix("Request: ")
    return STEP_OF_SCHEMA[schema["title"]], request


class ChatCompletions(BaseHTTPRequestHandler):
    """POST /v1/chat/completions, answered from a script; every request is recorded."""

    script = ScriptedChatModel.from_file(DEMO_SCRIPT)
    seen: list[dict] = []
    steps: list[str] = []
    broken_first: set[str] = set()

    def do_POST(self):  # noqa: N802 - the http.server API
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append(body)
        step, request = step_and_request(body["messages"])
        self.steps.append(step)
        if step in self.broken_first:
            self.broken_first.discard(step)
            content = "Sure! Here is what you asked for, but not as JSON."
        else:
            content = self.script.reply_for(step, request)
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
    ChatCompletions.steps.clear()
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{server.server_port}/v1")
    monkeypatch.delenv("SEA_MODEL", raising=False)
    yield ChatCompletions
    server.shutdown()


def test_an_openai_compatible_endpoint_serves_the_pipeline(endpoint, docker_sandbox):
    from graph.runner import Agent
    from nodes.kit import services

    endpoint.broken_first = {"spec"}  # one unusable reply: the agent must retry once
    agent = Agent(model="openai:local-test-model", sandbox_pool=0,
                  library_schema=f"oai_{uuid.uuid4().hex[:8]}")
    try:
        assert not agent.scripted
        state = agent.ask("convert 100 degrees Fahrenheit to Celsius")
        assert state["result"] == 37.78 and state["tool"]["status"] == "verified"
        assert {b["model"] for b in endpoint.seen} == {"local-test-model"}
        assert endpoint.steps == ["plan", "spec", "spec", "tests", "impl", "args", "answer"]
        assert state["usage"]["spec"] == {"calls": 2, "input_tokens": 200,
                                          "output_tokens": 20, "total_tokens": 220}
        assert endpoint.seen[2]["messages"][-1]["content"].startswith(
            "Your reply could not be used")
    finally:
        services.library(agent.context.library_schema).drop()
        services.forget_library(agent.context.library_schema)
        agent.close()
