"""The library as LangChain tools in a LangGraph agent, and the bigtool-style search.

The agent is a small StateGraph with LangGraph's ToolNode; its chat model is scripted (it
binds the tools and asks for a call), the tool runs in the real Docker sandbox, and the
execution is logged with source ``langchain``.
"""

from __future__ import annotations

import json
import uuid

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import StructuredTool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from sandbox.core import UID_FLOOR  # each run's users have uids from here
from tools_store.langchain_tools import library_tools, retrieve_tools_function, tool_registry
from tools_store.library import ToolLibrary
from tools_store.models import ToolSpec


class ScriptedToolModel(GenericFakeChatModel):
    """A fake chat model that accepts tools and replays its messages, tool calls included."""

    bound: list = []

    def bind_tools(self, tools, **kwargs):
        self.bound = [tool.name for tool in tools]
        return self


@pytest.fixture(scope="module")
def library(docker_sandbox):
    lib = ToolLibrary(schema=f"lc_{uuid.uuid4().hex[:8]}")
    lib.register(ToolSpec(name="word_count", description="Count the number of words in a text.",
                          parameters=[{"name": "text", "type": "string"}],
                          returns={"type": "array", "description": "[words, uid]"}),
                 "import os\n\ndef word_count(text):\n"
                 "    return [len(text.split()), os.getuid()]\n", "")
    lib.register(ToolSpec(name="celsius_to_fahrenheit",
                          description="Convert a temperature from Celsius to Fahrenheit.",
                          parameters=[{"name": "celsius", "type": "number"}]),
                 "def celsius_to_fahrenheit(celsius):\n    return celsius * 9 / 5 + 32\n", "")
    lib.register(ToolSpec(name="draft_tool", description="An experimental draft."),
                 "def draft_tool():\n    return 1\n", "", status="experimental")
    yield lib
    lib.drop()


def agent_with(model, tools):
    llm = model.bind_tools(tools)

    def call_model(state: MessagesState) -> dict:
        return {"messages": [llm.invoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("model", call_model)
    builder.add_node("tools", ToolNode(tools))
    builder.add_edge(START, "model")
    builder.add_conditional_edges("model", tools_condition)
    builder.add_edge("tools", "model")
    builder.add_edge("model", END)
    return builder.compile()


def test_a_langgraph_agent_binds_the_library_and_calls_a_tool_in_the_sandbox(
        library, docker_sandbox):
    tools = library_tools(library, docker_sandbox)
    assert [t.name for t in tools] == ["celsius_to_fahrenheit", "word_count"]
    model = ScriptedToolModel(messages=iter([
        AIMessage("", tool_calls=[{"name": "word_count", "args": {"text": "a b c d"},
                                   "id": "call-1"}]),
        AIMessage("", tool_calls=[{"name": "word_count", "args": {"text": 42},
                                   "id": "call-2"}]),
        AIMessage("There are 4 words."),
    ]))
    agent = agent_with(model, tools)
    state = agent.invoke({"messages": [HumanMessage("how many words in 'a b c d'?")]})
    assert model.bound == ["celsius_to_fahrenheit", "word_count"]
    good, bad = [m for m in state["messages"] if m.type == "tool"]
    words, uid = json.loads(good.content)
    assert words == 4 and uid >= UID_FLOOR  # it ran as one of the sandbox's own users
    assert bad.status == "error" and "argument 'text' must be str" in bad.content
    assert state["messages"][-1].content == "There are 4 words."
    (run,) = library.executions("word_count")
    assert (run["source"], run["inputs"], run["output"]) == ("langchain", {"text": "a b c d"},
                                                             [4, uid])
    assert run["code_hash"] == library.get("word_count").code_hash


def test_a_failing_call_is_a_tool_error_not_a_crash(library, docker_sandbox):
    (tool,) = [t for t in library_tools(library, docker_sandbox)
               if t.name == "celsius_to_fahrenheit"]
    assert tool.invoke({"celsius": 100}) == "212.0"
    message = tool.invoke({"type": "tool_call", "name": tool.name, "id": "c1",
                           "args": {"celsius": "hot"}})
    assert message.status == "error" and "must be float" in message.content


def test_bigtool_style_search_returns_ids_of_the_registry(library, docker_sandbox):
    registry = tool_registry(library, docker_sandbox)
    retrieve = retrieve_tools_function(library, limit=2)
    # langgraph-bigtool wraps the function this way and invokes it with the model's args.
    as_tool = StructuredTool.from_function(func=retrieve)
    assert as_tool.name == "retrieve_tools" and set(as_tool.args) == {"query"}
    found = as_tool.invoke({"query": "how many words are in this sentence"})
    assert found[0] == "word_count" and set(found) <= set(registry)
    assert "draft_tool" not in retrieve("an experimental draft")
    assert "draft_tool" in retrieve_tools_function(library, include_experimental=True)(
        "an experimental draft")
    assert registry[found[0]].name == "word_count"
