"""One model factory, and the one path every reply is parsed through.

Every step asks for JSON in plain text and parses the reply itself, so a real model, an
OpenAI-compatible server without tool calling, and the scripted model take the same path.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any, TypeVar

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, ValidationError

from tools_store.text import unstorable

from .context import is_scripted, resolve_model_name  # noqa: F401  (re-exported)
from .scripted import NoScriptedReply, ScriptedChatModel

T = TypeVar("T", bound=BaseModel)


class StepError(RuntimeError):
    """A step could not get a usable reply from the model."""


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
    system = (f"{instructions}\n\nReply with one JSON object and nothing else, "
              f"matching this JSON schema:\n{fields}")
    messages: list[BaseMessage] = [SystemMessage(system),
                                   HumanMessage(f"Request: {request}\n\n{body}".strip())]
    usage = {"calls": 0, "input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
    problem = ""
    for _ in range(2):
        try:
            # The step and request travel as metadata: a real model ignores them, the
            # scripted one answers by them.
            reply = model.invoke(messages, config={"metadata": {"sea_step": step,
                                                                "sea_request": request}})
        except NoScriptedReply as exc:
            raise StepError(str(exc)) from exc
        except Exception as exc:  # the endpoint failed: say so, do not crash the graph
            raise StepError(f"the model call for {step} failed: {type(exc).__name__}: "
                            f"{str(exc)[:300]}") from exc
        usage["calls"] += 1
        for key, value in usage_of(reply).items():
            usage[key] += value
        try:
            parsed = schema.model_validate(extract_json(str(reply.content)))
            if unstorable(parsed.model_dump()):
                raise ValueError(f"the reply holds {unstorable(parsed.model_dump())}")
            if check:
                check(parsed)
            return parsed, usage
        except (ValueError, ValidationError) as exc:
            problem = str(exc)[:1500]
            messages += [reply, HumanMessage(f"Your reply could not be used: {problem}\n"
                                             "Reply again with corrected JSON only.")]
    raise StepError(f"the model's {step} reply was unusable twice: {problem}")
