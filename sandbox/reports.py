"""What the sandbox reports back: verification reports and call results.

These cross the boundary between untrusted code and the host, so every field is bounded.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def printable(text: str) -> str:
    r"""Show control characters (terminal escapes included) as visible \xNN escapes."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


# Text that came out of the sandbox: it may be shown in a terminal or a page.
SafeText = Annotated[str, AfterValidator(printable)]

RunStatus = Literal["passed", "failed", "error", "timeout", "out_of_memory", "unavailable"]
TestOutcomeName = Literal["passed", "failed", "error", "skipped", "xfailed", "xpassed"]


class TestOutcome(BaseModel):
    """One test's result as pytest reported it."""

    __test__ = False  # not a pytest test class

    name: str = Field(max_length=500, description="pytest node id without the file part")
    outcome: TestOutcomeName
    message: SafeText = Field(default="", max_length=20_000, description="Failure text, if any")
    duration: float = 0.0


class VerifyReport(BaseModel):
    """The result of running a pytest suite against an implementation in the sandbox."""

    status: RunStatus
    detail: str = Field(default="", description="Why the status is what it is, in one sentence")
    tests: list[TestOutcome] = Field(default_factory=list)
    collection_errors: list[SafeText] = Field(default_factory=list)
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    duration: float = 0.0
    stdout: SafeText = ""
    stderr: SafeText = ""
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


class OutputFile(BaseModel):
    """A file a call declared and wrote in its working directory, copied out (or why not)."""

    model_config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")

    name: str
    size: int = 0
    sha256: str = ""
    content: bytes | None = Field(default=None, repr=False)
    error: SafeText = Field(default="", description="why the file is missing, if it is")


class CallResult(BaseModel):
    """The result of calling one function of an implementation in the sandbox."""

    ok: bool
    status: Literal["ok", "error", "timeout", "out_of_memory", "unavailable"]
    result: Any = None
    error_type: SafeText = ""
    error: SafeText = ""
    duration: float = 0.0
    stdout: SafeText = ""
    stderr: SafeText = ""
    backend: str = ""
    files: list[OutputFile] = Field(default_factory=list, description="declared output files")

    def describe_error(self) -> str:
        """Return the error as one readable line."""
        if self.ok:
            return ""
        if self.error_type:
            return f"{self.error_type}: {self.error}"
        return self.error or self.status
