"""The app's pure helpers: escaping, badges, results as tables, tokens, the listening address."""

from __future__ import annotations

import re

import pytest

from ui.auth import is_loopback, owner_of_token, tokens
from ui.render import OFF_SCRIPT, badge_of, csv_table, friendly_error, label, usage_line


def test_label_escapes_every_markdown_character():
    text = "![x](http://h/p.png) [sign in](http://h) <b>*bold*</b> `code` :red[x] $x$ www.x.org"
    escaped = label(text)
    assert escaped.replace("\\", "") == text  # nothing lost: every sign kept, as a literal
    punctuation = r"[!-/:-@\[-`{-~]"
    assert not re.search(punctuation, re.sub(r"\\" + punctuation, "", escaped))


@pytest.mark.parametrize(("turn", "kind"), [
    ({"status": "done", "decision": "reuse", "tool": "f", "tool_status": "verified"}, "reused"),
    ({"status": "done", "decision": "synthesize", "tool": "f", "tool_status": "verified",
      "route": ["verify", "register"]}, "built"),
    ({"status": "done", "decision": "synthesize", "tool": "f", "tool_status": "verified",
      "route": ["verify", "reflect", "verify"]}, "repaired"),
    ({"status": "done", "decision": "synthesize", "tool": "f",
      "tool_status": "experimental"}, "experimental"),
    ({"status": "failed", "error": "plan failed", "tool": None}, "failed"),
    ({"status": "interrupted", "error": "stopped by the user"}, "interrupted"),
    ({"status": "done", "decision": "multi", "tool": None}, "answered"),
])
def test_each_turn_gets_the_badge_of_what_happened(turn, kind):
    assert badge_of(turn) == kind


def test_csv_text_becomes_a_table_and_other_text_does_not():
    table = csv_table("a,b\n1,2\n3,4\n")
    assert list(table.columns) == ["a", "b"] and table["b"].sum() == 6
    assert csv_table("one line, with a comma") is None
    assert csv_table("a,b\n1,2,3") is None  # ragged
    assert csv_table("no commas\nat all") is None


def test_off_script_errors_become_a_plain_sentence():
    error = ("plan failed: the scripted model has no recorded reply for step 'plan' and "
             "this request. This demo only knows these requests: a; b.")
    assert friendly_error(error) == OFF_SCRIPT
    assert friendly_error("verify failed: the sandbox is unavailable") == (
        "Sorry, I could not complete this.")


def test_usage_is_summed_in_step_order():
    usage = {"answer": {"total_tokens": 3}, "plan": {"total_tokens": 5},
             "args": {"total_tokens": 2}}
    assert usage_line(usage) == "10 tokens (Plan 5, Arguments 2, Answer 3)"
    assert usage_line({}) == ""


def test_tokens_name_their_owners(monkeypatch):
    monkeypatch.setenv("SEA_APP_TOKEN", "alice:a-secret, bob:b-secret")
    known = tokens()
    assert owner_of_token("a-secret", known) == "alice"
    assert owner_of_token("b-secret", known) == "bob"
    assert owner_of_token("a-secre", known) is None
    monkeypatch.setenv("SEA_APP_TOKEN", "only-one")
    assert tokens() == {"only-one": "user"}
    monkeypatch.setenv("SEA_APP_TOKEN", "carol:correct:horse")  # split at the first colon
    assert owner_of_token("correct:horse", tokens()) == "carol"
    assert owner_of_token("horse", tokens()) is None
    monkeypatch.delenv("SEA_APP_TOKEN")
    assert tokens() == {}


@pytest.mark.parametrize(("setting", "problem"), [
    ("alice:", "alice an empty token"), ("alice: , bob:b", "alice an empty token"),
    ("alice:same, bob:same", "alice and bob the same token")])
def test_unusable_token_settings_are_refused(monkeypatch, setting, problem):
    monkeypatch.setenv("SEA_APP_TOKEN", setting)
    with pytest.raises(ValueError, match=problem):
        tokens()


def test_an_empty_token_never_signs_in():
    assert owner_of_token("", {"": "alice"}) is None


@pytest.mark.parametrize(("address", "local"), [
    ("127.0.0.1", True), ("localhost", True), ("::1", True), ("127.0.0.5", True),
    ("0.0.0.0", False), ("", False), (None, False), ("192.168.1.4", False), ("::", False)])
def test_only_loopback_addresses_count_as_local(address, local):
    assert is_loopback(address) is local


def test_the_app_does_no_heavy_bookkeeping_after_every_script_run():
    import tomllib
    from pathlib import Path

    config = tomllib.loads(
        (Path(__file__).resolve().parents[2] / ".streamlit" / "config.toml").read_text())
    # Each poll of a running turn is a script run: with the agent loaded, a full collection
    # and the source watcher's pass over every module held the interpreter lock for over
    # 0.1 s each after every one.
    assert config["runner"]["postScriptGC"] is False
    assert config["server"]["fileWatcherType"] == "none"


def test_start_up_objects_are_frozen_out_of_the_collector_even_when_warm_up_fails():
    import gc
    import threading

    from ui.runs import warm_up

    class Down:
        @property
        def context(self):
            raise RuntimeError("the database is down")

    gc.unfreeze()
    ready = threading.Event()
    try:
        warm_up(Down(), ready)
        assert ready.is_set() and gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
