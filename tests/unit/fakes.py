"""Stand-ins for the tool library and the sandbox, so the graph's routing runs in memory.

They keep the real records' shapes (ToolRecord, SearchResult, VerifyReport, CallResult) and
never run generated code: a fake verification passes when the implementation says
``# passes`` (and, for a suite with a test marked ``# regression``, ``# fixed``); a fake call
returns what the implementation's ``# returns JSON`` marker says, else the result the test
put in ``results``; ``# raises`` and ``# unavailable`` make it fail.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
import weakref
from pathlib import Path

from sandbox.core import declared_tests
from sandbox.reports import CallResult, OutputFile, TestOutcome, VerifyReport
from tools_store.errors import ItemMissing, ToolExists, ToolNotFound
from tools_store.models import Candidate, Evidence, EvidenceHit, SearchResult, ToolRecord, ToolSpec
from tools_store.policies import DEFAULT_POLICY, decision_rule, overlay
from tools_store.sessions import describe_file, describe_value, older_name


class FakeSessions:
    """Session items in memory, their files in a throwaway folder (same naming rules)."""

    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="fake-sessions-"))
        weakref.finalize(self, shutil.rmtree, self.root, ignore_errors=True)
        self.rows: list[dict] = []

    def _put(self, session: str, item: dict) -> dict:
        item = {"session_id": session, "available": True, "path": None, **item}
        for old in self.rows:
            if old["session_id"] == session and old["name"] == item["name"]:
                taken = {r["name"] for r in self.rows if r["session_id"] == session}
                old["name"] = older_name(old["name"], old["turn"], taken)
        self.rows.append(item)
        return dict(item)

    def add_file(self, session, turn, name, data, source, step=None) -> dict:
        path = self.root / session / f"t{turn}" / (f"s{step}" if step else "") / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        kind, shape = describe_file(name, data)
        return self._put(session, {"name": name, "kind": kind, "shape": shape, "turn": turn,
                                   "size": len(data), "step": step, "source": source,
                                   "sha256": hashlib.sha256(data).hexdigest(),
                                   "path": str(path)})

    def add_value(self, session, turn, name, value, source, step=None) -> dict:
        kind, shape = describe_value(value)
        encoded = json.dumps(value).encode()
        return self._put(session, {"name": name, "kind": kind, "shape": shape, "turn": turn,
                                   "size": len(encoded), "step": step, "source": source,
                                   "sha256": hashlib.sha256(encoded).hexdigest(),
                                   "value": value})

    def items(self, session: str) -> list[dict]:
        found = [dict(r) for r in self.rows if r["session_id"] == session]
        for item in found:
            item["available"] = item["path"] is None or Path(item["path"]).is_file()
        return found[::-1]

    def get(self, session: str, name: str) -> dict:
        for item in self.items(session):
            if item["name"] == name:
                return item
        raise ItemMissing(f"this session has no data named {name!r}")

    def read(self, session: str, name: str) -> bytes:
        item = self.get(session, name)
        if item["path"] is None:
            return json.dumps(item["value"]).encode()
        if not item["available"]:
            raise ItemMissing(f"the file of {name!r} is no longer in the data directory")
        return Path(item["path"]).read_bytes()

    def relevant_turns(self, session, turns, query, k, floor) -> list[dict]:
        return []


class FakeWorkflows:
    """Workflows in memory; ``similarity`` is how close every one is to any request."""

    def __init__(self, similarity: float = 0.0):
        self.similarity = similarity
        self.rows: dict[int, dict] = {}
        self.all_runs: list[dict] = []

    def record(self, key, request, standalone, steps, params, returns, run, success) -> dict:
        found = next((w for w in self.rows.values() if w["key"] == key), None)
        if found is None:
            found = {"id": len(self.rows) + 1, "key": key, "request": request,
                     "standalone": standalone, "steps": steps, "params": params,
                     "returns": returns, "uses": 0, "successes": 0, "composite": None,
                     "composite_version": None, "promotion": {}}
            self.rows[found["id"]] = found
        return self.add_run(found["id"], run, success)

    def add_run(self, workflow_id, run, success) -> dict:
        self.all_runs.append({**run, "workflow_id": workflow_id, "success": success,
                              "id": len(self.all_runs) + 1})
        row = self.rows[workflow_id]
        row["uses"] += 1
        row["successes"] += int(success)
        return self.get(workflow_id)

    def get(self, workflow_id) -> dict:
        row = dict(self.rows[workflow_id])
        row["success_rate"] = row["successes"] / row["uses"] if row["uses"] else None
        return row

    def candidates(self, query: str, k: int = 3) -> list[dict]:
        return [{**self.get(i), "similarity": self.similarity, "step_similarity": 0.0,
                 "out_of_date": "",
                 "matched_text": self.rows[i]["request"]} for i in self.rows][:k]

    def runs(self, workflow_id, limit=20, successful=None) -> list[dict]:
        return [r for r in self.all_runs if r["workflow_id"] == workflow_id
                and successful in (None, r["success"])][::-1][:limit]

    def note_promotion(self, workflow_id, outcome) -> None:
        self.rows[workflow_id]["promotion"] = outcome


class FakeLibrary:
    """An in-memory library: ``similarities`` says how close each tool is to any query.

    ``evidence`` is what every search finds near the request; ``recorded`` keeps the
    evidence the graph writes; ``cache`` is a dict keyed by (name, version, arguments).
    """

    def __init__(self, similarities: dict[str, float | dict[str, float]] | None = None):
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
        self.sessions = FakeSessions()
        self.workflows = FakeWorkflows()

    def policy(self) -> dict:
        return self.stored_policy

    def thresholds(self, policy: dict | None = None) -> dict:
        return (policy or self.stored_policy)["thresholds"]["default"]

    def decision_rule(self, policy: dict | None = None) -> dict:
        return decision_rule(policy or self.stored_policy, self.model_id)

    def add_evidence(self, items: list[Evidence]) -> None:
        self.recorded += items

    def cached_result(self, record: ToolRecord, arguments: dict, hashes: list):
        key = (record.name, record.version, repr(sorted(arguments.items())))
        return (key in self.cache, self.cache.get(key))

    def cache_result(self, record: ToolRecord, arguments: dict, hashes: list, result,
                     ttl_seconds: int) -> None:
        self.cache[(record.name, record.version, repr(sorted(arguments.items())))] = result

    def add(self, spec: ToolSpec, code: str = "", status: str = "verified",
            tests: str = "") -> ToolRecord:
        record = ToolRecord(name=spec.name, version=1, status=status, spec=spec, code=code,
                            tests=tests)
        self.tools[spec.name] = record
        self.history[spec.name] = [record]
        return record

    def similarity(self, name: str, query: str) -> float:
        """Return how close a tool is: a number, or {word: number} for queries with the word."""
        known = self.similarities.get(name, 0.0)
        if isinstance(known, dict):
            return max((v for word, v in known.items() if word in query.lower()), default=0.0)
        return known

    def search(self, query: str, k: int = 5) -> SearchResult:
        candidates = [Candidate(name=r.name, version=r.version, status=r.status,
                                description=r.spec.description,
                                similarity=self.similarity(r.name, query),
                                score=self.similarity(r.name, query))
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
                 new_version: bool = False, origin: dict | None = None,
                 components: list[dict] | None = None) -> ToolRecord:
        if spec.name in self.tools and not new_version:
            raise ToolExists(f"a tool named {spec.name!r} exists")
        versions = self.history.setdefault(spec.name, [])
        record = ToolRecord(name=spec.name, version=len(versions) + 1, status=status,
                            spec=spec, code=code, tests=tests, report=report or {},
                            reason=reason, origin=origin or {}, components=components or [])
        versions.append(record)
        self.tools[spec.name] = record
        return record

    def mirror_problem(self, name: str, version: int) -> str:
        return ""

    def record_execution(self, name, version, inputs, output, success, error="",
                         duration=0.0, session_id="", request="", cached=False,
                         code_hash="", files=None) -> None:
        self.executions.append({"id": len(self.executions) + 1, "name": name,
                                "version": version, "inputs": inputs, "output": output,
                                "success": success, "error": error, "request": request,
                                "session_id": session_id, "code_hash": code_hash,
                                "marked_wrong": False, "cached": cached,
                                "files": files or []})

    def last_execution(self, session_id: str) -> dict | None:
        mine = [e for e in self.executions if e["session_id"] == session_id]
        return mine[-1] if mine else None

    def mark_wrong(self, execution_id: int, note: str = "") -> None:
        self.executions[execution_id - 1].update(marked_wrong=True, feedback=note)

    def replay_set(self, name: str, limit: int, files=None) -> tuple[list[dict], int]:
        wrong = [e["inputs"] for e in self.executions if e["marked_wrong"]]
        chosen: list[dict] = []
        for e in reversed(self.executions):
            if (e["name"] == name and e["success"] and e["inputs"] not in wrong
                    and (e["inputs"], e["files"]) not in [(c["inputs"], c["files"])
                                                          for c in chosen]):
                chosen.append(e)
        here = [c for c in chosen if c["files"] in ([], files or [])]
        return here[:limit], len(chosen) - len(here)

    def log_reflection(self, name, attempt, failing_tests, note="", session_id="",
                       kind="verify", version=None, details=None) -> None:
        self.reflection_log.append({"name": name, "attempt": attempt, "kind": kind,
                                    "version": version, "failing_tests": failing_tests,
                                    "note": note})

    def reflections(self, name: str) -> list[dict]:
        return [r for r in self.reflection_log if r["name"] == name]

    def component_modules(self, record: ToolRecord) -> dict[str, str]:
        return {f"{c['name']}.py": self.tools[c["name"]].code for c in record.components}


class FakeSandbox:
    """Verifies by a marker in the code and answers calls from a table (nothing runs).

    ``files`` says which files a function writes (name -> bytes); a function in ``failing``
    raises instead of answering.

    Mutants: every one is killed, unless the sandbox is ``weak`` and the suite lacks the
    marker ``# strong``. A run of the implementation itself among the variants (a
    strengthening) fails on the suite's last test while the suite says ``# fails-on-impl`` and
    the implementation does not say ``# fixed``.
    """

    def __init__(self, results: dict[str, object] | None = None,
                 files: dict[str, dict[str, bytes]] | None = None,
                 failing: dict[str, str] | None = None, weak: bool = False):
        self.results = results or {}
        self.files = files or {}
        self.failing = failing or {}
        self.weak = weak
        self.verified: list[str] = []
        self.calls: list[tuple[str, dict]] = []
        self.given: list[dict[str, bytes]] = []
        self.mutated: list[str] = []

    def verify(self, implementation: str, tests: str, files=None, modules=None) -> VerifyReport:
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

    def call(self, implementation: str, function: str, args: dict, files=None, modules=None,
             outputs=None) -> CallResult:
        self.calls.append((function, args))
        self.given.append(dict(files) if isinstance(files, dict) else {})
        if "# unavailable" in implementation:
            return CallResult(ok=False, status="unavailable", error="no sandbox here")
        if "# raises" in implementation:
            return CallResult(ok=False, status="error", error_type="ValueError",
                              error="bad input")
        if function in self.failing:
            return CallResult(ok=False, status="error", error_type="ValueError",
                              error=self.failing[function])
        marker = re.search(r"# returns (.+)$", implementation, re.MULTILINE)
        result = json.loads(marker.group(1)) if marker else self.results.get(function)
        written = self.files.get(function, {})
        return CallResult(ok=True, status="ok", result=result, files=[
            OutputFile(name=n, size=len(written[n]), content=written[n],
                       sha256=hashlib.sha256(written[n]).hexdigest()) if n in written
            else OutputFile(name=n, error="the tool did not write it") for n in outputs or []])

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
