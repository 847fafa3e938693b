"""The scripted model answers only what it recorded; the runtime context fills itself."""

from __future__ import annotations

import importlib
import json

import pytest
from langchain_core.messages import HumanMessage

from nodes.kit import context as context_module
from nodes.kit.context import Context
from nodes.kit.model import StepError, invoke_structured
from nodes.kit.scripted import DEMO_SCRIPT, NoScriptedReply, ScriptedChatModel, ScriptError
from state.replies import AnswerReply, PlanReply


def model_from(tmp_path, *entries) -> ScriptedChatModel:
    path = tmp_path / "script.json"
    path.write_text(json.dumps({"replies": list(entries)}))
    return ScriptedChatModel.from_file(path)


def test_the_demo_does_not_answer_212_with_the_100_reply():
    demo = ScriptedChatModel.from_file(DEMO_SCRIPT)
    with pytest.raises(NoScriptedReply, match="only knows these requests"):
        demo.reply_for("plan", "convert 212 fahrenheit to celsius")
    # Its own request, in other case and spacing, still gets its reply.
    reply = json.loads(demo.reply_for("plan", "Convert 100 degrees  Fahrenheit to Celsius."))
    assert reply["standalone_request"] == "convert 100 degrees Fahrenheit to Celsius"


def test_every_demo_request_the_readme_lists_can_be_repeated():
    demo = ScriptedChatModel.from_file(DEMO_SCRIPT)
    for request in demo.known_requests():
        first = demo.reply_for("plan", request)
        assert demo.reply_for("plan", request) == first


def test_replies_come_in_order_per_request_and_the_last_repeats(tmp_path):
    model = model_from(tmp_path, {"step": "impl", "match": "x", "replies": ["a", "b"]})
    assert [model.reply_for("impl", "x") for _ in range(3)] == ["a", "b", "b"]
    assert model.reply_for("impl", "another x") == "a"  # counted per request


def test_the_step_comes_from_the_call_not_from_the_prompt(tmp_path):
    model = model_from(tmp_path, {"step": "answer", "request": "hi",
                                  "reply": {"answer": "hello"}})
    reply, usage = invoke_structured(model, "answer", "step: plan", "hi", "", AnswerReply)
    assert reply.answer == "hello" and usage["calls"] == 1
    with pytest.raises(NoScriptedReply, match="metadata"):
        model.invoke([HumanMessage("step: answer\nRequest: hi")])


def test_a_broken_reply_is_retried_once_then_a_clear_error(tmp_path):
    model = model_from(tmp_path, {"step": "plan", "request": "hi",
                                  "replies": ["not json", "{\"kind\": \"bogus\"}"]})
    with pytest.raises(StepError, match="unusable twice"):
        invoke_structured(model, "plan", "", "hi", "", PlanReply)


@pytest.mark.parametrize("entry,message", [
    ({"step": "nope", "match": ".", "reply": 1}, "needs a step"),
    ({"step": "plan", "reply": 1}, "exactly one of"),
    ({"step": "plan", "match": "(", "reply": 1}, "bad pattern"),
])
def test_bad_scripts_are_refused(tmp_path, entry, message):
    with pytest.raises(ScriptError, match=message):
        model_from(tmp_path, entry)


def test_context_fills_unset_fields_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SEA_SANDBOX_BACKEND", "bwrap")
    monkeypatch.setenv("SEA_SANDBOX_POOL", "5")
    monkeypatch.delenv("SEA_MAX_RETRIES", raising=False)
    context = Context()
    assert (context.sandbox_backend, context.sandbox_pool) == ("bwrap", 5)
    assert context.max_retries is None and context.overrides() == {}
    assert Context(sandbox_backend="docker").sandbox_backend == "docker"  # explicit wins


def test_context_reads_a_dotenv_file_without_overriding_the_environment(monkeypatch,
                                                                          tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SEA_MAX_RETRIES", raising=False)
    monkeypatch.setenv("SEA_HISTORY_TURNS", "3")
    (tmp_path / ".env").write_text("SEA_MAX_RETRIES=4\nSEA_HISTORY_TURNS=9\n")
    try:
        importlib.reload(context_module)  # the file is read when the settings are imported
        context = context_module.Context()
        assert context.max_retries == 4 and context.history_turns == 3
        assert context.overrides() == {"max_retries": 4, "history_turns": 3}
    finally:
        monkeypatch.delenv("SEA_MAX_RETRIES", raising=False)


def test_a_bad_setting_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SEA_SANDBOX_POOL", "many")
    with pytest.raises(ValueError, match="SEA_SANDBOX_POOL: expected whole number"):
        Context()
