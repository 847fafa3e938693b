"""One model factory, the scripted model, and the one path every reply is parsed through.

Every step asks for JSON in plain text and parses the reply itself, so a real model, an
OpenAI-compatible server without tool calling, and the scripted model take the same path.
"""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path
from typing import Any, TypeVar

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import BaseModel, ValidationError

DEMO_SCRIPT = Path(__file__).resolve().parent.parent / "examples" / "demo_script.json"
STEP_LINE = re.compile(r"^step: (\w+)$", re.MULTILINE)
REQUEST_LINE = re.compile(r"^Request: (.*)$", re.MULTILINE)
T = TypeVar("T", bound=BaseModel)


class StepError(RuntimeError):
    """A step could not get a usable reply from the model."""


class ScriptError(ValueError):
    """A scripted-model file that cannot be used."""


def resolve_model_name(name: str = "") -> str:
    """Return the model to use: the given one, SEA_MODEL, OpenAI, or the scripted demo."""
    name = (name or os.environ.get("SEA_MODEL", "")).strip()
    if name:
        return name
    if os.environ.get("OPENAI_API_KEY"):
        return "gpt-4o-mini"
    return f"scripted:{DEMO_SCRIPT}"


def is_scripted(name: str) -> bool:
    """Tell whether ``name`` selects the scripted model."""
    return resolve_model_name(name).startswith("scripted:")


_models: dict[str, BaseChatModel] = {}
_models_lock = threading.Lock()


def load_chat_model(name: str = "") -> BaseChatModel:
    """Return the chat model for ``name`` (one instance per name and process)."""
    resolved = resolve_model_name(name)
    with _models_lock:
        if resolved not in _models:
            if resolved.startswith("scripted:"):
                _models[resolved] = ScriptedChatModel.from_file(resolved.split(":", 1)[1])
            else:
                from langchain_openai import ChatOpenAI

                model = resolved.split(":", 1)[1] if resolved.startswith("openai:") else resolved
                _models[resolved] = ChatOpenAI(model=model, temperature=0, max_retries=2,
                                               timeout=120)
        return _models[resolved]


class ScriptedChatModel(BaseChatModel):
    """Replays recorded replies: for each step, the first entry whose pattern matches.

    Several replies in one entry are used in order, counted per request, so a first
    implementation can fail and the reflected one pass. It never makes anything up: a step
    with no matching entry is an error that says so.
    """

    entries: list[dict]
    source: str = ""
    counters: dict = {}

    @classmethod
    def from_file(cls, path: str | Path) -> ScriptedChatModel:
        """Load and check a script file."""
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise ScriptError(f"cannot read the scripted-model file {path}: {exc}") from exc
        entries = data.get("replies") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise ScriptError(f"{path}: expected an object with a 'replies' list")
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict) or "step" not in entry or not (
                    "reply" in entry or "replies" in entry):
                raise ScriptError(f"{path}: reply {i} needs 'step' and 'reply' or 'replies'")
            try:
                re.compile(entry.get("match", ""))
            except re.error as exc:
                raise ScriptError(f"{path}: reply {i} has a bad pattern: {exc}") from exc
        return cls(entries=entries, source=str(path), counters={})

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(self, messages: list[BaseMessage], stop=None, run_manager=None,
                  **kwargs: Any) -> ChatResult:
        text = "\n".join(str(m.content) for m in messages)
        step_match = STEP_LINE.search(text)
        request_match = REQUEST_LINE.search(text)
        step = step_match.group(1) if step_match else ""
        request = request_match.group(1) if request_match else text
        for index, entry in enumerate(self.entries):
            if entry["step"] == step and re.search(entry.get("match", ""), request):
                replies = entry.get("replies") or [entry["reply"]]
                key = (index, request)
                # Count only first attempts: a retry after a parse error replays the next one.
                position = self.counters.get(key, 0)
                self.counters[key] = position + 1
                reply = replies[min(position, len(replies) - 1)]
                content = reply if isinstance(reply, str) else json.dumps(reply)
                tokens_in = sum(len(str(m.content)) for m in messages) // 4
                message = AIMessage(content=content, usage_metadata={
                    "input_tokens": tokens_in, "output_tokens": len(content) // 4,
                    "total_tokens": tokens_in + len(content) // 4})
                return ChatResult(generations=[ChatGeneration(message=message)])
        raise StepError(f"the scripted model has no reply for step {step!r} and request "
                        f"{request!r} (script: {self.source})")


def extract_json(text: str) -> Any:
    """Return the JSON value in a reply, allowing a fenced block or surrounding prose."""
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.DOTALL)
    candidate = fenced.group(1) if fenced else text
    try:
        return json.loads(candidate)
    except ValueError:
        start, end = candidate.find("{"), candidate.rfind("}")
        if start >= 0 and end > start:
            return json.loads(candidate[start:end + 1])
        raise


def usage_of(message: AIMessage) -> dict:
    """Return the token counts a reply reports."""
    usage = getattr(message, "usage_metadata", None) or {}
    return {k: int(usage.get(k, 0)) for k in ("input_tokens", "output_tokens", "total_tokens")}


def invoke_structured(model: BaseChatModel, step: str, instructions: str, request: str,
                      body: str, schema: type[T], check=None) -> tuple[T, dict]:
    """Ask for a ``schema`` reply; on a reply that fails, retry once with the error.

    ``check`` may raise ValueError for replies that parse but are unusable. Returns the
    validated reply and the token usage of every call made.
    """
    fields = json.dumps(schema.model_json_schema())
    system = (f"step: {step}\n{instructions}\n\nReply with one JSON object and nothing else, "
              f"matching this JSON schema:\n{fields}")
    messages: list[BaseMessage] = [SystemMessage(system),
                                   HumanMessage(f"Request: {request}\n\n{body}".strip())]
    usage = {"calls": 0, "input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
    problem = ""
    for _ in range(2):
        try:
            reply = model.invoke(messages)
        except StepError:
            raise
        except Exception as exc:  # the endpoint failed: say so, do not crash the graph
            raise StepError(f"the model call for {step} failed: {type(exc).__name__}: "
                            f"{str(exc)[:300]}") from exc
        usage["calls"] += 1
        for key, value in usage_of(reply).items():
            usage[key] += value
        try:
            parsed = schema.model_validate(extract_json(str(reply.content)))
            if check:
                check(parsed)
            return parsed, usage
        except (ValueError, ValidationError) as exc:
            problem = str(exc)[:1500]
            messages += [reply, HumanMessage(f"Your reply could not be used: {problem}\n"
                                             "Reply again with corrected JSON only.")]
    raise StepError(f"the model's {step} reply was unusable twice: {problem}")
