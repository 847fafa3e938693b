"""Stand-ins for the tool library and the sandbox, so the graph's routing runs in memory.

They keep the real records' shapes (ToolRecord, SearchResult, VerifyReport, CallResult) and
never run generated code: a fake verification passes when the implementation says
``# passes`` (and, for a suite with a test marked ``# regression``, ``# fixed``); a fake call
returns what the implementation's ``# returns JSON`` marker says, else the result the test
put in ``results``; ``# raises`` and ``# unavailable`` make it fail.
"""

from __future__ import annotations

import json
import re

from sandbox.core import declared_tests
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
        self.reflection_log: list[dict] = []
        self.history: dict[str, list[ToolRecord]] = {}
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

    def add(self, spec: ToolSpec, code: str = "", status: str = "verified",
            tests: str = "") -> ToolRecord:
        record = ToolRecord(name=spec.name, version=1, status=status, spec=spec, code=code,
                            tests=tests)
        self.tools[spec.name] = record
        self.history[spec.name] = [record]
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
        if version is None:
            return self.tools[name]
        return self.history[name][version - 1]

    def name_taken(self, name: str) -> bool:
        return name in self.tools

    def register(self, spec: ToolSpec, code: str, tests: str, report: dict | None = None,
                 status: str = "verified", reason: str = "created",
                 new_version: bool = False, origin: dict | None = None) -> ToolRecord:
        if spec.name in self.tools and not new_version:
            raise ToolExists(f"a tool named {spec.name!r} exists")
        versions = self.history.setdefault(spec.name, [])
        record = ToolRecord(name=spec.name, version=len(versions) + 1, status=status,
                            spec=spec, code=code, tests=tests, report=report or {},
                            reason=reason, origin=origin or {})
        versions.append(record)
        self.tools[spec.name] = record
        return record

    def mirror_problem(self, name: str, version: int) -> str:
        return ""

    def record_execution(self, name, version, inputs, output, success, error="",
                         duration=0.0, session_id="", request="", cached=False,
                         code_hash="") -> None:
        self.executions.append({"id": len(self.executions) + 1, "name": name,
                                "version": version, "inputs": inputs, "output": output,
                                "success": success, "error": error, "request": request,
                                "session_id": session_id, "code_hash": code_hash,
                                "marked_wrong": False, "cached": cached})

    def last_execution(self, session_id: str) -> dict | None:
        mine = [e for e in self.executions if e["session_id"] == session_id]
        return mine[-1] if mine else None

    def mark_wrong(self, execution_id: int, note: str = "") -> None:
        self.executions[execution_id - 1].update(marked_wrong=True, feedback=note)

    def replay_set(self, name: str, limit: int) -> list[dict]:
        wrong = [e["inputs"] for e in self.executions if e["marked_wrong"]]
        chosen: list[dict] = []
        for e in reversed(self.executions):
            if (e["name"] == name and e["success"] and e["inputs"] not in wrong
                    and e["inputs"] not in [c["inputs"] for c in chosen]):
                chosen.append(e)
        return chosen[:limit]

    def log_reflection(self, name, attempt, failing_tests, note="", session_id="",
                       kind="verify", version=None, details=None) -> None:
        self.reflection_log.append({"name": name, "attempt": attempt, "kind": kind,
                                    "version": version, "failing_tests": failing_tests,
                                    "note": note})

    def reflections(self, name: str) -> list[dict]:
        return [r for r in self.reflection_log if r["name"] == name]


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
        if "# infra" in implementation:
            return VerifyReport(status="infrastructure",
                                detail="the sandbox was stopped from outside")
        names = sorted(declared_tests(tests)) or ["test_it"]
        if "# passes" in implementation and ("# regression" not in tests
                                             or "# fixed" in implementation):
            return VerifyReport(status="passed", passed=len(names), tool_calls=len(names),
                                tests=[TestOutcome(name=n, outcome="passed", tool_calls=1)
                                       for n in names])
        return VerifyReport(status="failed", failed=len(names), tests=[
            TestOutcome(name=n, outcome="failed", message="assert 1 == 2") for n in names])

    def call(self, implementation: str, function: str, args: dict, files=None) -> CallResult:
        self.calls.append((function, args))
        if "# unavailable" in implementation:
            return CallResult(ok=False, status="unavailable", error="no sandbox here")
        if "# raises" in implementation:
            return CallResult(ok=False, status="error", error_type="ValueError",
                              error="bad input")
        marker = re.search(r"# returns (.+)$", implementation, re.MULTILINE)
        if marker:
            return CallResult(ok=True, status="ok", result=json.loads(marker.group(1)))
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
