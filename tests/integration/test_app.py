"""The Streamlit app through AppTest, against the real database and sandbox.

Turns run in the app's worker threads; a test waits for the registry to be idle, then reruns
the page, as a browser's poll would.
"""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

import pytest
import streamlit as st
from app_scripts import BEACON, CSV_REQUEST, CSV_TEXT, SLOW_REQUEST, card_request, write_script
from streamlit.testing.v1 import AppTest

from ui.render import label

APP = str(Path(__file__).resolve().parents[2] / "ui" / "app.py")


@pytest.fixture
def app(monkeypatch, docker_sandbox, tmp_path):
    """A fresh app on its own library schema, with the demo and the test tools scripted."""
    from sandbox import close_shared

    script = write_script(tmp_path / "script.json")
    monkeypatch.setenv("SEA_MODEL", f"scripted:{script}")
    monkeypatch.setenv("SEA_LIBRARY_SCHEMA", f"app_{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("SEA_SANDBOX_POOL", "0")
    monkeypatch.delenv("SEA_APP_TOKEN", raising=False)
    st.cache_resource.clear()
    close_shared()

    started = []

    def start(session: str | None = None, page: str | None = None) -> AppTest:
        started.append(session)
        at = AppTest.from_file(APP, default_timeout=180)
        if session:
            at.query_params["session"] = session
        at.run()
        if page:
            at.switch_page(f"views/{page}.py").run()
        assert not at.exception, at.exception
        return at

    yield start
    from ui import backend

    if started:  # stop what this test's app made: its turns, its connections
        runs().wait(120)
        runs().log.close()
        backend.agent().close()
    st.cache_resource.clear()
    close_shared()


def runs():
    from ui import backend

    return backend.runs()


def settle(at: AppTest) -> AppTest:
    """Wait until no turn runs, then rerun the page."""
    assert runs().wait(180), "a turn did not finish"
    at.run()
    assert not at.exception, at.exception
    return at


def ask(at: AppTest, request: str) -> AppTest:
    at.chat_input[0].set_value(request).run()
    assert not at.exception, at.exception
    return settle(at)


def session_of(at: AppTest) -> str:
    value = at.query_params["session"]
    return value[0] if isinstance(value, list) else value


def badges(at: AppTest) -> list[str]:
    found = [re.search(r"-badge\[(?::material/\w+: )?([^\]]+)\]", m.value) for m in at.markdown]
    return [m.group(1) for m in found if m]


def texts(at: AppTest) -> list[str]:
    return [t.value for t in at.text]


def test_empty_chat_offers_the_demo_and_a_suggestion_builds_a_tool(app):
    at = app()
    assert any("Scripted model" in w.value for w in at.warning)
    assert any("reuses one from its library" in c.value for c in at.caption)
    assert "(up to 4000 characters" in at.chat_input[0].placeholder
    suggestion = next(b for b in at.button if b.label == "convert 100 degrees Fahrenheit to "
                      "Celsius")
    suggestion.click().run()
    settle(at)
    assert badges(at) == ["Built"], texts(at)
    assert "100 °F is 37.78 °C." in texts(at)
    assert any(c.value == "37.78" for c in at.code)  # the raw value, shown as a value
    shown = "\n".join(texts(at))
    for step in ("Plan — single tool", "Decision — synthesize", "Sandbox — sandbox: passed: "
                 "5 passed", "Registration — registered fahrenheit_to_celsius v1 (verified)",
                 "Execution — result: 37.78"):
        assert step in shown, step
    labels = [e.label for e in at.expander]
    assert any(label.startswith("Trace: ") for label in labels)
    assert "Tests: tests" in labels and "Implementation: code" in labels
    assert not [b for b in at.button if b.key.startswith("suggest")]  # the chat is not empty


def test_a_trace_sends_its_code_only_when_opened(app):
    from tools_store.library import ToolLibrary

    at = ask(app(), "convert 100 degrees Fahrenheit to Celsius")
    record = ToolLibrary().get("fahrenheit_to_celsius")
    sources = {record.code.strip(), record.tests.strip()}
    assert not [c for c in at.code if c.value.strip() in sources]  # closed: not on the page
    session = session_of(at)
    keys = [key for key in at.session_state if key.startswith("source-")]
    assert sorted(key.rsplit("-", 1)[1] for key in keys) == ["code", "tests"], keys
    assert all(key.startswith(f"source-{session}-1-") for key in keys), keys
    for key in keys:  # what a click on each of them does: it opens and reruns
        at.session_state[key] = True
    at.run()
    assert {c.value.strip() for c in at.code} >= sources


def test_three_turns_keep_their_story_after_a_reload(app):
    at = app()
    ask(at, "convert 100 degrees Fahrenheit to Celsius")
    ask(at, "it's 98.6 F, what is that in celsius?")
    ask(at, "count the vowels in Encyclopedia Britannica")
    fresh = app(session_of(at))  # a reload: a new script run with the same URL
    assert badges(fresh) == ["Built", "Reused", "Repaired"], texts(fresh)
    shown = texts(fresh)
    for answer in ("100 °F is 37.78 °C.", "98.6 °F is 37.0 °C.",
                   "'Encyclopedia Britannica' has 9 vowels."):
        assert answer in shown
    assert len([e for e in fresh.expander if e.label.startswith("Trace: ")]) == 3
    assert "Decision — reuse: fahrenheit_to_celsius" in "\n".join(shown)
    assert any(t.startswith("Reflection — ") for t in shown)
    assert any("tokens (Plan" in c.value for c in fresh.caption)


def test_experimental_tool_is_badged_and_warned(app):
    at = ask(app(), "reverse the order of the words in the quick brown fox")
    assert badges(at) == ["Experimental"], texts(at)
    assert any("reverse\\_word\\_order is experimental" in w.value for w in at.warning)


def test_off_script_request_gets_a_plain_sentence_not_another_answer(app):
    at = ask(app(), "convert 212 fahrenheit to celsius")
    assert badges(at) == ["Failed"]
    assert [e.value for e in at.error] == [
        "This demo replays recorded replies only, and this request is not one it was "
        "recorded for, so it has no answer. Try one of the demo's requests."]
    assert not any("°C" in t for t in texts(at))
    assert any(b.label.startswith("convert 100 degrees") for b in at.button)  # suggestions


def test_sandbox_failure_is_a_message_not_a_traceback(app, monkeypatch, tmp_path):
    monkeypatch.setenv("SEA_SANDBOX_BACKEND", "bwrap")
    monkeypatch.setenv("SEA_SANDBOX_ROOTFS", str(tmp_path / "missing-rootfs"))
    at = ask(app(), "count the vowels in Encyclopedia Britannica")
    assert badges(at) == ["Failed"]
    assert "Sorry, I could not complete this." in [e.value for e in at.error]
    assert any("sandbox is unavailable" in t and "root filesystem" in t for t in texts(at))


def wait_for_step(session: str, step: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pending = runs().pending(session)
        if pending and pending[0].current == step:
            return
        time.sleep(0.05)
    raise AssertionError(f"the turn never reached {step}")


def test_stop_records_an_interrupted_turn_that_can_be_retried(app):
    at = app()
    at.chat_input[0].set_value(SLOW_REQUEST).run()
    session = session_of(at)
    wait_for_step(session, "execute")
    at.run()
    assert at.chat_input[0].disabled  # no new question while a turn runs
    at.button(key="stop-1").click().run()
    settle(at)
    assert badges(at) == ["Interrupted"]
    assert "You stopped this turn before it finished." in [e.value for e in at.error]
    turn = runs().log.turns(session)[0]
    assert turn["status"] == "interrupted" and turn["route"][-1] == "execute"
    at.button(key="retry-1").click().run()
    settle(at)
    assert badges(at) == ["Interrupted", "Reused"]  # it was registered before the stop
    assert "It said: hello." in texts(at)


def test_a_question_from_a_second_tab_is_queued_not_lost(app):
    first = app()
    session = session_of(first)
    second = app(session)  # opened before the turn starts: its input is still enabled
    first.chat_input[0].set_value(SLOW_REQUEST).run()
    second.chat_input[0].set_value("convert 100 degrees Fahrenheit to Celsius").run()
    assert [r.status for r in runs().pending(session)] == ["running", "queued"]
    assert any("Queued" in i.value for i in second.info)
    settle(second)
    assert badges(second) == ["Built", "Built"]
    assert "It said: hello." in texts(second) and "100 °F is 37.78 °C." in texts(second)


def test_an_uploaded_csv_is_read_by_a_tool_and_its_output_offered(app, data_home):
    at = app()
    at.chat_input[0].upload("sales.csv", CSV_TEXT.encode(), "text/csv")
    at.chat_input[0].set_value(CSV_REQUEST).run()
    settle(at)
    session = session_of(at)
    assert (data_home / "sessions" / session / "sales.csv").read_text() == CSV_TEXT
    assert badges(at) == ["Built"], texts(at)
    assert any(c.value == label("files: sales.csv") for c in at.caption)
    table = at.dataframe[0].value
    assert list(table["column"]) == ["q1", "q2"] and list(table["total"]) == [15, 27]
    assert at.get("download_button")[0].proto.label == "Download CSV"


def test_a_session_id_naming_a_path_keeps_its_files_in_its_own_folder(app, data_home):
    from tools_store.sessions import safe_session

    session = "../../escaped"  # a valid id: any printable text
    at = app(session)
    at.chat_input[0].upload("sales.csv", CSV_TEXT.encode(), "text/csv")
    at.chat_input[0].set_value(CSV_REQUEST).run()
    settle(at)
    assert session_of(at) == session and badges(at) == ["Built"], texts(at)
    folder = data_home / "sessions" / safe_session(session)
    assert (folder / "sales.csv").read_text() == CSV_TEXT
    assert not (data_home.parent / "escaped").exists()
    from ui import backend

    data = backend.agent().library.sessions
    assert [i["name"] for i in data.items(session)] and data.folder(session).is_dir()
    page = app(session, page="sessions")
    page.button(key=f"delete-{session}").click().run()
    assert not page.exception, page.exception
    assert not folder.exists() and (data_home / "sessions").is_dir() and (data_home / "pg").is_dir()
    # A folder an earlier version named by the id itself is kept for that id, and only for it.
    earlier = data_home / "sessions" / "alice 1"
    earlier.mkdir()
    assert backend.session_dir("alice 1") == earlier
    assert all(backend.session_dir(other) != earlier
               for other in ("alice 1/", "./alice 1", "alice 1/.", "x/../alice 1"))
    # Its data items, memory and their files go too: the same id starts empty.
    assert data.items(session) == [] and not data.folder(session).exists()


def test_uploads_whose_names_clash_or_run_long_are_all_kept(data_home):
    from types import SimpleNamespace

    from ui import backend
    from ui.chat import save_uploads

    files = [SimpleNamespace(name=name, getvalue=lambda text=text: text.encode())
             for name, text in [("é.csv", "first"), ("ü.csv", "second"),
                                ("x" * 300 + ".csv", "long")]]
    names = save_uploads("uploads-1", files)
    assert names[:2] == ["_.csv", "_-2.csv"] and len(names[2]) == 100
    folder = backend.session_dir("uploads-1")
    assert [(folder / n).read_text() for n in names] == ["first", "second", "long"]


def test_text_that_cannot_be_stored_is_refused_with_its_reason(app, data_home):
    at = ask(app(), "round 2.5 to the nearest whole number")
    session = session_of(at)
    at.chat_input[0].upload("sales.csv", CSV_TEXT.encode(), "text/csv")
    at.chat_input[0].set_value("round 3.5\x00 please").run()
    errors = [e.value.replace("\\", "") for e in at.error]  # shown escaped, as text
    assert any(e.startswith("Not sent: the request contains a NUL") for e in errors), errors
    assert not (data_home / "sessions" / session / "sales.csv").exists()
    at.text_input[0].set_value("halves\x00 round up")
    at.feedback[0].set_value(0).run()
    assert not at.exception, at.exception
    assert any("contains a NUL character" in e.value for e in at.error), at.error
    at.text_input[0].set_value("halves round up")  # the click was refused, not kept:
    at.run()  # later runs of the page queue nothing
    page = app(session, page="sessions")
    for title, problem in [("   ", "cannot be blank"), ("a\x00b", "NUL character")]:
        page.text_input(key=f"title-{session}").set_value(title)
        page.button(key=f"rename-{session}").click().run()
        assert not page.exception, page.exception
        errors = [e.value.replace("\\", "") for e in page.error]
        assert any(e.startswith("Not renamed") and problem in e for e in errors), errors
    from ui import backend

    turns = backend.turn_log().turns(session)
    assert len(turns) == 1 and turns[0]["status"] == "done"
    assert backend.turn_log().sessions("local")[0]["title"].startswith("round 2.5")


def test_the_library_page_shows_the_mutation_score(app):
    at = ask(app(), "convert 100 degrees Fahrenheit to Celsius")
    at.switch_page("views/library.py").run()
    assert not at.exception, at.exception
    shown = [c.value.replace("\\", "") for c in at.caption]  # label() escapes punctuation
    assert any(re.fullmatch(r"mutation score \d\.\d\d: the suite killed \d+ of \d+ mutants.*",
                            value) for value in shown), shown


def test_library_try_rollback_retire_and_restore(app):
    from tools_store.library import ToolLibrary

    at = ask(app(), "convert 100 degrees Fahrenheit to Celsius")
    library = ToolLibrary()
    v1 = library.get("fahrenheit_to_celsius")
    library.register(v1.spec, v1.code.replace("round(", "1 + round("), v1.tests,
                     reason="an explicit update", new_version=True)
    at = app(session_of(at), page="library")
    assert at.selectbox(key="tool").value == "fahrenheit_to_celsius"
    assert at.subheader[1].value == "fahrenheit_to_celsius v2 · verified"
    at.number_input(key="arg-fahrenheit_to_celsius-fahrenheit").set_value(212)
    at.button(key="FormSubmitter:try-fahrenheit_to_celsius-Run fahrenheit_to_celsius v2") \
        .click().run()
    assert not at.exception, at.exception
    assert any(c.value == "101.0" for c in at.code)  # v2 ran in the sandbox
    assert any("--- v1" in c.value and "+++ v2" in c.value for c in at.code)  # the diff
    at.selectbox(key="version-fahrenheit_to_celsius").set_value(1).run()
    at.button(key="rollback-fahrenheit_to_celsius").click().run()
    assert library.get("fahrenheit_to_celsius").version == 1
    at.button(key="retire-fahrenheit_to_celsius").click().run()
    assert not library.name_taken("fahrenheit_to_celsius")
    at.button(key="restore-fahrenheit_to_celsius").click().run()
    assert library.get("fahrenheit_to_celsius").version == 1
    assert library.name_taken("fahrenheit_to_celsius")


def test_the_try_form_checks_arguments_and_keeps_defaults(app):
    from tools_store.library import ToolLibrary
    from tools_store.models import ToolSpec

    spec = ToolSpec.model_validate({
        "name": "echo_values", "description": "Return the values and the flag.",
        "parameters": [{"name": "values", "type": "array"},
                       {"name": "flag", "type": "boolean", "required": False, "default": True}]})
    ToolLibrary().register(spec, "def echo_values(values, flag=True):\n    return [values, flag]\n",
                           "from tool import echo_values\n\n\ndef test_echo():\n"
                           "    assert echo_values([1]) == [[1], True]\n")
    at = app(page="library")
    at.text_input[0].set_value("echo\x00 values").run()  # refused: the page stays
    assert not at.exception, at.exception
    assert any("Not searched" in e.value for e in at.error), at.error
    at.selectbox(key="tool").set_value("echo_values").run()
    run = "FormSubmitter:try-echo_values-Run echo_values v1"
    for typed, problem in [('{"a": 1}', "must be"), ("[" * 100000 + "]" * 100000,
                                                      "nested too deeply")]:
        at.text_area(key="arg-echo_values-values").set_value(typed)
        at.button(key=run).click().run()
        assert not at.exception, at.exception
        assert any(problem in e.value.replace("\\", "") for e in at.error), at.error
    at.text_area(key="arg-echo_values-values").set_value("[1, 2]")
    at.button(key=run).click().run()  # the flag left alone: the tool's default, True
    assert not at.exception, at.exception
    assert [j.value for j in at.json] == ["[[1, 2], true]"], [j.value for j in at.json]


def test_sessions_are_dated_marked_renamed_and_deleted(app):
    from ui import backend

    first = ask(app(), "convert 100 degrees Fahrenheit to Celsius")
    second = ask(app(), "count the vowels in Encyclopedia Britannica")
    one, two = session_of(first), session_of(second)
    listed = [b for b in second.sidebar.button if b.key.startswith("s-")]
    assert [b.key for b in listed] == [f"s-{two}", f"s-{one}"]  # newest first
    assert listed[0].label.startswith("count the vowels") and listed[0].proto.type == "secondary"
    assert listed[1].label.startswith("convert 100") and listed[1].proto.type == "tertiary"
    assert re.search(r"· \d\d \w{3} \d\d:\d\d$", listed[1].label)
    page = app(two, page="sessions")
    page.text_input(key=f"title-{one}").set_value("temperatures")
    page.button(key=f"rename-{one}").click().run()
    assert [b.label for b in page.sidebar.button if b.key == f"s-{one}"][0].startswith(
        "temperatures")
    page.button(key=f"delete-{one}").click().run()
    assert [s["session_id"] for s in backend.turn_log().sessions("local")] == [two]
    assert backend.turn_log().turns(one) == []
    assert not backend.agent().state(one)  # its checkpoints are gone too


def test_settings_page_has_the_policy_section(app):
    at = app(page="settings")
    assert "Discovery and tool policy" in [h.value for h in at.subheader]
    assert any("Policy version" in m.value for m in at.markdown)
    at.selectbox(key="policy-key").set_value("judge_candidates")
    at.text_input(key="policy-value").set_value("eleven")
    at.button(key="policy-set").click().run()
    assert not at.exception, at.exception
    assert [e.value for e in at.error if e.value.startswith("Not saved")] == [
        "Not saved\\: judge\\_candidates must be a whole number from 1 to 10"]


def test_sessions_need_a_token_and_stay_with_their_owner(app, monkeypatch):
    monkeypatch.setenv("SEA_APP_TOKEN", "alice:a-secret,bob:b-secret")
    at = app()
    assert at.text_input[0].label == "Access token" and not at.chat_input
    at.text_input[0].set_value("wrong")
    at.button[0].click().run()
    assert "That token is not valid." in [e.value for e in at.error]
    alice = AppTest.from_file(APP, default_timeout=180)
    alice.query_params["token"] = "a-secret"
    alice.run()
    assert "token" not in alice.query_params
    ask(alice, "convert 100 degrees Fahrenheit to Celsius")
    bob = AppTest.from_file(APP, default_timeout=180)
    bob.query_params["token"] = "b-secret"
    bob.query_params["session"] = session_of(alice)
    bob.run()
    assert any("belongs to someone else" in w.value for w in bob.warning)
    assert session_of(bob) != session_of(alice)
    assert not [b for b in bob.sidebar.button if b.key.startswith("s-")]


def test_an_address_naming_no_possible_session_starts_a_new_one(app):
    at = app(session="x" * 5000)  # every turn in it would be refused
    assert any("The address names no session (the session id has 5,000 characters"
               in w.value for w in at.warning)
    assert len(session_of(at)) == 12


def test_model_and_tool_text_is_shown_as_text(app):
    beacon = BEACON
    at = ask(app(), card_request(beacon))
    assert badges(at) == ["Built"], texts(at)
    shown = texts(at)
    assert card_request(beacon) in shown  # the request, as typed
    assert f"Here is your card ![a]({beacon}/answer.png)" in shown
    assert f"Hello! ![x]({beacon}/beacon.png) [sign in]({beacon}/signin)" in shown
    assert not any(beacon in m.value for m in at.markdown)
    title = next(b.label for b in at.sidebar.button if b.key.startswith("s-"))
    assert title.startswith("show the greeting card \\!\\[u\\]\\(http\\:")


RESULTS = {"value": 42, "text": "plain words", "csv": "a,b\n1,2\n3,4",
           "series": [1, 4, 9, 16], "records": [{"city": "x", "n": 1}, {"city": "y", "n": 3}],
           "mapping": {"red": 3, "blue": 5}, "json": {"nested": {"list": [1, "a"]}}}


def show_results(results: dict) -> None:
    import streamlit as st

    from ui.render import render_result

    for name, value in results.items():
        st.caption(f"kind {name}: {render_result(value, name)}")


@pytest.mark.parametrize("kind", list(RESULTS))
def test_each_kind_of_result_is_shown_as_what_it_is(kind):
    at = AppTest.from_function(show_results, args=({kind: RESULTS[kind]},)).run()
    assert not at.exception, at.exception
    assert at.caption[0].value == f"kind {kind}: {kind}"
    charts = at.get("arrow_vega_lite_chart") + at.get("vega_lite_chart")
    expected = {"value": ("code",), "text": ("text",), "csv": ("dataframe", "chart",
                                                                "download_button"),
                "series": ("chart", "code"), "records": ("dataframe", "chart",
                                                         "download_button"),
                "mapping": ("chart", "dataframe"), "json": ("json",)}[kind]
    present = {"code": bool(at.code), "text": bool(at.text), "dataframe": bool(at.dataframe),
               "chart": bool(charts), "download_button": bool(at.get("download_button")),
               "json": bool(at.json)}
    assert {k for k, v in present.items() if v} == set(expected)


def test_a_result_naming_a_session_file_is_a_download(tmp_path):
    (tmp_path / "out.txt").write_text("made by a tool")

    def show(folder):
        from pathlib import Path

        import streamlit as st

        from ui.render import render_result

        st.caption(render_result("out.txt", "f", Path(folder)))
        st.caption(render_result("../escape.txt", "g", Path(folder)))

    at = AppTest.from_function(show, args=(str(tmp_path),)).run()
    assert [c.value for c in at.caption] == ["file", "text"]
    assert at.get("download_button")[0].proto.label == "Download out.txt"


def test_workflows_page_lists_the_learned_workflow(app):
    at = ask(app(), "convert 100 degrees Fahrenheit to Celsius, then to Kelvin")
    assert "100 °F is 37.78 °C, which is 310.93 K." in texts(at)
    at.switch_page("views/workflows.py").run()
    assert not at.exception, at.exception
    labels = [e.label for e in at.expander]
    expected = label("fahrenheit_to_celsius → celsius_to_kelvin · used 1× · success 100%")
    assert any(expected in shown for shown in labels), labels
    assert [b.label for b in at.button if b.label == "Promote now"] == ["Promote now"]
    assert "convert 100 degrees Fahrenheit to Celsius, then to Kelvin" in texts(at)
