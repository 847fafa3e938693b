"""The runtime context: the settings a run is made with (Studio shows them as a form).

Settings fill themselves once: a field left unset takes the environment variable named in
its metadata (a ``.env`` file in the working directory counts), else its default. The app,
the command line and Studio all build this one object, so they honour the same variables.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path

from dotenv import load_dotenv

# Read once, when the settings are first imported: set variables win over the file, and a
# run (in Studio, inside an event loop) never touches the disk to build its context.
load_dotenv(Path.cwd() / ".env", override=False)
PARSERS = {"text": str, "whole number": int, "number": float}


def setting(env: str, default, description: str, kind: str = "text"):
    """Declare a field that an unset value fills from ``env``, else from ``default``.

    The extra keys travel in ``json_schema_extra``, so Studio's form shows them too.
    """
    return field(default=None, metadata={"description": description, "json_schema_extra": {
        "env": env, "fallback": default, "kind": kind}})


@dataclass(kw_only=True)
class Context:
    """Settings for one run of the agent."""

    model: str | None = setting(
        "SEA_MODEL", "", "Chat model: an OpenAI-compatible model name (e.g. 'gpt-4o-mini', "
        "'openai:llama3.1'), or 'scripted:FILE' for recorded replies. Empty: OpenAI when "
        "OPENAI_API_KEY is set, else the scripted demo.")
    sandbox_backend: str | None = setting(
        "SEA_SANDBOX_BACKEND", "docker",
        "Where generated code runs: 'docker' (hardened container) or 'bwrap'.")
    sandbox_pool: int | None = setting(
        "SEA_SANDBOX_POOL", 2, "Warm containers kept ready (Docker only); 0 turns the pool off.",
        "whole number")
    library_schema: str | None = setting(
        "SEA_LIBRARY_SCHEMA", "sea", "PostgreSQL schema of the tool library.")
    reuse_threshold: float | None = setting(
        "SEA_REUSE_THRESHOLD", None, "Similarity at or above which a tool is reused; empty: "
        "the policy's value for the embedding model.", "number")
    verify_threshold: float | None = setting(
        "SEA_VERIFY_THRESHOLD", None, "Similarity at or above which a model judges the "
        "candidate; empty: the policy's value.", "number")
    max_retries: int | None = setting(
        "SEA_MAX_RETRIES", None, "Reflections allowed after a failed verification; empty: "
        "the policy's value.", "whole number")
    history_turns: int | None = setting(
        "SEA_HISTORY_TURNS", None, "Recent turns of the session given to planning and "
        "argument extraction; empty: the policy's value.", "whole number")
    input_files: list[str] = field(default_factory=list, metadata={
        "description": "Files the tools may read, copied read-only into the sandbox."})
    session_id: str = field(default="", metadata={
        "description": "Session id recorded with executions (the thread id by default)."})
    new_tool: bool = field(default=False, metadata={
        "description": "Build a new tool (under a new name) even when one could be reused."})

    def __post_init__(self) -> None:
        """Fill every unset setting from the environment, else from its default."""
        for item in fields(self):
            extra = item.metadata.get("json_schema_extra", {})
            if "env" not in extra or getattr(self, item.name) is not None:
                continue
            raw = os.environ.get(extra["env"], "").strip()
            value = extra["fallback"]
            if raw:
                try:
                    value = PARSERS[extra["kind"]](raw)
                except ValueError:
                    raise ValueError(f"{extra['env']}: expected {extra['kind']}, got "
                                     f"{raw!r}") from None
            setattr(self, item.name, value)

    def overrides(self) -> dict:
        """Return the policy values this run sets itself (the rest come from the policy)."""
        values = {"reuse": self.reuse_threshold, "verify": self.verify_threshold,
                  "max_retries": self.max_retries, "history_turns": self.history_turns}
        return {key: value for key, value in values.items() if value is not None}
