"""The scripted model: recorded replies, replayed through the same parsing as a real model's.

It never makes anything up. A reply answers only the request it was recorded for: an entry
names its step and either the exact request (``request``, compared without case, spacing or
final punctuation) or a pattern (``match``); a step with no entry is an error that says
which requests the script knows. The step and the request come from the call's metadata
(set by ``invoke_structured``), never from parsing the prompt.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from .context import DEMO_SCRIPT  # noqa: F401  (re-exported: the demo's script)

STEPS = ("plan", "judge", "spec", "tests", "impl", "reflect", "repair", "strengthen", "args",
         "answer")


class ScriptError(ValueError):
    """A scripted-model file that cannot be used."""


class NoScriptedReply(RuntimeError):
    """The script has no reply recorded for this step and request."""


def normalize(request: str) -> str:
    """Return a request as scripts compare it: no case, single spaces, no final punctuation."""
    return re.sub(r"\s+", " ", request).strip().rstrip(".!?").strip().casefold()


class ScriptedChatModel(BaseChatModel):
    """Replays recorded replies; several replies in one entry are used in order.

    Replies are counted per entry and request, so a first implementation can fail and the
    reflected one pass; the last reply repeats.
    """

    entries: list[dict]
    source: str = ""
    counters: dict = {}
    lock: Any = None

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
            if not isinstance(entry, dict) or entry.get("step") not in STEPS or not (
                    "reply" in entry or "replies" in entry):
                raise ScriptError(f"{path}: reply {i} needs a step (one of {', '.join(STEPS)})"
                                  " and 'reply' or 'replies'")
            if ("request" in entry) == ("match" in entry):
                raise ScriptError(f"{path}: reply {i} needs exactly one of 'request' or "
                                  "'match'")
            try:
                re.compile(entry.get("match", ""))
            except re.error as exc:
                raise ScriptError(f"{path}: reply {i} has a bad pattern: {exc}") from exc
        return cls(entries=entries, source=str(path), counters={}, lock=threading.Lock())

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def known_requests(self) -> list[str]:
        """Return the requests the script records a plan for, as recorded."""
        known = []
        for entry in self.entries:
            if entry["step"] == "plan" and "request" in entry:
                requests = entry["request"]
                known += [requests] if isinstance(requests, str) else list(requests)
        return known

    def _answers(self, entry: dict, request: str) -> bool:
        if "match" in entry:
            return re.search(entry["match"], request) is not None
        recorded = entry["request"]
        recorded = [recorded] if isinstance(recorded, str) else recorded
        return normalize(request) in {normalize(r) for r in recorded}

    def reply_for(self, step: str, request: str) -> str:
        """Return the next recorded reply for ``step`` and ``request``, as raw text."""
        for index, entry in enumerate(self.entries):
            if entry["step"] == step and self._answers(entry, request):
                replies = entry.get("replies") or [entry["reply"]]
                with self.lock:
                    key = (index, normalize(request))
                    position = self.counters.get(key, 0)
                    self.counters[key] = position + 1
                reply = replies[min(position, len(replies) - 1)]
                return reply if isinstance(reply, str) else json.dumps(reply)
        known = self.known_requests()
        hint = (" This demo only knows these requests: " + "; ".join(known) + "."
                if known else "")
        raise NoScriptedReply(f"the scripted model has no recorded reply for step {step!r} "
                              f"and this request.{hint}")

    def _generate(self, messages: list[BaseMessage], stop=None, run_manager=None,
                  **kwargs: Any) -> ChatResult:
        metadata = getattr(run_manager, "metadata", None) or {}
        step, request = metadata.get("sea_step"), metadata.get("sea_request")
        if step is None or request is None:
            raise NoScriptedReply("the scripted model was called without a step and request "
                                  "in the call's metadata")
        content = self.reply_for(step, request)
        tokens_in = sum(len(str(m.content)) for m in messages) // 4
        message = AIMessage(content=content, usage_metadata={
            "input_tokens": tokens_in, "output_tokens": len(content) // 4,
            "total_tokens": tokens_in + len(content) // 4})
        return ChatResult(generations=[ChatGeneration(message=message)])
