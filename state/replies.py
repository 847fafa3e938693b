"""What the model must reply at each step, as pydantic models validated on every reply."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from tools_store.models import ToolSpec


class PlanReply(BaseModel):
    """How to serve a request."""

    kind: Literal["single", "multi"] = Field(
        description="single: one tool serves it; multi: it needs several tools in sequence")
    standalone_request: str = Field(
        description="the request rewritten to stand alone, resolving references to earlier "
                    "turns (e.g. 'now do the same for 451' -> 'convert 451 F to Celsius')")
    steps: list[str] = Field(default_factory=list, description="for multi: the steps in order")
    new_tool: bool = Field(default=False, description="true only when the user insists on a "
                                                      "new tool even if one exists")


class JudgeReply(BaseModel):
    """Whether a candidate tool really serves a request."""

    serves: bool = Field(description="true only if the request's inputs map onto the tool's "
                                     "parameters and the tool computes what is asked, in the "
                                     "same direction")
    tool: str = Field(default="", description="the name of the candidate that serves, when "
                                              "several are shown")
    reason: str = ""


class SpecReply(ToolSpec):
    """A tool specification (see ToolSpec)."""


class TestsReply(BaseModel):
    """A pytest suite for the spec, written before any implementation."""

    __test__ = False

    tests: str = Field(description="a complete pytest module that imports the function with "
                                   "`from tool import NAME`")


class StrengthenReply(BaseModel):
    """New tests that make a passing suite kill the mutants it let survive."""

    __test__ = False

    tests: str = Field(description="only the NEW pytest test functions (and any imports they "
                                   "need), to be appended to the frozen suite unchanged")
    notes: str = ""


class ImplReply(BaseModel):
    """An implementation of the spec."""

    code: str = Field(description="a complete Python module defining the function")
    notes: str = ""


class RepairReply(BaseModel):
    """A regression test that captures a failure in use, and the fixed implementation."""

    regression_test: str = Field(
        description="new pytest test functions, with their imports (`from tool import NAME`), "
                    "that fail on the current code because of this failure and pass on the "
                    "fix; new names only: the frozen tests are kept as they are")
    code: str = Field(description="the whole fixed module defining the function")
    notes: str = Field(default="", description="what was wrong and what the fix changes")


class ArgsReply(BaseModel):
    """Arguments for a tool call, extracted from the request."""

    arguments: dict[str, Any]


class AnswerReply(BaseModel):
    """The short answer for the user."""

    answer: str
