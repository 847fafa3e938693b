"""Prove a synthesis task set: every task's hidden tests pass on its reference implementation.

For each task, in a fresh temporary directory holding the task's files, the hidden tests run
with pytest against the task's `reference`, through a `call` fixture that behaves as the
benchmark harness must: arguments mapped positionally, arguments and result passed through JSON,
an exception re-raised as the nearest built-in exception class. The task's `sample_call` is
checked the same way. Where a task has a `wrong_reference`, the hidden tests must reject it (at
least one fails) while it still passes at least one of them (it is plausible, not broken).

Run from the repository root with a Python that has pytest and openpyxl installed:

    python evals/check_synthesis_set.py [evals/synthesis_dev.json] [--task ID ...]
"""

import argparse
import ast
import base64
import json
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

CATEGORIES = {"text", "numbers", "dates", "files", "conversions", "parsing"}
JSON_TYPES = {"string", "integer", "number", "boolean", "array", "object"}
REQUIRED = ("id", "category", "request", "function", "signature", "sample_call", "edge_cases",
            "hidden_tests", "reference")
MIN_TESTS, MAX_TESTS = 4, 8

CONFTEST = '''
import builtins
import importlib
import json

import pytest

FUNCTION = {function!r}


def _as_builtin(exc):
    for cls in type(exc).__mro__:
        if getattr(builtins, cls.__name__, None) is cls:
            try:
                return cls(str(exc))
            except Exception:
                continue
    return RuntimeError(str(exc))


@pytest.fixture
def call():
    tool = getattr(importlib.import_module("tool"), FUNCTION)

    def invoke(*args):
        args = json.loads(json.dumps(list(args)))
        try:
            result = tool(*args)
        except Exception as exc:
            raise _as_builtin(exc) from None
        return json.loads(json.dumps(result))

    return invoke
'''

SAMPLE_TEST = '''
import json
import math

SAMPLE = json.loads({sample!r})
ORDER = {order!r}


def _close(got, want):
    if isinstance(want, bool) or isinstance(got, bool):
        return got is want
    if isinstance(want, (int, float)) and isinstance(got, (int, float)):
        return math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-6)
    if isinstance(want, list) and isinstance(got, list):
        return len(got) == len(want) and all(map(_close, got, want))
    if isinstance(want, dict) and isinstance(got, dict):
        return got.keys() == want.keys() and all(_close(got[k], want[k]) for k in want)
    return got == want


def test_sample_call(call):
    got = call(*[SAMPLE["arguments"][name] for name in ORDER])
    assert _close(got, SAMPLE["result"]), got
'''


def _test_names(source: str) -> list[str]:
    """Return the names of the module-level test functions in a pytest module."""
    tree = ast.parse(source)
    return [node.name for node in tree.body
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test")]


def _parameters(source: str, function: str) -> list[str] | None:
    """Return the parameter names of `function` defined at module level, or None."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef) and node.name == function:
            return [arg.arg for arg in node.args.args]
    return None


def validate(task: dict) -> list[str]:
    """List what is malformed in one task (empty when the task is well formed)."""
    problems = [f"missing {key!r}" for key in REQUIRED if key not in task]
    if problems:
        return problems
    if task["category"] not in CATEGORIES:
        problems.append(f"unknown category {task['category']!r}")
    params = task["signature"].get("parameters", [])
    names = [p.get("name") for p in params]
    if any(p.get("type") not in JSON_TYPES for p in params) or \
            task["signature"].get("returns") not in JSON_TYPES:
        problems.append("signature types must be JSON schema types")
    if list(task["sample_call"].get("arguments", {})) != names:
        problems.append("sample_call arguments must name the signature's parameters in order")
    if "result" not in task["sample_call"]:
        problems.append("sample_call has no result")
    try:
        count = len(_test_names(task["hidden_tests"]))
    except SyntaxError as exc:
        return problems + [f"hidden tests do not parse: {exc}"]
    if not MIN_TESTS <= count <= MAX_TESTS:
        problems.append(f"{count} hidden tests; expected {MIN_TESTS} to {MAX_TESTS}")
    if task["function"] in task["hidden_tests"]:
        problems.append("hidden tests name the function")
    for key in ("reference", "wrong_reference"):
        if key in task and _parameters(task[key], task["function"]) != names:
            problems.append(f"{key} does not define {task['function']}({', '.join(names)})")
    for name, content in task.get("files", {}).items():
        if Path(name).name != name or not (isinstance(content, str) or (
                isinstance(content, dict) and set(content) == {"base64"})):
            problems.append(f"file {name!r}: a plain name with text or {{'base64': ...}}")
    if not task["edge_cases"]:
        problems.append("no edge_cases noted")
    return problems


def _write_files(directory: Path, files: dict) -> None:
    """Write a task's input files byte for byte (text as UTF-8, base64 decoded)."""
    for name, content in files.items():
        data = (base64.b64decode(content["base64"]) if isinstance(content, dict)
                else content.encode("utf-8"))
        (directory / name).write_bytes(data)


def run_suite(task: dict, implementation: str) -> dict[str, bool]:
    """Run the hidden tests and the sample call on an implementation; map test name to passed."""
    order = [p["name"] for p in task["signature"]["parameters"]]
    with tempfile.TemporaryDirectory(prefix="synthesis-check-") as tmp:
        directory = Path(tmp)
        _write_files(directory, task.get("files", {}))
        (directory / "tool.py").write_text(implementation, encoding="utf-8")
        (directory / "conftest.py").write_text(CONFTEST.format(function=task["function"]),
                                               encoding="utf-8")
        (directory / "test_hidden.py").write_text(task["hidden_tests"], encoding="utf-8")
        (directory / "test_sample.py").write_text(
            SAMPLE_TEST.format(sample=json.dumps(task["sample_call"]), order=order),
            encoding="utf-8")
        env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONDONTWRITEBYTECODE": "1"}
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "--junitxml", "report.xml", "test_hidden.py", "test_sample.py"],
                       cwd=directory, env=env, capture_output=True, timeout=120)
        report = directory / "report.xml"
        if not report.exists():
            return {}
        outcome = {}
        for case in ET.parse(report).iter("testcase"):
            failed = any(child.tag in ("failure", "error") for child in case)
            outcome[case.get("classname", "").split(".")[-1] + "::" + case.get("name")] = \
                not failed
        return outcome


def check(task: dict) -> tuple[bool, str]:
    """Prove one task; return whether it holds and a one-line account."""
    problems = validate(task)
    if problems:
        return False, f"{task.get('id')}: " + "; ".join(problems)
    expected = _test_names(task["hidden_tests"])
    hidden = [f"test_hidden::{name}" for name in expected]
    ref = run_suite(task, task["reference"])
    failing = [name for name in hidden if not ref.get(name)]
    ok = not failing and ref.get("test_sample::test_sample_call", False)
    line = f"{task['id']}: reference passes {len(hidden) - len(failing)}/{len(hidden)}"
    if failing:
        line += f" (fails {', '.join(n.split('::')[1] for n in failing)})"
    if not ref.get("test_sample::test_sample_call"):
        line += ", sample call FAILS"
    if "wrong_reference" in task:
        wrong = run_suite(task, task["wrong_reference"])
        caught = [name for name in hidden if not wrong.get(name)]
        ok = ok and 0 < len(caught) < len(hidden)
        sample = "passes" if wrong.get("test_sample::test_sample_call") else "fails"
        line += (f"; wrong reference fails {len(caught)}/{len(hidden)}"
                 f" ({', '.join(n.split('::')[1] for n in caught)}), sample call {sample}")
    return ok, ("ok   " if ok else "FAIL ") + line


def main(argv: list[str] | None = None) -> int:
    """Check the task set named on the command line and print one line per task."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tasks_file", nargs="?", default="evals/synthesis_dev.json")
    parser.add_argument("--task", action="append", help="check only this task id (repeatable)")
    args = parser.parse_args(argv)
    data = json.loads(Path(args.tasks_file).read_text(encoding="utf-8"))
    tasks = data["tasks"]
    ids = [task.get("id") for task in tasks]
    if len(ids) != len(set(ids)):
        print("FAIL duplicate task ids")
        return 1
    if args.task:
        tasks = [task for task in tasks if task["id"] in args.task]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(check, tasks))
    for _, line in results:
        print(line)
    failed = sum(not ok for ok, _ in results)
    wrong = sum("wrong_reference" in task for task in tasks)
    print(f"{len(tasks) - failed}/{len(tasks)} tasks proved; {wrong} with a wrong reference")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
