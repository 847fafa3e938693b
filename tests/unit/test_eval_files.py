"""A broken evaluation file gets an error that says what is wrong and where, never a traceback."""

import json

import pytest

from cli.eval_synthesis import load_tasks
from cli.evaluate import load_eval_set
from cli.main import main

GOOD_TOOL = {"name": "count_vowels", "description": "Count the vowels in a string."}


def refusal(load, tmp_path, content: str) -> str:
    """Return the error ``load`` raises on a file holding ``content``; it names the file."""
    path = tmp_path / "set.json"
    path.write_text(content)
    with pytest.raises(ValueError) as raised:
        load(path)
    assert str(raised.value).startswith(f"{path}: ")
    return str(raised.value)


@pytest.mark.parametrize("content, says", [
    ("not json", "cannot read it as JSON"),
    ("[1, 2]", "expected an object with 'tools' and 'queries' lists"),
    (json.dumps({"tools": [], "queries": {}}), "expected an object with 'tools' and 'queries'"),
    (json.dumps({"tools": ["count_vowels"], "queries": []}),
     "tool 1: it needs a 'name' and a 'description'"),
    (json.dumps({"tools": [GOOD_TOOL, {"description": "Reverse a string."}], "queries": []}),
     "tool 2: it needs a 'name' and a 'description'"),
    (json.dumps({"tools": [{"name": "Reverse", "description": "Reverse a string."}],
                 "queries": []}), "tool 1: Value error, tool name 'Reverse' must be snake_case"),
    (json.dumps({"tools": [GOOD_TOOL], "queries": [{"expect": "count_vowels"}]}),
     "query 1 needs a 'query' (a non-empty string)"),
    (json.dumps({"tools": [GOOD_TOOL], "queries": [{"query": "vowels in 'kiwi'"}, "kiwi"]}),
     "query 2 needs a 'query'"),
    (json.dumps({"tools": [GOOD_TOOL], "queries": [{"query": "reverse it", "expect": "rev"}]}),
     "query 'reverse it' expects an unknown tool"),
])
def test_a_broken_file_says_what_is_wrong(tmp_path, content, says):
    assert says in refusal(load_eval_set, tmp_path, content)


def test_the_command_reports_it_in_one_line(tmp_path, capsys):
    path = tmp_path / "set.json"
    path.write_text(json.dumps({"tools": [{"name": "count_vowels"}], "queries": []}))
    assert main(["eval", "retrieval", str(path), "--json"]) != 0
    error = json.loads(capsys.readouterr().out)["error"]
    assert error == f"ValueError: {path}: tool 1: it needs a 'name' and a 'description'"


def test_a_good_file_loads(tmp_path):
    data = {"tools": [GOOD_TOOL], "queries": [{"query": "vowels in 'kiwi'",
                                              "expect": "count_vowels"}]}
    path = tmp_path / "set.json"
    path.write_text(json.dumps(data))
    assert load_eval_set(path) == data


@pytest.mark.parametrize("content, says", [
    ("{", "cannot read it as JSON"),
    (json.dumps({"tasks": []}), "expected an object with a 'tasks' list"),
    (json.dumps({"tasks": ["reverse"]}), "task 1 is not an object"),
    (json.dumps({"tasks": [{"request": "reverse a string"}]}),
     "task 1 lacks id, signature, hidden_tests, sample_call"),
])
def test_a_broken_task_set_says_what_is_wrong(tmp_path, content, says):
    assert says in refusal(load_tasks, tmp_path, content)
