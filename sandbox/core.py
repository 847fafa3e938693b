"""The sandbox interface, its limits, and the host-side checks of what comes back.

Backends only move a job into an isolated runner and bring its frame back; turning a frame
into a report, and distrusting it while doing so, happens here once for all of them.

Why this module is long: the cross-checks of a frame against the facts of its run belong
together, next to the interface whose promise they keep.
"""

from __future__ import annotations

import ast
import base64
import errno
import hashlib
import json
import os
import re
import secrets
import stat
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from .errors import (  # noqa: F401  (re-exported)
    LimitError,
    SandboxError,
    SandboxFault,
    SandboxUnavailable,
)
from .reports import UNCLEAN, CallResult, OutputFile, TestOutcome, VerifyReport
from .runner import (
    CONFTEST_FILE,
    FRAME_MARKER,
    MAX_DEPTH,
    REPORT_LIMIT,
    TEST_FILE,
    TOOL_FILE,
    DepthError,
    decode_json,
    encode_json,
)

MAX_INPUT_BYTES = 32 * 1024 * 1024
# Each run's users are drawn from here: far above ordinary accounts and the usual subordinate
# id ranges, so no per-user kernel limit is shared with the host or with another run.
UID_FLOOR = 1 << 30
UID_SPAN = 1 << 30
# Extra modules shipped beside tool.py (a composite's pinned components): plain module names.
MODULE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}\.py$")
RESERVED_FILES = (TOOL_FILE, TEST_FILE, "conftest.py")
MAX_LIMIT = 10**9  # above any real limit (a day is 86,400 s), below the clock's overflow


def env_float(name: str, default: float) -> float:
    """Return the number in environment variable ``name`` (``default`` when unset)."""
    return _env(name, default, float)


def env_int(name: str, default: int) -> int:
    """Return the whole number in environment variable ``name`` (``default`` when unset)."""
    return _env(name, default, int)


def _env(name: str, default, kind):
    raw = os.environ.get(name)
    try:
        return kind(raw) if raw else default
    except ValueError:
        raise LimitError(f"{name}={raw!r} is not {'a whole' if kind is int else 'a'} "
                         "number") from None


@dataclass(frozen=True)
class Limits:
    """Resource limits for one run; every one can be set from the environment."""

    timeout: float = field(default_factory=lambda: env_float("SEA_SANDBOX_TIMEOUT", 30.0))
    memory_mb: int = field(default_factory=lambda: env_int("SEA_SANDBOX_MEMORY_MB", 256))
    cpus: float = field(default_factory=lambda: env_float("SEA_SANDBOX_CPUS", 0.5))
    pids: int = field(default_factory=lambda: env_int("SEA_SANDBOX_PIDS", 64))
    tmp_mb: int = field(default_factory=lambda: env_int("SEA_SANDBOX_TMP_MB", 64))
    shm_mb: int = field(default_factory=lambda: env_int("SEA_SANDBOX_SHM_MB", 8))
    nofile: int = field(default_factory=lambda: env_int("SEA_SANDBOX_NOFILE", 256))
    fsize_mb: int = field(default_factory=lambda: env_int("SEA_SANDBOX_FSIZE_MB", 32))
    output_bytes: int = field(default_factory=lambda: env_int("SEA_SANDBOX_OUTPUT_BYTES",
                                                               64 * 1024))
    # Declared output files of a call, all together (they travel base64 in the frame).
    output_files_bytes: int = field(default_factory=lambda: env_int(
        "SEA_SANDBOX_OUTPUT_FILES_BYTES", 2 * 1024 * 1024))
    # Time the host waits beyond ``timeout`` for the runner to report before killing it.
    grace: float = 5.0

    def __post_init__(self) -> None:
        # Docker reads a memory or pids limit of 0 or less as "no limit", and a run cannot
        # wait past the platform's clock: refuse such a limit rather than run without it.
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not 0 < value <= MAX_LIMIT:
                variable = f"SEA_SANDBOX_{item.name.upper()}"
                source = f" (set by {variable})" if os.environ.get(variable) else ""
                raise LimitError(f"the sandbox limit {item.name}{source} must be above 0 and "
                                 f"at most {MAX_LIMIT:,}, not {value!r}")


def check_modules(modules: dict[str, str] | None) -> dict[str, str]:
    """Return extra source modules if every name is a plain module file name, else raise."""
    for name in modules or {}:
        if not MODULE_NAME.fullmatch(name) or name in RESERVED_FILES:
            raise ValueError(f"module file name {name!r} is not allowed")
    return dict(modules or {})


def check_outputs(outputs: list[str] | None) -> list[str]:
    """Return the declared output file names if each is a plain file name, else raise."""
    for name in outputs or []:
        if (not isinstance(name, str) or not name or "/" in name or name.startswith(".")
                or len(name) > 200 or name in RESERVED_FILES):
            raise ValueError(f"output file name {name!r} is not allowed")
    return list(dict.fromkeys(outputs or []))


def build_job(mode: str, implementation: str, tests: str | None, inputs: dict[str, bytes],
              limits: Limits, function: str | None = None, args: dict | None = None,
              workdir: str = "/tmp/job", modules: dict[str, str] | None = None,
              outputs: list[str] | None = None, conftest: str | None = None,
              **extra: Any) -> bytes:
    """Encode one job for the runner: a byte count line, then the JSON.

    ``extra`` carries a mode's own fields (mutate: ``variants``, ``stop_first``,
    ``variant_timeout``).
    """
    sources = {**(modules or {}), TOOL_FILE: implementation}
    if tests is not None:
        sources[TEST_FILE] = tests
    if conftest is not None:
        sources[CONFTEST_FILE] = conftest
    payload = {
        "mode": mode, "sources": sources, "workdir": workdir,
        "inputs": {name: data.hex() for name, data in inputs.items()},
        "timeout": limits.timeout, "output_limit": limits.output_bytes,
        "function": function, "args": args or {},
        "outputs": outputs or [], "outputs_limit": limits.output_files_bytes, **extra,
    }
    body = json.dumps(payload).encode()
    return str(len(body)).encode() + b"\n" + body


def run_uids() -> tuple[int, int, int]:
    """Return three fresh users for one run: the runner, the tests, the implementation."""
    base = UID_FLOOR + secrets.randbelow(UID_SPAN - 3)
    return base, base + 1, base + 2


_FILE_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
               (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link"))


def _not_regular(path: Path, mode: int) -> ValueError:
    kind = next((name for test, name in _FILE_KINDS if test(mode)), "not a plain file")
    return ValueError(f"input file {path.name!r} is {kind}, not a regular file")


def _read_input(path: Path, room: int) -> bytes:
    """Read one input file as hostile: no links, no blocking, regular files, at most ``room``."""
    mode = os.lstat(path).st_mode
    if not stat.S_ISREG(mode):  # devices, FIFOs and links are never even opened
        raise _not_regular(path, mode)
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ValueError(f"input file {path.name!r} is a symbolic link; name the file "
                             "it points to") from None
        raise
    try:
        info = os.fstat(fd)  # what was opened, whatever the name pointed to a moment before
        if not stat.S_ISREG(info.st_mode):
            raise _not_regular(path, info.st_mode)
        if info.st_size > room:
            raise ValueError(f"input file {path.name!r} is {info.st_size} bytes; the input "
                             f"files may total {MAX_INPUT_BYTES} bytes")
        chunks: list[bytes] = []
        size = 0
        while size <= room:
            chunk = os.read(fd, min(1 << 20, room + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > room:
            raise ValueError(f"input file {path.name!r} grew past the limit of "
                             f"{MAX_INPUT_BYTES} bytes while it was read")
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_inputs(files: list[str | Path] | dict[str, bytes] | None) -> dict[str, bytes]:
    """Read the input files the user named, by base name, refusing odd names, kinds and sizes."""
    if not files:
        return {}
    out: dict[str, bytes] = {}
    total = 0
    entries = list(files.items()) if isinstance(files, dict) else [
        (Path(p).name, Path(p)) for p in files]
    for name, source in entries:
        if name in (TOOL_FILE, TEST_FILE, "conftest.py") or "/" in name or name.startswith("."):
            raise ValueError(f"input file name {name!r} is not allowed")
        room = MAX_INPUT_BYTES - total
        data = _read_input(source, room) if isinstance(source, Path) else bytes(source)
        total += len(data)
        if total > MAX_INPUT_BYTES:
            raise ValueError(f"input files total {total} bytes; the limit is {MAX_INPUT_BYTES}")
        out[name] = data
    return out


@dataclass
class RawRun:
    """What a backend saw of one run, before any of it is trusted."""

    output: str
    exit_code: int | None
    oom_killed: bool = False
    host_timed_out: bool = False
    duration: float = 0.0
    backend: str = ""


class _Frame(BaseModel):
    mode: str
    timed_out: bool
    child_exit: int | None
    child_signal: int | None
    report: str
    report_overflow: bool
    report_foreign: bool = False
    stdout: str
    stderr: str
    output_truncated: bool
    duration: float
    oom_kills: int = 0
    error: str = ""
    files: dict[str, dict] = {}  # declared output files of a call (name -> content or error)


class _SuiteReport(BaseModel):
    exitstatus: int
    tests: list[TestOutcome]
    collection_errors: list[str]


def parse_frame(output: str) -> _Frame | None:
    """Return the runner's last frame, or None when there is none that validates."""
    position = output.rfind(FRAME_MARKER)
    if position < 0:
        return None
    line = output[position + len(FRAME_MARKER):].split("\n", 1)[0]
    try:
        return _Frame.model_validate_json(line)
    except ValidationError:
        return None


def declared_tests(tests: str) -> set[str]:
    """Name the test functions a suite declares, read from its source without running it."""
    names: set[str] = set()
    try:
        tree = ast.parse(tests)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return names
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
                "test"):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name.startswith("test"):
                    names.add(f"{node.name}::{item.name}")
    return names


def _report_refusal(frame: _Frame) -> str:
    """Say why the report channel's content cannot be trusted at all, or return ''."""
    if frame.report_foreign:
        return "a process other than the judge wrote to the report channel"
    if frame.report_overflow:
        return f"the report overflowed its limit of {REPORT_LIMIT} bytes"
    return ""


# Exit statuses of a runner killed by SIGKILL or SIGTERM (Docker's 128+n, subprocess's -n).
KILLED = (137, 143, -9, -15)


def _limit_status(raw: RawRun, frame: _Frame | None):
    """Return what ended the run when it was not the code's own report, else None.

    timeout and out_of_memory count against the code; the memory verdict comes only from the
    cgroup (Docker's OOMKilled, the cgroup's oom_kill count), never from an exit status. A
    runner killed without a report, with no limit hit, was stopped from outside (the runner is
    PID 1 of its namespace: the code it runs cannot kill it): infrastructure.
    """
    if raw.host_timed_out or (frame is not None and frame.timed_out):
        return "timeout"
    if raw.oom_killed or (frame is not None and frame.oom_kills > 0):
        return "out_of_memory"
    if frame is None and raw.exit_code in KILLED:
        return "infrastructure"
    return None


def _outside_kill(raw: RawRun) -> str:
    return (f"the sandbox was stopped from outside (exit status {raw.exit_code}) before it "
            "reported")


def verify_report(raw: RawRun, tests: str, limits: Limits) -> VerifyReport:
    """Turn a run into a verification report, cross-checking the frame against the facts."""
    return _suite_verdict(raw, parse_frame(raw.output), tests, limits)


class _VariantRun(BaseModel):
    """One variant's run in a mutate job, as the runner saw it."""

    not_run: bool = False
    unclean: bool = False  # not run: what earlier workers left could not be cleared
    timed_out: bool = False
    child_exit: int | None = None
    child_signal: int | None = None
    report: str = ""
    report_overflow: bool = False
    report_foreign: bool = False
    duration: float = 0.0
    oom_kills: int = 0


class _Variants(BaseModel):
    variants: list[_VariantRun]


def variant_reports(raw: RawRun, tests: str, limits: Limits, count: int
                    ) -> list[VerifyReport | None]:
    """Turn a mutate run into one report per variant (None: its turn never came).

    Each variant's report gets the same cross-checks as a verification; a run that failed as
    a whole raises SandboxError, since no variant's verdict can be trusted then.
    """
    frame = parse_frame(raw.output)
    # A variant that ran out of memory shows as its own failure; the run as a whole failed
    # only when it has no frame, timed out, or its report cannot be trusted.
    if frame is None or frame.error or raw.host_timed_out or frame.timed_out or (
            _report_refusal(frame)):
        whole = _suite_verdict(raw, frame, tests, limits)
        kind = {"unavailable": SandboxUnavailable,
                "infrastructure": SandboxFault}.get(whole.status, SandboxError)
        raise kind(f"the mutation run failed: {whole.detail}")
    try:
        runs = _Variants.model_validate_json(frame.report).variants
    except (ValidationError, RecursionError, MemoryError):
        raise SandboxError("the mutation run's report was malformed") from None
    if len(runs) != count:
        raise SandboxError(f"the mutation run reported {len(runs)} variants of {count}")
    reports: list[VerifyReport | None] = []
    for run in runs:
        if run.unclean:  # not a verdict, so the gate never counts it as killed
            reports.append(VerifyReport(status="infrastructure", detail=UNCLEAN,
                                        backend=raw.backend))
            continue
        if run.not_run:
            reports.append(None)
            continue
        one = _Frame(mode="verify", stdout="", stderr="", output_truncated=False,
                     **run.model_dump(exclude={"not_run", "unclean"}))
        report = _suite_verdict(RawRun(output="", exit_code=0, duration=run.duration,
                                       backend=raw.backend), one, tests, limits)
        if report.status == "timeout":
            report = report.model_copy(update={"detail": "the suite ran past this variant's "
                                                         "time budget"})
        reports.append(report)
    return reports


def _suite_verdict(raw: RawRun, frame: _Frame | None, tests: str,
                   limits: Limits) -> VerifyReport:
    """Judge one run of a suite from its frame and the facts the backend saw."""
    common: dict[str, Any] = {"duration": round(raw.duration, 4), "backend": raw.backend}
    if frame is not None:
        common.update(stdout=frame.stdout, stderr=frame.stderr,
                      output_truncated=frame.output_truncated)
    limit = _limit_status(raw, frame)
    if limit == "timeout":
        return VerifyReport(status="timeout", detail=f"the suite ran past {limits.timeout:g} s",
                            **common)
    if limit == "out_of_memory":
        return VerifyReport(status="out_of_memory",
                            detail=f"the run needed more than {limits.memory_mb} MB", **common)
    if limit == "infrastructure":
        return VerifyReport(status="infrastructure", detail=_outside_kill(raw), **common)
    if frame is None:
        return VerifyReport(status="error", detail="the sandbox runner gave no valid report "
                            f"(exit status {raw.exit_code})", **common)
    if frame.error:
        return VerifyReport(status="unavailable", detail=frame.error, **common)
    refused = _report_refusal(frame)
    if refused:
        return VerifyReport(status="error", detail=refused, **common)
    try:
        suite = _SuiteReport.model_validate_json(frame.report) if frame.report else None
    except (ValidationError, RecursionError, MemoryError):
        suite = None
    if suite is None:
        detail = "the suite ended before pytest reported"
        if frame.child_exit is not None:
            detail += f" (exit status {frame.child_exit})"
        elif frame.child_signal is not None:
            detail += f" (signal {frame.child_signal})"
        return VerifyReport(status="error", detail=detail, **common)

    counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    for test in suite.tests:
        key = {"passed": "passed", "xfailed": "skipped", "skipped": "skipped",
               "failed": "failed", "xpassed": "failed", "error": "errors"}[test.outcome]
        counts[key] += 1
    report = VerifyReport(status="passed", tests=suite.tests,
                          collection_errors=suite.collection_errors,
                          tool_calls=sum(t.tool_calls for t in suite.tests), **counts, **common)

    def fail(status: str, detail: str) -> VerifyReport:
        return report.model_copy(update={"status": status, "detail": detail})

    if frame.child_exit != suite.exitstatus:
        return fail("error", f"pytest said exit status {suite.exitstatus} but the process "
                             f"ended with {frame.child_exit or frame.child_signal}")
    if suite.collection_errors:
        return fail("error", "the suite could not be collected")
    unknown = {t.name.split("[", 1)[0] for t in suite.tests} - declared_tests(tests)
    if unknown:
        return fail("error", f"the report names tests the suite does not declare: "
                             f"{sorted(unknown)[:5]}")
    if counts["failed"] or counts["errors"]:
        return fail("failed", "")
    if counts["passed"] == 0:
        return fail("error", "no test ran" if not suite.tests else "every test was skipped")
    if suite.exitstatus != 0:
        return fail("error", f"pytest ended with exit status {suite.exitstatus}")
    missing = declared_tests(tests) - {t.name.split("[", 1)[0] for t in suite.tests}
    if missing:
        return fail("error", f"declared tests did not run: {sorted(missing)[:5]}")
    return report


def output_files(frame: _Frame, declared: list[str], limits: Limits) -> list[OutputFile]:
    """Decode the declared output files of a frame, re-checking sizes and hashes here."""
    found: list[OutputFile] = []
    room = limits.output_files_bytes
    for name in declared:
        entry = frame.files.get(name)
        if not isinstance(entry, dict):
            found.append(OutputFile(name=name, error="the runner did not report it"))
            continue
        if "error" in entry:
            found.append(OutputFile(name=name, error=str(entry["error"])[:200]))
            continue
        try:
            data = base64.b64decode(str(entry.get("b64", "")), validate=True)
        except ValueError:
            found.append(OutputFile(name=name, error="its content was malformed"))
            continue
        digest = hashlib.sha256(data).hexdigest()
        if len(data) > room:
            found.append(OutputFile(name=name, error="it is larger than the output file limit"))
        elif digest != entry.get("sha256") or len(data) != entry.get("size"):
            found.append(OutputFile(name=name, error="its size or hash does not match"))
        else:
            room -= len(data)
            found.append(OutputFile(name=name, size=len(data), sha256=digest, content=data))
    return found


def call_result(raw: RawRun, limits: Limits, outputs: list[str] | None = None) -> CallResult:
    """Turn a run into a call result (with the declared ``outputs`` files when it worked)."""
    frame = parse_frame(raw.output)
    common: dict[str, Any] = {"duration": round(raw.duration, 4), "backend": raw.backend}
    if frame is not None:
        common.update(stdout=frame.stdout, stderr=frame.stderr)
    limit = _limit_status(raw, frame)
    if limit == "timeout":
        return CallResult(ok=False, status="timeout", error_type="Timeout",
                          error=f"the call ran past {limits.timeout:g} s", **common)
    if limit == "out_of_memory":
        return CallResult(ok=False, status="out_of_memory", error_type="MemoryLimit",
                          error=f"the call needed more than {limits.memory_mb} MB", **common)
    if limit == "infrastructure":
        return CallResult(ok=False, status="infrastructure", error_type="SandboxFault",
                          error=_outside_kill(raw), **common)
    if frame is not None and frame.error:
        return CallResult(ok=False, status="unavailable", error_type="SandboxUnavailable",
                          error=frame.error, **common)
    if frame is None or not frame.report:
        return CallResult(ok=False, status="error", error_type="SandboxError",
                          error="the call ended before it reported a result", **common)
    refused = _report_refusal(frame)
    if refused:
        return CallResult(ok=False, status="error", error_type="SandboxError", error=refused,
                          **common)
    try:
        payload = decode_json(frame.report, 1)
        if payload.get("ok") is True and frame.child_exit == 0:
            return CallResult(ok=True, status="ok", result=decode_json(payload["result_json"]),
                              files=output_files(frame, outputs or [], limits), **common)
        return CallResult(ok=False, status="error",
                          error_type=str(payload.get("error_type", "Error"))[:200],
                          error=str(payload.get("error", ""))[:4000], **common)
    except DepthError:
        return CallResult(ok=False, status="error", error_type="ResultTooDeep",
                          error=f"the result is nested deeper than {MAX_DEPTH} levels", **common)
    except (ValueError, AttributeError, KeyError, TypeError):
        return CallResult(ok=False, status="error", error_type="SandboxError",
                          error="the call's report was malformed", **common)


def unavailable_report(reason: str, backend: str) -> VerifyReport:
    """Return the report for a sandbox that could not run the suite at all."""
    return VerifyReport(status="unavailable", detail=reason, backend=backend)


def unavailable_call(reason: str, backend: str) -> CallResult:
    """Return the result for a sandbox that could not run the call at all."""
    return CallResult(ok=False, status="unavailable", error_type="SandboxUnavailable",
                      error=reason, backend=backend)


class Backend(Protocol):
    """What a backend does: run one encoded job in isolation and return what it saw."""

    name: str
    limits: Limits

    def run(self, job: bytes) -> RawRun:
        """Run one job.

        Raise SandboxUnavailable when nothing can run, SandboxFault when something outside
        the code broke this run (a retry on a fresh container may succeed).
        """

    def head_start(self) -> None:
        """Start ahead what the next run needs, in the background (nothing, if no need)."""

    def close(self) -> None:
        """Release what the backend holds (pools, daemons' connections)."""

    def abort(self) -> None:
        """Kill every run in flight now; each returns as if killed from outside."""


STOPPING = "this process is stopping, so the sandbox run was ended"
# Every sandbox of this process, for ``stop_all``: Ctrl-C must not wait for a tool's run.
_live: weakref.WeakSet[Sandbox] = weakref.WeakSet()


def stop_all() -> None:
    """End every sandbox run of this process now, and refuse new ones (it is stopping).

    A Ctrl-C otherwise waited for the running tool or suite, up to the time limit, and a
    run killed that way would have been tried again on a fresh container.
    """
    for sandbox in list(_live):
        sandbox.abort()


class Sandbox:
    """Verify and call generated code in a backend, never in this process.

    A run that infrastructure broke (see ``SandboxFault`` and ``_limit_status``) is tried once
    more on a fresh container; a second fault is reported as ``infrastructure``, which is not
    a verdict on the code.
    """

    ATTEMPTS = 2

    def __init__(self, backend: Backend):
        self.backend = backend
        self.stopping = False
        _live.add(self)

    def abort(self) -> None:
        """End the runs in flight and refuse new ones (see ``stop_all``)."""
        self.stopping = True
        self.backend.abort()

    def _run(self, job: bytes) -> RawRun:
        if self.stopping:
            raise SandboxUnavailable(STOPPING)
        raw = self.backend.run(job)
        if self.stopping:  # killed by abort: not a verdict, and not worth a retry
            raise SandboxUnavailable(STOPPING)
        return raw

    @property
    def limits(self) -> Limits:
        """Return the backend's limits."""
        return self.backend.limits

    def _attempts(self, files, job: Callable[[dict[str, bytes]], bytes],
                  judge: Callable[[RawRun], Any], fault: Callable[[str, str], Any]):
        """Run a job and judge the run; after an infrastructure fault, once more afresh.

        Input files that cannot be read are refused (status ``input``) before anything runs.

        SandboxUnavailable (nothing can run at all) passes through to the caller.
        """
        outcome = None
        try:
            inputs = read_inputs(files)
        except (OSError, ValueError) as exc:  # the input files, not the code: no retry helps
            return fault(f"input files: {exc}", "input")
        for _ in range(self.ATTEMPTS):
            try:
                outcome = judge(self._run(job(inputs)))
            except SandboxFault as exc:
                outcome = fault(str(exc), "infrastructure")
            if outcome.status != "infrastructure":
                return outcome
        return outcome

    def verify(self, implementation: str, tests: str,
               files: list[str | Path] | dict[str, bytes] | None = None,
               modules: dict[str, str] | None = None,
               conftest: str | None = None) -> VerifyReport:
        """Run ``tests`` against ``implementation`` and report each test's outcome.

        ``modules`` are extra source files (name -> code) placed beside the implementation;
        ``conftest`` is fixture code for the suite (it runs beside the tests, never with the
        implementation), e.g. the benchmark's ``call`` fixture for hidden tests.
        """
        try:
            modules = check_modules(modules)
        except ValueError as exc:
            return VerifyReport(status="error", detail=f"modules: {exc}",
                                backend=self.backend.name)
        try:
            return self._attempts(
                files, lambda inputs: build_job("verify", implementation, tests, inputs,
                                                self.limits, modules=modules,
                                                conftest=conftest),
                lambda raw: verify_report(raw, tests, self.limits),
                lambda why, status: VerifyReport(status=status, detail=why,
                                                 backend=self.backend.name))
        except SandboxUnavailable as exc:
            return unavailable_report(str(exc), self.backend.name)

    def mutate(self, implementation: str, tests: str, variants: list[str],
               files: list[str | Path] | dict[str, bytes] | None = None,
               stop_first: list[bool] | None = None, variant_timeout: float = 2.0,
               conftest: str | None = None) -> list[VerifyReport | None]:
        """Run ``tests`` against each variant of ``implementation``, all in one sandbox run.

        The suite is collected once, against the implementation; each variant then gets a
        fresh worker with its code and a fresh fork of the judge, at most ``variant_timeout``
        seconds, and pytest's ``-x`` unless ``stop_first`` says otherwise for it. Returns one
        report per variant, None for a variant the run's time limit left no room for. Raises
        SandboxError when the run as a whole failed (SandboxUnavailable: nothing could run).
        """
        if not variants:
            return []
        try:
            inputs = read_inputs(files)
        except (OSError, ValueError) as exc:
            raise SandboxError(f"input files: {exc}") from exc
        job = build_job("mutate", implementation, tests, inputs, self.limits, conftest=conftest,
                        variants=variants,
                        stop_first=list(stop_first or [True] * len(variants)),
                        variant_timeout=variant_timeout)
        # Like verify: a run broken from outside says nothing about the code, so it is tried
        # once more on a fresh container before the fault reaches the caller.
        for attempt in range(self.ATTEMPTS):
            try:
                return variant_reports(self._run(job), tests, self.limits, len(variants))
            except SandboxFault:
                if attempt == self.ATTEMPTS - 1:
                    raise
        return []

    def call(self, implementation: str, function: str, args: dict,
             files: list[str | Path] | dict[str, bytes] | None = None,
             modules: dict[str, str] | None = None,
             outputs: list[str] | None = None) -> CallResult:
        """Call ``function(**args)`` of ``implementation``; arguments and result are JSON.

        ``modules`` are extra source files placed beside the implementation; ``outputs``
        names the files the call may write in its working directory, copied out (size-capped
        and hashed) into ``CallResult.files``.
        """
        try:
            encode_json(args)
        except DepthError:
            return CallResult(ok=False, status="error", error_type="InvalidArguments",
                              error=f"arguments are nested deeper than {MAX_DEPTH} levels")
        except (TypeError, ValueError) as exc:
            return CallResult(ok=False, status="error", error_type="InvalidArguments",
                              error=f"arguments are not JSON: {exc}")
        try:
            modules, outputs = check_modules(modules), check_outputs(outputs)
        except ValueError as exc:
            return CallResult(ok=False, status="error", error_type="InputFiles",
                              error=f"modules or output files: {exc}",
                              backend=self.backend.name)
        try:
            return self._attempts(
                files, lambda inputs: build_job("call", implementation, None, inputs,
                                                self.limits, function=function, args=args,
                                                modules=modules, outputs=outputs),
                lambda raw: call_result(raw, self.limits, outputs),
                lambda why, status: CallResult(ok=False, status=status,
                                               error_type="SandboxFault", error=why,
                                               backend=self.backend.name))
        except SandboxUnavailable as exc:
            return unavailable_call(str(exc), self.backend.name)

    def head_start(self) -> None:
        """Let the backend prepare the next run while the caller loads (a one-shot command)."""
        self.backend.head_start()

    def close(self) -> None:
        """Release the backend."""
        self.backend.close()
