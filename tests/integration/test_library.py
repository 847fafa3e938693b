"""The tool library against the real embedded PostgreSQL: no database mocks."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import uuid

import pytest
from pydantic import ValidationError

from nodes.decide import preview
from tools_store.errors import (
    BadQuery,
    IndexModelMismatch,
    InvalidToolName,
    ToolExists,
    ToolNotFound,
)
from tools_store.library import ToolLibrary
from tools_store.migrations import migrate
from tools_store.models import Evidence, ToolSpec, check_tool_name

CODE = "def kilometers_to_miles(km: float) -> float:\n    return km * 0.621371\n"
TESTS = ("from tool import kilometers_to_miles\n\n"
         "def test_ten():\n    assert round(kilometers_to_miles(10), 2) == 6.21\n")


def km_spec(**extra) -> ToolSpec:
    return ToolSpec(name="kilometers_to_miles",
                    description="Convert a distance in kilometers to miles.",
                    examples=["how many miles is 10 km"], **extra)


@pytest.fixture
def library(tmp_path):
    lib = ToolLibrary(schema=f"t_{uuid.uuid4().hex[:10]}", files_dir=tmp_path / "tools")
    yield lib
    lib.drop()


def decided(library, query: str) -> tuple[str, str | None]:
    """Return the decision the graph makes (before any judge) on the library's ranking."""
    choice = preview(library.search(query))
    return choice.decision, choice.chosen.name if choice.chosen else None


def test_a_blank_search_or_a_name_that_is_not_text_finds_nothing_and_says_why(library):
    library.register(km_spec(), CODE, TESTS, {"status": "passed"})
    for query in ("", "  \n\t"):
        with pytest.raises(BadQuery, match="the search query is empty"):
            library.search(query)
    with pytest.raises(BadQuery, match="holds a lone surrogate"):
        library.search("miles \udcff km")  # bytes that are not UTF-8, as argv decodes them
    # A NUL reached PostgreSQL (DataError) from a tool call's name; it names no tool.
    for name in ("kilometers\x00to_miles", "kilometers_to_miles\udcff"):
        assert not library.name_taken(name)
        with pytest.raises(ToolNotFound, match="no tool"):
            library.get(name)
    with pytest.raises(ToolNotFound, match="no tool 'kilometers_to_miles' version 0"):
        library.get("kilometers_to_miles", 0)


def test_register_get_files_and_search(library):
    record = library.register(km_spec(), CODE, TESTS, {"status": "passed"})
    assert (record.version, record.status) == (1, "verified")
    stored = library.get("kilometers_to_miles")
    assert stored.code == CODE and stored.tests == TESTS and stored.report["status"] == "passed"
    folder = library.files_dir / "kilometers_to_miles" / "v1"
    assert (folder / "tool.py").read_text() == CODE
    assert (folder / "test_tool.py").read_text() == TESTS
    assert json.loads((folder / "spec.json").read_text())["name"] == "kilometers_to_miles"
    result = library.search("I ran 10 km, how many miles is that?")
    # A paraphrase in other words is plausible, not proven: the judge decides. The tool's
    # own example is reused at once.
    assert decided(library, "I ran 10 km, how many miles is that?") == (
        "verify", "kilometers_to_miles")
    assert decided(library, "how many miles is 10 km") == ("reuse", "kilometers_to_miles")
    assert result.candidates[0].similarity > 0.5
    reverse = library.search("convert 5 miles to kilometers")
    assert decided(library, "convert 5 miles to kilometers")[0] != "reuse"
    assert "other way" in reverse.candidates[0].conflict


@pytest.mark.parametrize("name", ["../etc/passwd", "tools/x", "os", "json", "Tool", "a-b",
                                  "class", "tool", "print", "x", "add_numbers\n",
                                  "add_numbers\nimport os"])
def test_bad_names_are_refused(name):
    with pytest.raises(InvalidToolName):
        check_tool_name(name)
    with pytest.raises(ValidationError):
        ToolSpec(name=name, description="Does something.")


def test_taken_name_needs_an_explicit_new_version_and_rollback_works(library):
    library.register(km_spec(), CODE, TESTS)
    with pytest.raises(ToolExists):
        library.register(km_spec(), CODE.replace("0.621371", "0.62"), TESTS)
    assert len(library.versions("kilometers_to_miles")) == 1
    fixed = CODE.replace("0.621371", "0.6213712")
    v2 = library.register(km_spec(), fixed, TESTS, reason="repair: precision",
                          new_version=True)
    assert v2.version == 2 and library.get("kilometers_to_miles").code == fixed
    assert (library.files_dir / "kilometers_to_miles" / "v2" / "tool.py").read_text() == fixed
    back = library.rollback("kilometers_to_miles", 1)
    assert back.version == 1 and back.code == CODE
    history = library.versions("kilometers_to_miles")
    assert [(v.version, v.current) for v in history] == [(1, True), (2, False)]
    assert library.search("10 km in miles").candidates[0].version == 1
    with pytest.raises(ToolNotFound):
        library.rollback("kilometers_to_miles", 7)


def test_remove_hides_the_tool(library):
    library.register(km_spec(), CODE, TESTS)
    library.remove("kilometers_to_miles")
    assert library.list_tools() == []
    assert library.search("10 km in miles").candidates == []
    again = library.register(km_spec(), CODE, TESTS)  # a retired name may be taken anew
    assert again.version == 2


def test_a_retired_tool_is_never_rolled_back_into_use(library):
    name = "kilometers_to_miles"
    library.register(km_spec(), CODE, TESTS)
    library.record_execution(name, 1, {"km": 10}, 6.21, True)
    library.register(km_spec(), CODE.replace("km *", "km /"), TESTS, new_version=True)
    window = int(library.policy()["rollback_window"])
    for _ in range(window - 1):
        library.record_execution(name, 2, {"km": 10}, 16.1, False, "wrong")
    # Retired while its last call of the window ran: that call's failure completes a window
    # worse than v1's, and before, the automatic rollback put the tool back in use.
    library.remove(name)
    assert library.record_execution(name, 2, {"km": 10}, 16.1, False, "wrong") is None
    assert library.rollback(name, 1, "decided earlier", "auto_rollback", only_from=2) is None
    assert library.list_tools() == [] and library.search("10 km in miles").candidates == []
    assert [e["kind"] for e in library.events(name)] == ["retire"]
    assert library.rollback(name, 1).status == "verified"  # by hand, on purpose: restored


def test_ranking_weights_come_from_the_policy(library):
    a = ToolSpec(name="word_count", description="Count the number of words in a text.")
    b = ToolSpec(name="count_words_fast", description="Count how many words a text has.")
    library.register(a, "def word_count(text):\n    return len(text.split())\n", "")
    library.register(b, "def count_words_fast(text):\n    return 0\n", "")
    for _ in range(3):
        library.record_execution("count_words_fast", 1, {"text": "a b"}, None, False, "bad")
        library.record_execution("word_count", 1, {"text": "a b"}, 2, True)
    assert library.policy()["weights"] == {"similarity": 0.7, "success": 0.2, "usage": 0.1}
    library.set_policy({"weights": {"similarity": 0.0, "success": 1.0, "usage": 0.0}},
                       note="test: success only")
    ranked = library.search("how many words does this text have")
    assert ranked.candidates[0].name == "word_count"
    assert ranked.candidates[0].score == pytest.approx(1.0)
    assert ranked.candidates[1].score == pytest.approx(0.0)
    library.set_policy({"weights": {"similarity": 0.0, "success": 0.0, "usage": 1.0}})
    assert library.search("how many words").candidates[0].score == pytest.approx(
        library.search("how many words").candidates[1].score)


def test_thresholds_are_per_embedding_model(library):
    policy = library.policy()
    assert library.thresholds(policy)["reuse"] < policy["thresholds"]["default"]["reuse"]
    library.set_policy({"thresholds": {library.model_id: {"reuse": 0.99, "verify": 0.98}}})
    library.register(km_spec(), CODE, TESTS)
    assert decided(library, "I ran 10 km, how many miles is that?")[0] == "synthesize"


def test_migrations_run_twice(library):
    with library.connect() as conn:
        assert migrate(conn, library.schema) == []
        assert migrate(conn, library.schema) == []
    library.register(km_spec(), CODE, TESTS)
    assert library.get("kilometers_to_miles").version == 1


def test_reconcile_repairs_drift_both_ways(library):
    library.register(km_spec(), CODE, TESTS)
    folder = library.files_dir / "kilometers_to_miles" / "v1"
    (folder / "tool.py").write_text("tampered")
    (folder / "test_tool.py").unlink()
    orphan = library.files_dir / "ghost_tool" / "v3"
    orphan.mkdir(parents=True)
    (orphan / "tool.py").write_text("x")
    repairs = library.reconcile_files()
    assert any("kilometers_to_miles v1" in r for r in repairs)
    assert any("ghost_tool/v3" in r for r in repairs)
    assert (folder / "tool.py").read_text() == CODE and (folder / "test_tool.py").exists()
    assert not orphan.exists()
    assert library.reconcile_files() == []


@pytest.mark.parametrize("point,survives", [("after_version_insert", False),
                                            ("before_commit", False),
                                            ("after_commit", True)])
def test_registration_is_atomic_across_a_crash(library, point, survives):
    script = textwrap.dedent(f"""
        import os, sys
        from pathlib import Path
        os.environ["SEA_CRASH_AT"] = {point!r}
        from tools_store.library import ToolLibrary
        from tools_store.models import ToolSpec
        lib = ToolLibrary(schema={library.schema!r}, files_dir=Path({str(library.files_dir)!r}))
        lib.register(ToolSpec(name="circle_area", description="Area of a circle."),
                     "def circle_area(r):\\n    return 3.14159 * r * r\\n", "")
        sys.exit(0)
    """)
    library.register(km_spec(), CODE, TESTS)  # the library before the crash
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 86, run.stderr[-2000:]
    restarted = ToolLibrary(schema=library.schema, files_dir=library.files_dir)
    repairs = restarted.reconcile_files()
    names = [r.name for r in restarted.list_tools()]
    found = [c.name for c in restarted.search("area of a circle with radius 2").candidates]
    if survives:
        assert names == ["circle_area", "kilometers_to_miles"] and "circle_area" in found
        assert any("circle_area v1" in r for r in repairs)  # files written on restart
        assert (library.files_dir / "circle_area" / "v1" / "tool.py").exists()
    else:
        assert names == ["kilometers_to_miles"] and "circle_area" not in found
        with restarted.connect() as conn:
            left = conn.execute("SELECT count(*) AS n FROM tool_versions WHERE name = "
                                "'circle_area'").fetchone()["n"]
        assert left == 0 and not (library.files_dir / "circle_area").exists()
    restarted.close()


def test_served_requests_are_weak_evidence_not_index_rows(library):
    library.register(km_spec(), CODE, TESTS)
    request = "my jogging route was 7 km long, tell me in imperial units"
    before = library.search(request).candidates[0].similarity
    library.record_execution("kilometers_to_miles", 1, {"km": 7}, 4.35, True,
                             request=request, session_id="s1")
    after = library.search(request)
    # A served request no longer raises the tool's similarity: a wrong reuse cannot lock
    # itself in through the index.
    assert after.candidates[0].similarity == pytest.approx(before, abs=1e-6)
    assert after.candidates[0].uses == 1 and after.candidates[0].success_rate == 1.0
    assert library.executions("kilometers_to_miles")[0]["session_id"] == "s1"
    with library.connect() as conn:
        kinds = {r["kind"] for r in conn.execute("SELECT kind FROM tool_index").fetchall()}
    assert kinds == {"purpose", "example"}


def test_index_built_by_another_model_must_be_reembedded(library):
    library.register(km_spec(), CODE, TESTS)
    other = ToolLibrary(schema=library.schema, files_dir=library.files_dir,
                        model_id="openai:text-embedding-3-small")
    with pytest.raises(IndexModelMismatch, match="sea tools reembed"):
        other.search("10 km in miles")
    library.add_evidence([Evidence(request="how far is 10 km in miles", version=1,
                                   tool="kilometers_to_miles", serves=True, source="user")])
    assert library.reembed() == 1
    result = library.search("how far is 12 km in miles")
    assert result.candidates[0].name == "kilometers_to_miles"
    assert [(e.tool, e.same_request) for e in result.evidence] == [("kilometers_to_miles", True)]


def test_a_tool_changed_during_a_reembed_is_indexed_as_it_is_now(library):
    name = "kilometers_to_miles"
    library.register(km_spec(), CODE, TESTS)
    library.register(km_spec(), CODE.replace("0.621371", "0.6213712"), TESTS,
                     new_version=True)
    library.register(ToolSpec(name="celsius_to_kelvin", description="Convert Celsius to "
                              "Kelvin."), "def celsius_to_kelvin(c):\n    return c + 273.15\n",
                     "")
    other = ToolLibrary(schema=library.schema, files_dir=library.files_dir)

    def meanwhile(tools):  # another process, while the tools are being embedded
        for record in tools:
            yield record
            if record.name == name:
                other.rollback(name, 1)
                other.remove("celsius_to_kelvin")
    try:
        assert library.reembed(progress=meanwhile) == 1  # the tools indexed: one is retired
    finally:
        other.close()
    # Before, the index was written from the snapshot: v2's rows only, which search skips
    # now that v1 is current, and the retired tool's rows.
    from tools_store.index import TABLE

    with library.connect() as conn:
        indexed = conn.execute(f"SELECT DISTINCT tool_name, version FROM {TABLE}").fetchall()
    assert [(r["tool_name"], r["version"]) for r in indexed] == [(name, 1)]
    found = library.search("how far is 12 km in miles").candidates
    assert [(c.name, c.version) for c in found] == [(name, 1)]


def test_eval_retrieval_uses_a_throwaway_library(tmp_path):
    data = {"name": "tiny", "tools": [
        {"name": "kilometers_to_miles",
         "description": "Convert a distance in kilometers to miles."},
        {"name": "count_vowels", "description": "Count the vowels in a string."}],
        "queries": [{"query": "I ran 10 km, how many miles?", "expect": "kilometers_to_miles"},
                    {"query": "how many vowels are in banana", "expect": "count_vowels"},
                    {"query": "convert 3 miles to kilometers", "expect": None},
                    {"query": "count the consonants in banana", "expect": None},
                    {"query": "bake a cake", "expect": None}]}
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(data))
    user_library = ToolLibrary()
    before = [r.name for r in user_library.list_tools(include_retired=True)]
    run = subprocess.run([sys.executable, "-m", "cli", "eval", "retrieval", str(path),
                          "--json"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    metrics = json.loads(run.stdout)
    assert metrics["top1_accuracy"] == 1.0 and metrics["recall_at_5"] == 1.0
    # Both true requests are plausible but unproven: they go to the judge, so a perfect
    # judge gets everything right and no judge misses them (the band synthesizes).
    assert metrics["false_direct_reuse_rate"] == 0.0 and metrics["band_recall"] == 1.0
    assert metrics["decision_accuracy_perfect_judge"] == 1.0
    assert metrics["decision_accuracy_no_judge"] == metrics["decision_accuracy"] == 0.6
    assert metrics["judge_share"] >= 0.4 and "baseline_single_threshold" in metrics
    assert [r.name for r in user_library.list_tools(include_retired=True)] == before
    with user_library.connect() as conn:
        leftover = conn.execute("SELECT count(*) AS n FROM information_schema.schemata "
                                "WHERE schema_name LIKE 'sea_eval_%'").fetchone()["n"]
    assert leftover == 0


def test_execution_source_migration_keeps_old_rows_as_the_agents(library):
    library.register(km_spec(), CODE, TESTS)
    with library.connect() as conn:  # the schema as it was before migration 2
        conn.execute("ALTER TABLE tool_executions DROP COLUMN source")
        conn.execute("DELETE FROM schema_migrations WHERE version = 2")
        conn.execute("INSERT INTO tool_executions (name, version, inputs, success) "
                     "VALUES ('kilometers_to_miles', 1, '{}', true)")
        conn.commit()
        assert migrate(conn, library.schema) == [2]
    library.record_execution("kilometers_to_miles", 1, {"km": 1}, 0.62, True, source="mcp")
    assert [r["source"] for r in library.executions("kilometers_to_miles")] == ["mcp", "agent"]


def test_executions_from_before_files_were_recorded_keep_unknown_files(library):
    name = "kilometers_to_miles"
    library.register(km_spec(), CODE, TESTS)
    with library.connect() as conn:  # the schema as it was before migration 8
        conn.execute("ALTER TABLE tool_executions DROP COLUMN files")
        conn.execute("DELETE FROM schema_migrations WHERE version = 8")
        conn.execute("INSERT INTO tool_executions (name, version, inputs, output, success) "
                     "VALUES (%s, 1, '{\"km\": 10}', '6.21', true)", (name,))
        conn.commit()
        assert migrate(conn, library.schema) == [8]
    library.record_execution(name, 1, {"km": 10}, 6.21, True)
    library.record_execution(name, 1, {"km": 10}, 6.21, True, files=[["km.csv", "ab12"]])
    # The same inputs on other files are other calls; the old one's files stay unknown.
    rows, elsewhere = library.replay_set(name, 10, [["km.csv", "ab12"]])
    assert sorted(str(r["files"]) for r in rows) == ["None", "[['km.csv', 'ab12']]", "[]"]
    assert elsewhere == 0
    # Without that file, the newest call is not replayable, and does not use up the limit.
    rows, elsewhere = library.replay_set(name, 1)
    assert [r["files"] for r in rows] == [[]] and elsewhere == 1


def test_an_execution_logged_without_a_code_hash_gets_its_versions(library):
    record = library.register(km_spec(), CODE, TESTS)
    library.record_execution("kilometers_to_miles", 1, {"km": 1}, 0.62, True)
    assert library.executions("kilometers_to_miles")[0]["code_hash"] == record.code_hash


def test_changes_to_the_current_tools_are_notified(library):
    import psycopg
    from psycopg import sql

    with psycopg.connect(library.url, autocommit=True) as listener:
        listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(library.channel)))

        def heard() -> int:
            return len(list(listener.notifies(timeout=1.0)))

        library.register(km_spec(), CODE, TESTS)
        assert heard() == 1
        library.register(km_spec(), CODE + "# v2\n", TESTS, new_version=True)
        assert heard() == 1
        library.rollback("kilometers_to_miles", 1)
        assert heard() == 1
        library.record_execution("kilometers_to_miles", 1, {"km": 1}, 0.62, True)
        assert heard() == 0  # an execution does not change the list
        library.remove("kilometers_to_miles")
        assert heard() == 1
