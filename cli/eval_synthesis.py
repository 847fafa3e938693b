"""`sea eval synthesis TASKS.json`: how often a "verified" tool is right, on hidden tests.

Each task is a user's request plus hidden tests the agent never sees, written against a
``call(*args)`` fixture. For each task the whole graph runs on a fresh library (a throwaway
schema), from the request alone; then the hidden tests run in the sandbox against the tool
it registered, through a conftest this harness ships beside them: ``call`` maps the
arguments, given in the task's signature order, onto the tool's parameters (by name when the
tool's names are the task's, else by position), and they cross as JSON through the judge's
proxy, so results arrive JSON-decoded and an exception comes back as its nearest built-in
class. The task's sample call runs as one more test, counted apart.

With the scripted model, a task whose request the script has no reply for is reported as
"no recorded reply" and left out of every rate: nothing was asked of a model, so nothing
failed. ``--tasks id,id`` picks tasks.
"""

from __future__ import annotations

import statistics
import tempfile
import time
import uuid
from pathlib import Path

from sandbox import SandboxError
from sandbox.core import declared_tests
from sandbox.reports import NOT_A_VERDICT

from .ask import pool_size
from .output import emit, read_json

SAMPLE_TEST = "test_sample_call_of_the_task"
NO_REPLY = "no recorded reply"
CALL_FIXTURE = '''"""The synthesis benchmark's call fixture, shipped by the harness."""

import pytest

from tool import {name} as _tool

TASK_ORDER = {task_order!r}
TOOL_ORDER = {tool_order!r}


@pytest.fixture
def call():
    """Call the tool with the task's arguments, in the task's signature order."""
    def invoke(*args):
        if len(args) == len(TASK_ORDER) and sorted(TASK_ORDER) == sorted(TOOL_ORDER):
            return _tool(**dict(zip(TASK_ORDER, args)))
        return _tool(*args)

    return invoke
'''
SAMPLE_CALL = '''

def {test}(call):
    import math

    def close(got, want):
        if isinstance(want, bool) or isinstance(got, bool):
            return got is want
        if isinstance(want, (int, float)) and isinstance(got, (int, float)):
            return math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-6)
        if isinstance(want, list) and isinstance(got, list):
            return len(got) == len(want) and all(map(close, got, want))
        if isinstance(want, dict) and isinstance(got, dict):
            return got.keys() == want.keys() and all(close(got[k], want[k]) for k in want)
        return got == want

    got = call(*{arguments!r})
    assert close(got, {result!r}), got
'''


def load_tasks(path: str | Path, only: list[str] | None = None) -> dict:
    """Read a task set and check what the harness relies on; keep the ``only`` tasks."""
    data = read_json(path)
    tasks = data.get("tasks") if isinstance(data, dict) else None
    if not isinstance(tasks, list) or not tasks:
        raise ValueError(f"{path}: expected an object with a 'tasks' list")
    for number, task in enumerate(tasks, 1):
        if not isinstance(task, dict):
            raise ValueError(f"{path}: task {number} is not an object")
        missing = [key for key in ("id", "request", "signature", "hidden_tests", "sample_call")
                   if key not in task]
        if missing:
            raise ValueError(f"{path}: task {task.get('id', number)!r} lacks "
                             f"{', '.join(missing)}")
    if only:
        unknown = set(only) - {task["id"] for task in tasks}
        if unknown:
            raise ValueError(f"{path}: no task {', '.join(sorted(unknown))}")
        tasks = [task for task in tasks if task["id"] in only]
    return {**data, "tasks": tasks}


def write_files(folder: Path, files: dict) -> list[str]:
    """Write a task's input files exactly as given (text as UTF-8, base64 as bytes)."""
    import base64

    paths = []
    for name, content in files.items():
        path = folder / name
        path.write_bytes(base64.b64decode(content["base64"]) if isinstance(content, dict)
                         else content.encode("utf-8"))
        paths.append(str(path))
    return paths


def hidden_suite(task: dict, spec) -> tuple[str, str]:
    """Return the hidden tests (with the sample call appended) and the conftest they need."""
    order = [p["name"] for p in task["signature"]["parameters"]]
    sample = task["sample_call"]
    tests = task["hidden_tests"] + SAMPLE_CALL.format(
        test=SAMPLE_TEST, arguments=[sample["arguments"][name] for name in order],
        result=sample["result"])
    conftest = CALL_FIXTURE.format(name=spec.name, task_order=order,
                                   tool_order=[p.name for p in spec.parameters])
    return tests, conftest


def run_hidden(sandbox, record, task: dict, files: list[str]) -> dict:
    """Run the hidden tests against a registered tool in the sandbox; count what passed."""
    tests, conftest = hidden_suite(task, record.spec)
    report = sandbox.verify(record.code, tests, files=files, conftest=conftest)
    if report.status in NOT_A_VERDICT:  # no verdict on the tool: it must not count as failing
        raise SandboxError(f"the hidden tests of {task['id']} could not run: {report.detail}")
    hidden = [t for t in report.tests if t.name != SAMPLE_TEST]
    passed = sum(t.outcome == "passed" for t in hidden)
    return {"hidden_passed": passed,
            "hidden_all_passed": passed == len(declared_tests(task["hidden_tests"])),
            "sample_call_ok": any(t.name == SAMPLE_TEST and t.outcome == "passed"
                                  for t in report.tests),
            "hidden_failures": [t.name for t in hidden if t.outcome != "passed"]
            or ([report.detail] if report.status not in ("passed", "failed") else [])}


def _has_reply(model_name: str, request: str) -> bool:
    """Tell whether a scripted model recorded a plan for ``request`` (any other model has)."""
    from nodes.kit.model import is_scripted, load_chat_model
    from nodes.kit.scripted import normalize

    if not is_scripted(model_name):
        return True
    model = load_chat_model(model_name)
    matches = any(e["step"] == "plan" and "match" in e for e in model.entries)
    return matches or normalize(request) in {normalize(r) for r in model.known_requests()}


def run_task(task: dict, model: str, gate: bool, backend: str | None, pool: int) -> dict:
    """Run one task end to end on a fresh library and measure the tool it produced."""
    from graph.runner import Agent
    from nodes.kit import services

    row: dict = {"id": task["id"], "category": task.get("category", ""), "outcome": "",
                 "hidden_total": len(declared_tests(task["hidden_tests"]))}
    if not _has_reply(model, task["request"]):
        return {**row, "outcome": NO_REPLY}
    schema = f"sea_syn_{uuid.uuid4().hex[:10]}"
    with tempfile.TemporaryDirectory(prefix="sea-synthesis-") as tmp:
        files = write_files(Path(tmp), task.get("files", {}))
        library = services.library(schema)
        agent = None
        try:
            if not gate:
                library.set_policy({"min_mutation_score": 0.0}, "benchmark without the gate")
            agent = Agent(model=model, sandbox_backend=backend, sandbox_pool=pool,
                          library_schema=schema, input_files=files)
            started = time.perf_counter()
            turn = agent.ask(task["request"])
            row["seconds"] = round(time.perf_counter() - started, 3)
            row.update(_turn_figures(turn))
            tool = turn.get("tool") or {}
            if turn.get("error") and not tool:
                row["outcome"] = NO_REPLY if NO_REPLY in turn["error"] else "error"
                row["error"] = turn["error"]
                return row
            record = library.get(tool["name"], tool["version"])
            row.update(outcome=record.status, tool=record.name,
                       mutation_score=(record.report.get("mutation") or {}).get("score"))
            sandbox = services.sandbox(agent.context.sandbox_backend, pool)
            row.update(run_hidden(sandbox, record, task, files))
        finally:
            if agent is not None:
                agent.close()
            library.drop()
            services.forget_library(schema)
    return row


def _turn_figures(turn: dict) -> dict:
    route = turn.get("route", [])
    usage = turn.get("usage") or {}
    return {"reflections": route.count("reflect"), "strengthened": route.count("strengthen"),
            "tokens": sum(counts.get("total_tokens", 0) for counts in usage.values()),
            "model_calls": sum(counts.get("calls", 0) for counts in usage.values())}


def summarize(rows: list[dict]) -> dict:
    """Compute the benchmark's figures from the per-task rows."""
    ran = [r for r in rows if r["outcome"] != NO_REPLY]
    tools = [r for r in ran if r["outcome"] in ("verified", "experimental")]
    verified = [r for r in tools if r["outcome"] == "verified"]
    scores = [r["mutation_score"] for r in tools if r.get("mutation_score") is not None]

    def share(part: float, whole: float) -> float | None:
        return round(part / whole, 4) if whole else None

    return {
        "tasks": len(rows), "ran": len(ran), NO_REPLY.replace(" ", "_"): len(rows) - len(ran),
        "synthesized": len(tools), "verified": len(verified),
        "verified_first_try": sum(r["reflections"] == 0 for r in verified),
        "verified_after_reflection": sum(r["reflections"] > 0 for r in verified),
        "experimental": len(tools) - len(verified), "errors": len(ran) - len(tools),
        "verified_rate": share(len(verified), len(ran)),
        "precision_of_verified": share(sum(r["hidden_all_passed"] for r in verified),
                                       len(verified)),
        # Over every task that ran: a task that ended without a tool passed none of its tests.
        "hidden_test_pass_rate": share(sum(r.get("hidden_passed", 0) for r in ran),
                                       sum(r["hidden_total"] for r in ran)),
        "mutation_score_mean": round(statistics.mean(scores), 4) if scores else None,
        "tokens_per_tool": share(sum(r.get("tokens", 0) for r in ran), len(tools)),
        "seconds_per_task": share(sum(r.get("seconds", 0) for r in ran), len(ran)),
        "reflections_used": sum(r.get("reflections", 0) for r in ran),
        "strengthening_rounds": sum(r.get("strengthened", 0) for r in ran),
    }


def evaluate(path: str | Path, model: str | None = None, gate: bool = True,
             only: list[str] | None = None, backend: str | None = None,
             pool: int = 0) -> dict:
    """Run every task of a set and return the per-task rows and the summary."""
    from nodes.kit.model import resolve_model_name

    data = load_tasks(path, only)
    model_name = resolve_model_name(model)
    rows = [run_task(task, model_name, gate, backend, pool) for task in data["tasks"]]
    return {"set": data.get("name", Path(path).stem), "model": model_name,
            "mutation_gate": gate, "summary": summarize(rows), "tasks": rows}


def markdown(result: dict) -> str:
    """Render a result as a markdown report with a per-task table."""
    summary = result["summary"]
    gate = "on" if result["mutation_gate"] else "off"
    lines = [f"# Synthesis benchmark: {result['set']}", "",
             f"Model `{result['model']}`, mutation gate {gate}.",
             f"Tasks with no recorded reply ({summary[NO_REPLY.replace(' ', '_')]}) are left "
             "out of every rate: they are not failures of the agent.", "",
             "| figure | value |", "| --- | --- |"]
    lines += [f"| {key} | {value} |" for key, value in summary.items()]
    lines += ["", "| task | outcome | reflections | strengthened | mutation score | hidden "
              "tests | sample call | tokens | seconds |", "| --- " * 9 + "|"]
    for row in result["tasks"]:
        hidden = (f"{row['hidden_passed']}/{row['hidden_total']}" if "hidden_passed" in row
                  else "")
        lines.append(f"| {row['id']} | {row['outcome']} | {row.get('reflections', '')} | "
                     f"{row.get('strengthened', '')} | {row.get('mutation_score', '')} | "
                     f"{hidden} | {row.get('sample_call_ok', '')} | {row.get('tokens', '')} | "
                     f"{row.get('seconds', '')} |")
    return "\n".join(lines) + "\n"


def cmd_synthesis(args) -> int:
    """Run the synthesis benchmark and print (and optionally write) its figures."""
    only = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
    result = evaluate(args.file, args.model, not args.no_mutation_gate, only, args.backend,
                      args.pool)
    if args.report:
        Path(args.report).write_text(markdown(result), encoding="utf-8")
    emit(result if args.json else result["summary"], args.json)
    return 0


def add_parser(esub) -> None:
    """Add `sea eval synthesis` to the eval subcommands."""
    p = esub.add_parser("synthesis", help="tool creation measured on hidden tests")
    p.add_argument("file", help="a task set, e.g. evals/synthesis_dev.json")
    p.add_argument("--model", help="model name, or scripted:FILE (default: SEA_MODEL)")
    p.add_argument("--backend", choices=["docker", "bwrap"])
    p.add_argument("--pool", type=pool_size, default=2, help="warm containers (Docker)")
    p.add_argument("--tasks", help="only these task ids, comma-separated")
    p.add_argument("--no-mutation-gate", action="store_true",
                   help="measure mutation scores but gate nothing (min_mutation_score 0)")
    p.add_argument("--report", help="also write a markdown report with a per-task table")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_synthesis)
