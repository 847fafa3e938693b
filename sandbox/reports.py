"""What the sandbox reports back: verification reports, call results, mutation scores.

These cross the boundary between untrusted code and the host, so every field is bounded.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

# Candidates only (anything but tab, newline and printable ASCII); the category decides.
_NOT_PLAIN = re.compile(r"[^\t\n\x20-\x7e]")
# Controls (C0, DEL, C1), format characters (bidi overrides and isolates, zero-width
# characters, soft hyphen...), line and paragraph separators, lone surrogates.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})  # Cs: lone surrogates
MAX_TOOL_CALLS = 10_000_000


def _escape(match: re.Match) -> str:
    char = match.group()
    if unicodedata.category(char) not in _HIDDEN_CATEGORIES:
        return char
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else (
        f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")


def printable(text: str) -> str:
    r"""Show every control and format character except newline and tab as a visible escape.

    Terminal escapes, carriage returns, C1 controls, bidi overrides and isolates, zero-width
    characters and line or paragraph separators become ``\xNN``, ``\uNNNN`` or ``\UNNNNNNNN``.
    """
    return _NOT_PLAIN.sub(_escape, text)


# Text that came out of the sandbox: it may be shown in a terminal or a page.
SafeText = Annotated[str, AfterValidator(printable)]

RunStatus = Literal["passed", "failed", "error", "timeout", "out_of_memory", "unavailable",
                    "infrastructure", "input"]
# Outcomes that say nothing about the code: the sandbox could not run it, something outside it
# (a container killed from outside, the daemon lost) broke the run, or the input files the user
# named were refused before anything ran.
NOT_A_VERDICT = ("unavailable", "infrastructure", "input")
# A mutant whose worker could not start without what earlier workers left: not run, and
# never counted as killed (the implementation could cause it on purpose).
UNCLEAN = ("its worker could not start clean: processes or files an earlier worker of the "
           "implementation left could not be removed in time")


def no_verdict_message(status: str, detail: str, what: str = "the code") -> str:
    """Say why a run that is not a verdict on ``what`` ended, for the user."""
    if status == "unavailable":
        return f"the sandbox is unavailable, nothing ran: {detail}"
    if status == "input":
        return f"the input files were refused, so nothing ran: {detail}"
    return f"the sandbox could not run {what}, for reasons outside it, twice: {detail}"
TestOutcomeName = Literal["passed", "failed", "error", "skipped", "xfailed", "xpassed"]


class TestOutcome(BaseModel):
    """One test's result as pytest reported it."""

    __test__ = False  # not a pytest test class

    name: SafeText = Field(max_length=500, description="pytest node id without the file part")
    outcome: TestOutcomeName
    message: SafeText = Field(default="", max_length=20_000, description="Failure text, if any")
    duration: float = 0.0
    tool_calls: int = Field(default=0, ge=0, le=MAX_TOOL_CALLS,
                            description="Calls the test made to the implementation")


class VerifyReport(BaseModel):
    """The result of running a pytest suite against an implementation in the sandbox."""

    status: RunStatus
    detail: SafeText = Field(default="",
                             description="Why the status is what it is, in one sentence")
    tests: list[TestOutcome] = Field(default_factory=list)
    collection_errors: list[SafeText] = Field(default_factory=list)
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    tool_calls: int = Field(default=0, ge=0,
                            description="Calls the tests made to the implementation, in all")
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
    status: Literal["ok", "error", "timeout", "out_of_memory", "unavailable", "infrastructure",
                    "input"]
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


# unclean: its worker could not start clean (UNCLEAN); counted as not killed.
MutantStatus = Literal["killed", "survived", "unclean", "not_run"]


def killer(report: VerifyReport | None) -> str:
    """Name what killed a mutant (the first failing test, or the run's status), or "".

    Only a verdict kills: a run that is none (a worker that could not start clean) never does.
    """
    if report is None or report.ok or report.status in NOT_A_VERDICT:
        return ""
    return next((test.name for test in report.failures()), report.status)


def mutant_status(report: VerifyReport | None) -> MutantStatus:
    """Say what a mutant's run did to it (None: the run had no time left for it)."""
    if report is None:
        return "not_run"
    if report.status == "infrastructure" and report.detail == UNCLEAN:
        return "unclean"
    return "killed" if killer(report) else "survived"


class MutantOutcome(BaseModel):
    """What the suite did to one mutant of the implementation."""

    id: str = Field(max_length=20)
    operator: str = Field(max_length=40)
    line: int = 0
    description: SafeText = Field(default="", max_length=500)
    status: MutantStatus
    killed_by: SafeText = Field(default="", max_length=500,
                                description="the first failing test, or the run's status")
    duration: float = 0.0
    diff: SafeText = Field(default="", max_length=20_000)


class MutationReport(BaseModel):
    """The mutation gate's measure of a suite: the share of mutants it kills."""

    score: float | None = Field(default=None, description="killed / (killed + survived); "
                                                          "None when no mutant ran")
    killed: int = 0
    survived: int = 0
    unclean: int = 0
    not_run: int = 0
    mutants: list[MutantOutcome] = Field(default_factory=list)
    error: SafeText = Field(default="", description="why the score could not be measured")

    @classmethod
    def from_outcomes(cls, outcomes: list[MutantOutcome]) -> MutationReport:
        """Count the outcomes and compute the score."""
        killed, survived, unclean = (sum(o.status == status for o in outcomes)
                                     for status in ("killed", "survived", "unclean"))
        ran = killed + survived + unclean
        return cls(score=round(killed / ran, 4) if ran else None, killed=killed,
                   survived=survived, unclean=unclean, not_run=len(outcomes) - ran,
                   mutants=outcomes)

    def survivors(self) -> list[MutantOutcome]:
        """Return the mutants the suite did not kill."""
        return [m for m in self.mutants if m.status == "survived"]

    def summary(self) -> str:
        """Describe the score in one line."""
        if self.error:
            return f"mutation score: not measured ({self.error})"
        if self.score is None:
            return "mutation score: n/a (no mutant could be made or run)"
        line = (f"mutation score {self.score:.2f}: the suite killed {self.killed} of "
                f"{self.killed + self.survived + self.unclean} mutants")
        if self.unclean:
            line += f" ({self.unclean} could not start clean, so none of them counts as killed)"
        return line + (f" ({self.not_run} not run: time)" if self.not_run else "")


def mutation_line(report: dict) -> str:
    """Describe the mutation score a stored version's report carries, in one line."""
    mutation = (report or {}).get("mutation")
    if not mutation:
        return "mutation score: not measured"
    return MutationReport.model_validate(mutation).summary()
