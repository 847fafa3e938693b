"""`sea eval synthesis` offline: the recorded replies, the real graph, sandbox and library."""

from __future__ import annotations

import json
from pathlib import Path

from cli.main import main

ROOT = Path(__file__).resolve().parents[2]
TASKS = str(ROOT / "evals" / "synthesis_dev.json")
MODEL = f"scripted:{ROOT / 'evals' / 'synthesis_scripted.json'}"
RECORDED = {"shift-length", "caesar-cipher", "csv-column-sum", "days-in-month", "anagram-check"}


def run(capsys, *extra: str) -> dict:
    assert main(["eval", "synthesis", TASKS, "--model", MODEL, "--pool", "0", "--json",
                 *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_the_development_set_loads_and_tasks_without_replies_are_not_failures(capsys,
                                                                               tmp_path):
    from cli.eval_synthesis import load_tasks

    assert len(load_tasks(TASKS)["tasks"]) == 51
    report = tmp_path / "report.md"
    result = run(capsys, "--report", str(report))
    summary, rows = result["summary"], {r["id"]: r for r in result["tasks"]}
    assert summary["tasks"] == 51 and summary["ran"] == 5 and summary["no_recorded_reply"] == 46
    assert {i for i, r in rows.items() if r["outcome"] != "no recorded reply"} == RECORDED
    assert summary["errors"] == 0 and summary["synthesized"] == 5
    # The gate caught days-in-month's weak suite; nothing it measures can catch anagram-check.
    assert rows["days-in-month"]["strengthened"] == 2 and rows["days-in-month"]["reflections"] == 1
    assert rows["days-in-month"]["hidden_all_passed"] is True
    assert rows["anagram-check"]["outcome"] == "verified"
    assert rows["anagram-check"]["hidden_failures"] == [
        "test_letter_counts_matter_not_just_letter_sets"]
    assert rows["csv-column-sum"]["hidden_all_passed"] and rows["csv-column-sum"]["sample_call_ok"]
    assert rows["caesar-cipher"]["reflections"] == 1
    assert summary["verified_first_try"] == 3 and summary["verified_after_reflection"] == 2
    assert summary["precision_of_verified"] == 0.8
    table = report.read_text()
    assert "| days-in-month | verified | 1 | 2 |" in table and "no recorded reply" in table


def test_precision_of_verified_with_and_without_the_gate(capsys):
    picked = "days-in-month,anagram-check,shift-length"
    gated = run(capsys, "--tasks", picked)
    plain = run(capsys, "--tasks", picked, "--no-mutation-gate")
    assert gated["mutation_gate"] is True and plain["mutation_gate"] is False
    assert gated["summary"]["verified"] == plain["summary"]["verified"] == 3
    assert plain["summary"]["precision_of_verified"] == round(1 / 3, 4)
    assert gated["summary"]["precision_of_verified"] == round(2 / 3, 4)
    assert gated["summary"]["hidden_test_pass_rate"] > plain["summary"]["hidden_test_pass_rate"]
    days = {r["id"]: r for r in plain["tasks"]}["days-in-month"]
    assert days["strengthened"] == 0 and days["hidden_failures"] == ["test_century_not_leap"]
    assert days["mutation_score"] < 0.7  # measured all the same, just not gated
