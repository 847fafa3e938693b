"""The runtime context: settings a run is made with (Studio shows them as a form)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


def _default_model() -> str:
    return os.environ.get("SEA_MODEL", "")


@dataclass(kw_only=True)
class Context:
    """Settings for one run of the agent."""

    model: str = field(default_factory=_default_model, metadata={
        "description": "Chat model: an OpenAI-compatible model name (e.g. 'gpt-4o-mini', "
                       "'openai:llama3.1'), or 'scripted:FILE' for recorded replies. Empty: "
                       "SEA_MODEL, else OpenAI when OPENAI_API_KEY is set, else the scripted "
                       "demo."})
    sandbox_backend: str = field(default="docker", metadata={
        "description": "Where generated code runs: 'docker' (hardened container) or 'bwrap'."})
    sandbox_pool: int = field(default=-1, metadata={
        "description": "Warm containers kept ready (Docker only); -1 uses SEA_SANDBOX_POOL."})
    library_schema: str = field(default_factory=lambda: os.environ.get(
        "SEA_LIBRARY_SCHEMA", "sea"), metadata={
        "description": "PostgreSQL schema of the tool library."})
    reuse_threshold: float | None = field(default=None, metadata={
        "description": "Similarity at or above which a tool is reused; empty: the policy's "
                       "value for the embedding model."})
    verify_threshold: float | None = field(default=None, metadata={
        "description": "Similarity at or above which a model judges the candidate; empty: "
                       "the policy's value."})
    max_retries: int | None = field(default=None, metadata={
        "description": "Reflections allowed after a failed verification; empty: policy "
                       "(default 2)."})
    history_turns: int = field(default=6, metadata={
        "description": "Recent turns of the session given to planning and argument "
                       "extraction."})
    input_files: list[str] = field(default_factory=list, metadata={
        "description": "Files the tools may read, copied read-only into the sandbox."})
    session_id: str = field(default="", metadata={
        "description": "Session id recorded with executions (the thread id by default)."})
