"""What the sandbox reports back: verification reports and call results.

These cross the boundary between untrusted code and the host, so every field is bounded.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

RunStatus = Literal["passed", "failed", "error", "timeout", "out_of_memory", "unavailable"]
TestOutcomeName = Literal["passed", "failed", "error", "skipped", "xfailed", "xpassed"]


class TestOutcome(BaseModel):
    """One test's result as pytest reported it."""

    __test__ = False  # not a pytest test class

    name: str = Field(max_length=500, description="pytest node id without the file part")
    outcome: TestOutcomeName
    message: str = Field(default="", max_length=20_000, description="Failure text, if any")
    duration: float = 0.0


class VerifyReport(BaseModel):
    """The result of running a pytest suite against an implementation in the sandbox."""

    status: RunStatus
    detail: str = Field(default="", description="Why the status is what it is, in one sentence")
    tests: list[TestOutcome] = Field(default_factory=list)
    collection_errors: list[str] = Field(default_factory=list)
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    duration: float = 0.0
    stdout: str = ""
    stderr: str = ""
    output_truncated: bool = False
    backend: str = ""

    @property
    def ok(self) -> bool:
        """Tell whether the suite really passed."""
        return self.status == "passed"

    def failures(self) -> list[TestOutcome]:
        """Return the tests that failed or errored."""
        return [t for t in self.tests if t.outcome in ("failed", "error", "xpassed")]

    def summary(self) -> str:
        """Describe the report in one line."""
        base = f"{self.status}: {self.passed} passed, {self.failed} failed"
        if self.errors:
            base += f", {self.errors} errors"
        if self.skipped:
            base += f", {self.skipped} skipped"
        return base + (f" ({self.detail})" if self.detail else "")


class CallResult(BaseModel):
    """The result of calling one function of an implementation in the sandbox."""

    ok: bool
    status: Literal["ok", "error", "timeout", "out_of_memory", "unavailable"]
    result: Any = None
    error_type: str = ""
    error: str = ""
    duration: float = 0.0
    stdout: str = ""
    stderr: str = ""
    backend: str = ""

    def describe_error(self) -> str:
        """Return the error as one readable line."""
        if self.ok:
            return ""
        if self.error_type:
            return f"{self.error_type}: {self.error}"
        return self.error or self.status
