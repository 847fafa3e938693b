"""Scripted-model files for the app's tests: the demo plus a slow tool, a CSV tool and a tool
whose text carries Markdown that would fetch or link remote content if it were rendered."""

from __future__ import annotations

import json
from pathlib import Path

from nodes.kit.scripted import DEMO_SCRIPT

SLOW_REQUEST = "slowly echo hello"
SLOW_SECONDS = 15
CSV_REQUEST = "total the columns of sales.csv"
CSV_TEXT = "region,q1,q2\nnorth,10,20\nsouth,5,7\n"
CSV_TOTALS = "column,total\nq1,15\nq2,27"

SLOW_CODE = '''import time


def slow_echo(text: str, seconds: float) -> str:
    """Return the text after waiting some seconds."""
    time.sleep(seconds)
    return text
'''
SLOW_TESTS = '''from tool import slow_echo


def test_echo():
    assert slow_echo("a", 0) == "a"


def test_empty():
    assert slow_echo("", 0) == ""


def test_waits():
    assert slow_echo("b", 0.01) == "b"
'''
CSV_CODE = '''import csv


def column_totals(filename: str) -> str:
    """Return CSV text with the total of each numeric column of a CSV file."""
    with open(filename, newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    lines = ["column,total"]
    for column in reader.fieldnames or []:
        try:
            total = sum(float(row[column]) for row in rows)
        except ValueError:
            continue
        lines.append(f"{column},{total:g}")
    return "\\n".join(lines)
'''
# The implementation runs apart from its judge, under another user: a file a test writes is
# out of its reach, so the tests read the turn's input file, which both sides get a copy of.
CSV_TESTS = '''from tool import column_totals


def test_totals():
    assert column_totals("sales.csv") == "column,total\\nq1,15\\nq2,27"


def test_skips_text():
    assert "region" not in column_totals("sales.csv")


def test_one_line_per_numeric_column():
    assert len(column_totals("sales.csv").splitlines()) == 3
'''
CARD_TESTS = '''from tool import greeting_card


def test_text():
    assert isinstance(greeting_card(), str)


def test_hello():
    assert greeting_card().startswith("Hello")


def test_link():
    assert "[sign in](" in greeting_card()
'''


def _tool(request: str, standalone: str, name: str, description: str, parameters: list,
          returns: str, tests: str, code: str, arguments: dict, answer: str) -> list[dict]:
    key = {"request": standalone}
    return [
        {"step": "plan", "request": request,
         "reply": {"kind": "single", "standalone_request": standalone, "steps": []}},
        {"step": "spec", **key, "reply": {
            "name": name, "description": description, "parameters": parameters,
            "returns": {"type": returns, "description": "the result"},
            "docstring": description, "examples": [standalone], "edge_cases": []}},
        {"step": "tests", **key, "reply": {"tests": tests}},
        {"step": "impl", **key, "reply": {"code": code}},
        {"step": "args", **key, "reply": {"arguments": arguments}},
        {"step": "answer", **key, "reply": {"answer": answer}},
    ]


def card_request(beacon: str) -> str:
    """Return a request that carries a remote image in Markdown."""
    return f"show the greeting card ![u]({beacon}/user.png)"


BEACON = "http://127.0.0.1:9"  # nothing listens there; the browser test runs a listener


def write_script(path: Path, beacon: str = BEACON) -> Path:
    """Write the demo's replies and the test tools' to ``path``; remote text names ``beacon``."""
    replies = json.loads(DEMO_SCRIPT.read_text())["replies"]
    replies += _tool(SLOW_REQUEST, "echo 'hello' slowly", "slow_echo",
                     "Echo a text back after waiting a number of seconds.",
                     [{"name": "text", "type": "string", "description": "text to echo"},
                      {"name": "seconds", "type": "number", "description": "seconds to wait"}],
                     "string", SLOW_TESTS, SLOW_CODE, {"text": "hello",
                                                        "seconds": SLOW_SECONDS},
                     "It said: hello.")
    replies += _tool(CSV_REQUEST, "total each numeric column of the CSV file sales.csv",
                     "column_totals", "Total each numeric column of a CSV file, as CSV text.",
                     [{"name": "filename", "type": "string", "description": "the CSV file"}],
                     "string", CSV_TESTS, CSV_CODE, {"filename": "sales.csv"},
                     "The totals of sales.csv are in the table.")
    card_code = ("def greeting_card() -> str:\n    \"\"\"Return a greeting card.\"\"\"\n"
                 f"    return 'Hello! ![x]({beacon}/beacon.png) [sign in]({beacon}/signin)'\n")
    replies += _tool(card_request(beacon), "show the greeting card", "greeting_card",
                     "Return the text of a greeting card.", [], "string", CARD_TESTS,
                     card_code, {}, f"Here is your card ![a]({beacon}/answer.png)")
    path.write_text(json.dumps({"replies": replies}))
    return path
