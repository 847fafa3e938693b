"""What the model must reply at each step, as pydantic models validated on every reply."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tools_store.models import ToolSpec


class StepInput(BaseModel):
    """Where one input of a step comes from: exactly one of the three."""

    model_config = ConfigDict(extra="forbid")

    value: Any = Field(default=None, description="a literal value taken from the request")
    from_step: int | None = Field(default=None, description="the output of an earlier step, "
                                  "numbered from 1 (a file it wrote, else its result)")
    item: str | None = Field(default=None, description="a session data item, by its name in "
                             "the listing (e.g. 'products.csv', 'result_t2')")

    @model_validator(mode="before")
    @classmethod
    def _literal(cls, data: Any) -> Any:
        # A bare literal ("10", 0.1) is shorthand for {"value": ...}.
        if not isinstance(data, dict) or not set(data) <= {"value", "from_step", "item"}:
            return {"value": data}
        return data

    @model_validator(mode="after")
    def _one_source(self) -> StepInput:
        given = [k for k in ("from_step", "item") if getattr(self, k) is not None]
        if len(given) + ("value" in self.model_fields_set) != 1:
            raise ValueError("an input comes from exactly one of value, from_step or item")
        return self


class PlanStep(BaseModel):
    """One step of a plan: a sub-request that one tool can serve on its own."""

    request: str = Field(min_length=1, description="the step as a self-contained request, "
                         "naming its inputs (e.g. 'keep the rows of margins.csv above 10 %')")
    inputs: dict[str, StepInput] = Field(
        default_factory=dict, description="the step's inputs by name (a parameter name, or "
        "the file name the tool reads) and where each comes from")
    outputs: list[str] = Field(default_factory=list, description="files the step's tool "
                               "writes in its working directory (e.g. ['margins.csv'])")


class PlanReply(BaseModel):
    """How to serve a request."""

    kind: Literal["single", "multi"] = Field(
        description="single: one tool serves it; multi: it needs several tools in sequence")
    standalone_request: str = Field(
        description="the request rewritten to stand alone, resolving references to earlier "
                    "turns (e.g. 'now do the same for 451' -> 'convert 451 F to Celsius')")
    steps: list[PlanStep] = Field(
        default_factory=list, description="for multi: the steps in order; for single, "
        "optionally the one step, to name its inputs (session data) and output files")
    new_tool: bool = Field(default=False, description="true only when the user insists on a "
                                                      "new tool even if one exists")

    @field_validator("steps", mode="before")
    @classmethod
    def _plain_steps(cls, value: Any) -> Any:
        # A step given as bare text is a step with no declared inputs.
        if isinstance(value, list):
            return [{"request": v} if isinstance(v, str) else v for v in value]
        return value


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
