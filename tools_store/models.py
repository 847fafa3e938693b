"""Tool specifications and library records: what the model writes and the library keeps."""

from __future__ import annotations

import builtins
import keyword
import re
import sys
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from .errors import InvalidToolName

JsonType = Literal["string", "integer", "number", "boolean", "array", "object"]
PY_TYPES = {"string": "str", "integer": "int", "number": "float", "boolean": "bool",
            "array": "list", "object": "dict"}
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{1,62}")  # whole names only: fullmatch
# Names the sandbox itself uses for its files.
RESERVED_NAMES = {"tool", "test_tool", "conftest", "runner", "pytest"}
ToolStatus = Literal["verified", "experimental", "retired"]


def check_tool_name(name: str) -> str:
    """Return ``name`` if it is a safe tool name, else raise InvalidToolName saying why."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise InvalidToolName(f"tool name {name!r} must be snake_case: a lowercase letter, "
                              "then lowercase letters, digits or underscores (2-63 chars)")
    if keyword.iskeyword(name) or name in RESERVED_NAMES:
        raise InvalidToolName(f"tool name {name!r} is reserved")
    if name in sys.stdlib_module_names or hasattr(builtins, name):
        raise InvalidToolName(f"tool name {name!r} would shadow the standard library")
    return name


class Parameter(BaseModel):
    """One typed parameter of a tool."""

    name: str = Field(description="snake_case parameter name")
    type: JsonType = Field(description="JSON type of the argument")
    description: str = Field(default="", description="what the argument means, with units")
    required: bool = True
    default: Any = None

    @field_validator("name")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not value.isidentifier() or keyword.iskeyword(value):
            raise ValueError(f"parameter name {value!r} is not a Python identifier")
        return value


class Returns(BaseModel):
    """What a tool returns."""

    type: JsonType | Literal["null"] = "string"
    description: str = ""


class ToolSpec(BaseModel):
    """A tool's specification, written before its tests and its implementation."""

    name: str = Field(description="snake_case function name")
    description: str = Field(min_length=3, description="one sentence: what the tool does")
    parameters: list[Parameter] = Field(default_factory=list)
    returns: Returns = Field(default_factory=Returns)
    docstring: str = Field(default="", description="docstring with examples and edge cases")
    examples: list[str] = Field(default_factory=list,
                                description="requests in users' words that this tool serves")
    edge_cases: list[str] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        try:
            return check_tool_name(value)
        except InvalidToolName as exc:
            raise ValueError(str(exc)) from exc

    def signature(self) -> str:
        """Return the Python signature the implementation must define."""
        params = ", ".join(
            f"{p.name}: {PY_TYPES[p.type]}" + ("" if p.required else f" = {p.default!r}")
            for p in self.parameters)
        return f"def {self.name}({params})"

    def arguments_schema(self) -> dict:
        """Return the JSON schema of the tool's arguments, docstring included."""
        return {
            "title": self.name,
            "description": (self.description + "\n\n" + self.docstring).strip(),
            "type": "object",
            "properties": {p.name: {"type": p.type, "description": p.description}
                           for p in self.parameters},
            "required": [p.name for p in self.parameters if p.required],
            "additionalProperties": False,
        }

    def index_text(self) -> str:
        """Return the text the library indexes the tool's purpose by."""
        params = ", ".join(f"{p.name} ({p.description or p.type})" for p in self.parameters)
        text = f"{self.name.replace('_', ' ')}: {self.description}"
        return f"{text} Inputs: {params}." if params else text


class ToolRecord(BaseModel):
    """One version of a tool as the library keeps it."""

    name: str
    version: int
    status: ToolStatus
    spec: ToolSpec
    code: str
    tests: str
    report: dict = Field(default_factory=dict)
    code_hash: str = ""
    reason: str = ""
    created_at: datetime | None = None
    current: bool = True
    uses: int = 0
    successes: int = 0

    @property
    def success_rate(self) -> float | None:
        """Return the share of successful executions, or None before any."""
        return self.successes / self.uses if self.uses else None


class Candidate(BaseModel):
    """A tool the library found for a request, with its scores."""

    name: str
    version: int
    status: ToolStatus
    description: str
    similarity: float = Field(description="raw cosine similarity of the best-matching text")
    matched_text: str = ""
    success_rate: float | None = None
    uses: int = 0
    score: float = Field(description="similarity re-ranked by success rate and usage")
    conflict: str = Field(default="", description="why the request may contradict the tool")


class SearchResult(BaseModel):
    """Ranked candidates and the thresholds that apply to them; the graph decides."""

    query: str
    candidates: list[Candidate]
    thresholds: dict = Field(default_factory=dict)
    embedding_model: str = ""


def check_arguments(arguments: dict, spec: ToolSpec) -> dict:
    """Validate call arguments against the spec; return them with defaults filled in."""
    if not isinstance(arguments, dict):
        raise ValueError("arguments must be a JSON object")
    known = {p.name: p for p in spec.parameters}
    unknown = sorted(set(arguments) - set(known))
    if unknown:
        raise ValueError(f"unknown arguments: {', '.join(unknown)}")
    checked = {}
    for name, param in known.items():
        if name not in arguments:
            if param.required:
                raise ValueError(f"missing argument {name!r} ({param.description})")
            checked[name] = param.default
            continue
        value = arguments[name]
        expected = {"string": str, "integer": int, "number": (int, float), "boolean": bool,
                    "array": list, "object": dict}[param.type]
        if isinstance(value, bool) and param.type in ("integer", "number"):
            raise ValueError(f"argument {name!r} must be a {param.type}, not a boolean")
        if param.type == "number" and isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        if not isinstance(value, expected):
            raise ValueError(f"argument {name!r} must be {PY_TYPES[param.type]}, got "
                             f"{type(value).__name__}")
        checked[name] = value
    return checked
