"""`sea policy`, the tuner, `sea eval retrieval --learn`, the Settings section and migration 3,
against the real PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest
from servers import ROOT
from streamlit.testing.v1 import AppTest

from tools_store.embeddings import LOCAL_ID
from tools_store.library import ToolLibrary
from tools_store.migrations import migrate
from tools_store.policies import DEFAULT_POLICY, calibration_note

TINY = {"name": "tiny", "tools": [
    {"name": "kilometers_to_miles", "description": "Convert a distance in kilometers to miles."},
    {"name": "count_vowels", "description": "Count the vowels in a string."}],
    "queries": [
        {"query": "I ran 10 km, how many miles?", "expect": "kilometers_to_miles"},
        {"query": "a marathon of 42 km in miles", "expect": "kilometers_to_miles"},
        {"query": "how many vowels are in banana", "expect": "count_vowels"},
        {"query": "tally the vowels of my essay", "expect": "count_vowels"},
        {"query": "convert 3 miles to kilometers", "expect": None},
        {"query": "count the consonants in banana", "expect": None},
        {"query": "bake a cake", "expect": None}, {"query": "plan my holiday", "expect": None},
        {"query": "what's the weather tomorrow", "expect": None},
        {"query": "translate hello into French", "expect": None},
        {"query": "write me a haiku", "expect": None},
        {"query": "book a table for two", "expect": None}]}


def sea(*args: str, schema: str) -> tuple[int, dict]:
    run = subprocess.run([sys.executable, "-m", "cli", *args, "--json"], cwd=ROOT,
                         env={**os.environ, "SEA_LIBRARY_SCHEMA": schema},
                         capture_output=True, text=True, timeout=900)
    assert run.stdout, run.stderr[-3000:]
    return run.returncode, json.loads(run.stdout)


@pytest.fixture
def schema():
    name = f"pol_{uuid.uuid4().hex[:8]}"
    library = ToolLibrary(schema=name)
    yield name
    library.drop()


def test_policy_set_history_rollback_round_trip(schema):
    key = f"thresholds.{LOCAL_ID}.reuse"
    code, shown = sea("policy", "show", schema=schema)
    assert code == 0 and shown["rule"]["reuse"] == 0.88 and shown["version"] == 1
    assert shown["calibration"].startswith("calibrated")
    code, changed = sea("policy", "set", key, "0.95", "--note", "stricter", schema=schema)
    assert code == 0 and (changed["version"], changed["value"]) == (2, 0.95)
    code, _ = sea("policy", "set", "judge_candidates", "2", schema=schema)
    assert sea("policy", "show", schema=schema)[1]["rule"] == {
        "reuse": 0.95, "verify": 0.3, "evidence": 0.6, "judge_candidates": 2,
        "word_checks": True}
    # Refused: an unknown key, a value out of range, verify above reuse. Nothing is written.
    for bad in (("no_such_key", "1"), (key, "2"), (f"thresholds.{LOCAL_ID}.verify", "0.99")):
        code, error = sea("policy", "set", *bad, schema=schema)
        assert code == 1 and "PolicyError" in error["error"]
    code, history = sea("policy", "history", schema=schema)
    assert [(v["version"], v["note"]) for v in history["versions"]] == [
        (1, "seed"), (2, "stricter"), (3, "set judge_candidates = 2")]
    code, rolled = sea("policy", "rollback", "1", schema=schema)
    assert code == 0 and rolled == {"version": 4, "restored": 1}
    assert sea("policy", "show", schema=schema)[1]["rule"]["reuse"] == 0.88
    assert len(sea("policy", "history", schema=schema)[1]["versions"]) == 4


def test_openai_thresholds_are_said_to_be_defaults():
    note = calibration_note(DEFAULT_POLICY, "openai:text-embedding-3-small")
    assert note.startswith("NOT calibrated: these thresholds are defaults")
    assert calibration_note(DEFAULT_POLICY, LOCAL_ID).startswith("calibrated")


def test_the_tuner_applies_only_an_improvement_on_the_held_back_part(schema, tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY))
    # A policy that sends everything to the judge: the tuner can do better.
    sea("policy", "set", f"thresholds.{LOCAL_ID}.verify", "0.0", schema=schema)
    code, first = sea("policy", "tune", "--eval", str(path), "--apply", schema=schema)
    assert code == 0 and first["improves"] and first["applied"] == 3
    assert first["held_back_after"]["judge_share"] < first["held_back_before"]["judge_share"]
    assert first["held_back_after"]["false_direct_reuse_rate"] == 0.0
    shown = sea("policy", "show", schema=schema)[1]
    assert shown["rule"]["verify"] == first["proposed"]["verify"] > 0.0
    # Tuning again finds nothing better: the change is refused and nothing is written.
    code, second = sea("policy", "tune", "--eval", str(path), "--apply", schema=schema)
    assert code == 1 and not second["improves"] and second["applied"] is None
    assert second["message"].startswith("refused")
    assert len(sea("policy", "history", schema=schema)[1]["versions"]) == 3


def test_eval_learns_from_one_half_and_measures_the_other(tmp_path):
    # Value variants of one request, and of its inverse: the first pass judges them all;
    # after learning, the unseen half's true requests are reused at once and its near
    # misses refused, never reused.
    queries = [{"query": f"convert {n} km to miles", "expect": "kilometers_to_miles"}
               for n in (3, 7, 12, 19, 25, 40)]
    queries += [{"query": f"convert {n} miles to km", "expect": None} for n in (2, 9, 14)]
    path = tmp_path / "variants.json"
    path.write_text(json.dumps({**TINY, "queries": queries}))
    run = subprocess.run([sys.executable, "-m", "cli", "eval", "retrieval", str(path),
                          "--learn", "--no-word-checks", "--json"], cwd=ROOT,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout)
    assert report["rule"]["word_checks"] is False
    first, after = report["learn"]["first_pass"], report["learn"]["after_learning"]
    assert first["direct_reuse_share"] == 0.0 and first["judge_share"] == 1.0
    assert after["direct_reuse_share"] > 0.0 and after["false_direct_reuses"] == 0
    assert after["decision_accuracy_no_judge"] == 1.0  # learned: no judge needed any more
    variants = report["learn"]["value_variants"]
    assert variants["requests"] == 4 and variants["false_direct_reuses"] == 0
    # No radius could have done it: an inverse request sits nearer a served request than any
    # true variant does, so the same-request template is what learned.
    assert report["learn"]["radius_ceiling"] == {"radius": None, "direct_reuse_share": 0.0,
                                                 "false_direct_reuses": 0}


def test_migration_3_moves_served_requests_into_weak_evidence(schema):
    library = ToolLibrary(schema=schema)
    from tools_store.models import ToolSpec

    library.register(ToolSpec(name="word_count", description="Count the words of a text."),
                     "def word_count(text):\n    return len(text.split())\n", "")
    with library.connect() as conn:  # the state an older release left: a served request row
        conn.execute("INSERT INTO tool_index (langchain_id, content, embedding, tool_name, "
                     "kind, version, langchain_metadata) SELECT gen_random_uuid(), "
                     "'how long is my essay', embedding, tool_name, 'request', version, '{}' "
                     "FROM tool_index LIMIT 1")
        conn.execute("DELETE FROM schema_migrations WHERE version = 3")
        conn.execute("DROP TABLE evidence")
        conn.commit()
        versions_before = conn.execute("SELECT count(*) AS n FROM policies").fetchone()["n"]
        assert migrate(conn, schema) == [3]
        kinds = [r["kind"] for r in conn.execute("SELECT kind FROM tool_index").fetchall()]
        policies = conn.execute("SELECT count(*) AS n FROM policies").fetchone()["n"]
    assert "request" not in kinds and policies == versions_before + 1
    rows = library.evidence("word_count")
    assert [(r["request"], r["source"], r["strength"]) for r in rows] == [
        ("how long is my essay", "execution", "weak")]


def test_the_evidence_lookup_is_served_by_the_hnsw_index(schema):
    from tools_store import evidence
    from tools_store.models import Evidence

    library = ToolLibrary(schema=schema)
    library.add_evidence([Evidence(request="convert 5 km to miles", tool="kilometers_to_miles",
                                   version=1, serves=True, source="judge")])
    vector = library.index.embed_query("convert 7 km to miles")
    with library.connect() as conn:
        hits = evidence.lookup(conn, "convert 7 km to miles", vector, radius=0.99)
        assert [(h.tool, h.same_request) for h in hits] == [("kilometers_to_miles", True)]
        conn.execute("SET enable_seqscan = off")  # the query's shape must allow the index
        plan = "\n".join(r["QUERY PLAN"] for r in conn.execute(
            "EXPLAIN " + evidence.LOOKUP, ("[" + ",".join(["0.1"] * len(vector)) + "]",
                                            "t", 20, 20)).fetchall())
    assert "Index Scan using evidence_hnsw" in plan


def settings_script() -> None:
    import os

    from tools_store.library import ToolLibrary
    from ui.policy_settings import policy_section

    policy_section(ToolLibrary(schema=os.environ["SEA_LIBRARY_SCHEMA"]))


def test_the_settings_section_sets_shows_and_rolls_back(schema, monkeypatch):
    monkeypatch.setenv("SEA_LIBRARY_SCHEMA", schema)
    at = AppTest.from_function(settings_script, default_timeout=120).run()
    assert not at.exception and "Policy version 1" in at.markdown[0].value
    at.selectbox(key="policy-key").set_value("judge_candidates")
    at.text_input(key="policy-value").set_value("4")
    at.button(key="policy-set").click().run()
    assert "Saved as policy version 2." in [s.value for s in at.success]
    assert ToolLibrary(schema=schema).policy()["judge_candidates"] == 4
    assert '"judge_candidates": 4' in at.code[0].value
    at.text_input(key="policy-value").set_value("99")
    at.button(key="policy-set").click().run()
    assert any("Not saved" in e.value for e in at.error)
    at.selectbox(key="policy-target").set_value(1)
    at.button(key="policy-rollback").click().run()
    assert "Policy version 3 restores version 1." in [s.value for s in at.success]
    assert ToolLibrary(schema=schema).policy()["judge_candidates"] == 3
    assert [row for row in at.dataframe[0].value["version"]] == [3, 2, 1]
