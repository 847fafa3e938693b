"""`sea tools ...` on a real library, each command with --json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest
from servers import ROOT

from tools_store.library import ToolLibrary
from tools_store.models import ToolSpec


def run_sea(*args: str | bytes, schema: str) -> subprocess.CompletedProcess:
    # Bytes reach the command line as they are: invalid UTF-8 is what a terminal can send.
    return subprocess.run([sys.executable, "-m", "cli", *args, "--json"], cwd=ROOT,
                          env={**os.environ, "SEA_LIBRARY_SCHEMA": schema},
                          capture_output=True, text=True, timeout=300)


def sea(*args: str | bytes, schema: str) -> tuple[int, dict]:
    run = run_sea(*args, schema=schema)
    return run.returncode, json.loads(run.stdout)


@pytest.fixture
def library():
    """A library whose word_count has two versions, the second current."""
    made = ToolLibrary(schema=f"cli_{uuid.uuid4().hex[:8]}")
    spec = ToolSpec(name="word_count", description="Count the number of words in a text.",
                    parameters=[{"name": "text", "type": "string"}])
    made.register(spec, "def word_count(text):\n    return len(text.split())\n", "")
    made.register(spec, "def word_count(text):\n    return len(text.split(' '))\n", "",
                  reason="update: split on spaces", new_version=True)
    yield made
    made.drop()


def test_tools_commands(library):
    schema = library.schema
    library.record_execution("word_count", 2, {"text": "a b"}, 2, True, request="count words")
    code, listing = sea("tools", "list", schema=schema)
    assert code == 0 and [(t["name"], t["version"]) for t in listing["tools"]] == [
        ("word_count", 2)]
    code, shown = sea("tools", "show", "word_count", "--version", "1", schema=schema)
    assert code == 0 and shown["version"] == 1 and "split()" in shown["code"]
    code, found = sea("tools", "search", "how many words are in this essay", schema=schema)
    # Plausible but unproven: the judge would see it (no judge runs in a search).
    assert code == 0 and found["decision"] == "verify"
    assert found["candidates"][0]["name"] == found["judge_would_see"][0] == "word_count"
    code, history = sea("tools", "history", "word_count", schema=schema)
    assert [v["reason"] for v in history["versions"]] == ["created",
                                                          "update: split on spaces"]
    assert history["executions"][0]["request"] == "count words"
    code, rolled = sea("tools", "rollback", "word_count", "1", schema=schema)
    assert code == 0 and rolled["version"] == 1
    assert library.get("word_count").version == 1
    code, missing = sea("tools", "show", "no_such_tool", schema=schema)
    assert code == 1 and "no tool 'no_such_tool'" in missing["error"]
    code, removed = sea("tools", "remove", "word_count", schema=schema)
    assert code == 0 and library.list_tools() == []


def test_bad_input_gets_a_clear_error_and_changes_nothing(library):
    schema = library.schema
    code, history = sea("tools", "history", b"\xff", schema=schema)
    assert code == 1 and history["error"].startswith("ToolNotFound: no tool")
    for args in (("rollback", "word_count", "1", "--reason", b"\xff\xfe"),
                 ("remove", "word_count", "--reason", b"bad \xed\xa0\x80 text")):
        code, refused = sea("tools", *args, schema=schema)
        assert code == 1 and refused["error"].startswith(
            "ValueError: the reason contains a lone surrogate")
    assert library.get("word_count").version == 2 and library.events("word_count") == []
    for k in ("0", "-3", "10000000000000000000"):
        run = run_sea("tools", "search", "how many words are in this essay", "-k", k,
                      schema=schema)
        assert run.returncode == 2 and "argument -k: a whole number from 1 to 1000" in \
            run.stderr
    code, found = sea("tools", "search", "how many words are in this essay", "-k", "1",
                      schema=schema)
    assert code == 0 and [c["name"] for c in found["candidates"]] == ["word_count"]
    run = run_sea("workflows", "show", "1", "--runs", "-5", schema=schema)
    assert run.returncode == 2 and "argument --runs: a whole number of at least 0" in \
        run.stderr
