"""Stand-ins for the tool library and the sandbox, so the graph's routing runs in memory.

They keep the real records' shapes (ToolRecord, SearchResult, VerifyReport, CallResult) and
never run generated code: a fake verification passes when the implementation says
``# passes``, and a fake call returns the result the test put in ``results``.
"""

from __future__ import annotations

from sandbox.core import declared_tests
from sandbox.reports import CallResult, TestOutcome, VerifyReport
from tools_store.errors import ToolExists, ToolNotFound
from tools_store.models import Candidate, SearchResult, ToolRecord, ToolSpec
from tools_store.policies import DEFAULT_POLICY, overlay


class FakeLibrary:
    """An in-memory library: ``similarities`` says how close each tool is to any query."""

    def __init__(self, similarities: dict[str, float] | None = None):
        self.tools: dict[str, ToolRecord] = {}
        self.similarities = similarities or {}
        self.executions: list[dict] = []
        self.reflections: list[dict] = []
        self.stored_policy = overlay(DEFAULT_POLICY, {})
        self.model_id = "fake"

    def policy(self) -> dict:
        return self.stored_policy

    def thresholds(self, policy: dict | None = None) -> dict:
        return (policy or self.stored_policy)["thresholds"]["default"]

    def add(self, spec: ToolSpec, code: str = "", status: str = "verified") -> ToolRecord:
        record = ToolRecord(name=spec.name, version=1, status=status, spec=spec, code=code,
                            tests="")
        self.tools[spec.name] = record
        return record

    def search(self, query: str, k: int = 5) -> SearchResult:
        candidates = [Candidate(name=r.name, version=r.version, status=r.status,
                                description=r.spec.description,
                                similarity=self.similarities.get(r.name, 0.0),
                                score=self.similarities.get(r.name, 0.0))
                      for r in self.tools.values()]
        candidates.sort(key=lambda c: -c.score)
        return SearchResult(query=query, candidates=candidates[:k],
                            thresholds=self.thresholds())

    def get(self, name: str, version: int | None = None) -> ToolRecord:
        if name not in self.tools:
            raise ToolNotFound(f"no tool {name!r}")
        return self.tools[name]

    def name_taken(self, name: str) -> bool:
        return name in self.tools

    def register(self, spec: ToolSpec, code: str, tests: str, report: dict | None = None,
                 status: str = "verified", reason: str = "created",
                 new_version: bool = False) -> ToolRecord:
        if spec.name in self.tools and not new_version:
            raise ToolExists(f"a tool named {spec.name!r} exists")
        record = ToolRecord(name=spec.name, version=1, status=status, spec=spec, code=code,
                            tests=tests, report=report or {}, reason=reason)
        self.tools[spec.name] = record
        return record

    def record_execution(self, name, version, inputs, output, success, error="",
                         duration=0.0, session_id="", request="") -> None:
        self.executions.append({"name": name, "inputs": inputs, "output": output,
                                "success": success, "request": request})

    def log_reflection(self, name, attempt, failing_tests, note="", session_id="") -> None:
        self.reflections.append({"name": name, "attempt": attempt})


class FakeSandbox:
    """Verifies by a marker in the code and answers calls from a table (nothing runs).

    Mutants: every one is killed, unless the sandbox is ``weak`` and the suite lacks the
    marker ``# strong``. A run of the implementation itself among the variants (a
    strengthening) fails on the suite's last test while the suite says ``# fails-on-impl`` and
    the implementation does not say ``# fixed``.
    """

    def __init__(self, results: dict[str, object] | None = None, weak: bool = False):
        self.results = results or {}
        self.weak = weak
        self.verified: list[str] = []
        self.calls: list[tuple[str, dict]] = []
        self.mutated: list[str] = []

    def verify(self, implementation: str, tests: str, files=None) -> VerifyReport:
        self.verified.append(implementation)
        if "# passes" in implementation:
            return VerifyReport(status="passed", passed=1,
                                tests=[TestOutcome(name="test_it", outcome="passed")])
        return VerifyReport(status="failed", failed=1, tests=[
            TestOutcome(name="test_it", outcome="failed", message="assert 1 == 2")])

    def call(self, implementation: str, function: str, args: dict, files=None) -> CallResult:
        self.calls.append((function, args))
        return CallResult(ok=True, status="ok", result=self.results.get(function))

    def mutate(self, implementation: str, tests: str, variants: list[str], files=None,
               stop_first=None, variant_timeout: float = 2.0, conftest=None
               ) -> list[VerifyReport]:
        self.mutated.append(tests)
        last = sorted(declared_tests(tests))[-1]
        passed = VerifyReport(status="passed", passed=1,
                              tests=[TestOutcome(name=last, outcome="passed")])
        failed = VerifyReport(status="failed", failed=1, tests=[
            TestOutcome(name=last, outcome="failed", message="assert 1 == 2")])
        reports = []
        for code in variants:
            if code == implementation:
                wrong = "# fails-on-impl" in tests and "# fixed" not in implementation
                reports.append(failed if wrong else passed)
            else:
                reports.append(passed if self.weak and "# strong" not in tests else failed)
        return reports
