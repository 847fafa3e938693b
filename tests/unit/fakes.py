"""Stand-ins for the tool library and the sandbox, so the graph's routing runs in memory.

They keep the real records' shapes (ToolRecord, SearchResult, VerifyReport, CallResult) and
never run generated code: a fake verification passes when the implementation says
``# passes``, and a fake call returns the result the test put in ``results``.
"""

from __future__ import annotations

from sandbox.reports import CallResult, TestOutcome, VerifyReport
from tools_store.errors import ToolExists, ToolNotFound
from tools_store.models import Candidate, Evidence, EvidenceHit, SearchResult, ToolRecord, ToolSpec
from tools_store.policies import DEFAULT_POLICY, decision_rule, overlay


class FakeLibrary:
    """An in-memory library: ``similarities`` says how close each tool is to any query.

    ``evidence`` is what every search finds near the request; ``recorded`` keeps the
    evidence the graph writes; ``cache`` is a dict keyed by (name, version, arguments).
    """

    def __init__(self, similarities: dict[str, float] | None = None):
        self.tools: dict[str, ToolRecord] = {}
        self.similarities = similarities or {}
        self.executions: list[dict] = []
        self.reflections: list[dict] = []
        self.stored_policy = overlay(DEFAULT_POLICY, {})
        self.model_id = "fake"
        self.evidence: list[EvidenceHit] = []
        self.recorded: list[Evidence] = []
        self.cache: dict[tuple, object] = {}

    def policy(self) -> dict:
        return self.stored_policy

    def thresholds(self, policy: dict | None = None) -> dict:
        return (policy or self.stored_policy)["thresholds"]["default"]

    def decision_rule(self, policy: dict | None = None) -> dict:
        return decision_rule(policy or self.stored_policy, self.model_id)

    def add_evidence(self, items: list[Evidence]) -> None:
        self.recorded += items

    def cached_result(self, record: ToolRecord, arguments: dict, files: list[str]):
        key = (record.name, record.version, repr(sorted(arguments.items())))
        return (key in self.cache, self.cache.get(key))

    def cache_result(self, record: ToolRecord, arguments: dict, files: list[str], result,
                     ttl_seconds: int) -> None:
        self.cache[(record.name, record.version, repr(sorted(arguments.items())))] = result

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
                            thresholds=self.thresholds(), evidence=self.evidence,
                            rule=self.decision_rule())

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

    def mirror_problem(self, name: str, version: int) -> str:
        return ""

    def record_execution(self, name, version, inputs, output, success, error="",
                         duration=0.0, session_id="", request="", cached=False) -> None:
        self.executions.append({"name": name, "inputs": inputs, "output": output,
                                "success": success, "request": request, "cached": cached})

    def log_reflection(self, name, attempt, failing_tests, note="", session_id="") -> None:
        self.reflections.append({"name": name, "attempt": attempt})


class FakeSandbox:
    """Verifies by a marker in the code and answers calls from a table (nothing runs)."""

    def __init__(self, results: dict[str, object] | None = None):
        self.results = results or {}
        self.verified: list[str] = []
        self.calls: list[tuple[str, dict]] = []

    def verify(self, implementation: str, tests: str, files=None) -> VerifyReport:
        self.verified.append(implementation)
        if "# infra" in implementation:
            return VerifyReport(status="infrastructure",
                                detail="the sandbox was stopped from outside")
        if "# passes" in implementation:
            return VerifyReport(status="passed", passed=1, tool_calls=1,
                                tests=[TestOutcome(name="test_it", outcome="passed",
                                                   tool_calls=1)])
        return VerifyReport(status="failed", failed=1, tests=[
            TestOutcome(name="test_it", outcome="failed", message="assert 1 == 2")])

    def call(self, implementation: str, function: str, args: dict, files=None) -> CallResult:
        self.calls.append((function, args))
        return CallResult(ok=True, status="ok", result=self.results.get(function))
