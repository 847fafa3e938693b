"""The chat page: every turn with its story, the running one live, files in and out.

Finished turns come from the turn log, so a rerun or a reload shows each one again with its
badge, answer, result and collapsed trace. Queued and running turns come from the process's
registry; a fragment polls it, so a reloaded page re-attaches to a running turn.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import streamlit as st

from graph.runner import wrong_answer_request
from nodes.enrich import MAX_REQUEST_CHARS
from nodes.kit.model import load_chat_model
from tools_store.errors import LibraryError
from tools_store.sessions import UNSAFE_CHARS
from tools_store.text import check_storable

from . import backend
from .auth import signed_in
from .render import (
    NO_REPLY,
    OFF_SCRIPT,
    STOPPED,
    badge_of,
    friendly_error,
    label,
    render_events,
    render_result,
    show_badge,
    step_label,
    usage_line,
)
from .runs import Run
from .sessions import current_session

POLL_SECONDS = 0.3
NAME_CHARS = 100  # an uploaded file's name, well within any file system's limit
PLACEHOLDER = (f"Ask for something a small Python tool could do (up to {MAX_REQUEST_CHARS} "
               "characters; attach files for it to read)")
ABOUT = ("This agent answers by running small Python tools: it reuses one from its library "
         "or writes a new one (a spec, tests, then code that must pass them in a sandbox), "
         "registers it and runs it.")


def known_requests() -> list[str]:
    """Return the requests the scripted demo was recorded for (none for a real model)."""
    agent = backend.agent()
    if not agent.scripted:
        return []
    return load_chat_model(agent.context.model).known_requests()


def save_uploads(session: str, files) -> list[str]:
    """Copy uploaded files into the session's folder; return their names.

    Names become safe and at most NAME_CHARS long (extension kept); two files of one message
    that come out the same get -2, -3, ... rather than one overwriting the other.
    """
    folder = backend.session_dir(session)
    folder.mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    for upload in files or []:
        name = UNSAFE_CHARS.sub("_", Path(upload.name).name).lstrip(".") or "upload"
        if name in ("tool.py", "test_tool.py", "conftest.py"):
            name = "upload_" + name
        stem, suffix = Path(name).stem, Path(name).suffix[:16]
        unique, count = f"{stem[:NAME_CHARS - len(suffix)]}{suffix}", 1
        while unique in names:
            count += 1
            unique = f"{stem[:NAME_CHARS - len(suffix) - 4]}-{count}{suffix}"
        (folder / unique).write_bytes(upload.getvalue())
        names.append(unique)
    return names


def queue(session: str, request: str, feedback: dict | None = None) -> None:
    """Queue a turn with the session's files (a refusal is shown on the page)."""
    try:
        backend.runs().submit(session, signed_in(), request, backend.session_files(session),
                              feedback)
    except (PermissionError, ValueError, LibraryError) as exc:
        st.session_state["submit_error"] = str(exc)


def submit(session: str, request: str, feedback: dict | None = None) -> None:
    """Queue a turn from a button and show it (the page above the button is drawn already)."""
    queue(session, request, feedback)
    st.rerun()


def take_input(session: str) -> None:
    """Queue what the chat input sent, before the page is drawn, so this run shows it.

    Read from the session state, not the widget: a tab that showed the input before a turn
    started may still send a question, and the widget, disabled now, returns nothing; it is
    queued, not lost.
    """
    value = st.session_state.get("request")
    if value and (value.text.strip() or value.files):
        try:  # refused before its files are kept
            check_storable("request", value.text)
        except ValueError as exc:
            st.session_state["submit_error"] = f"Not sent: {exc}"
            return
        names = save_uploads(session, value.files)
        queue(session, value.text.strip() or f"read {', '.join(names)}")


def suggestions(session: str, key: str) -> None:
    """Offer the demo's requests as buttons."""
    for index, request in enumerate(known_requests()):
        if st.button(label(request), key=f"{key}-{index}", icon=":material/play_arrow:"):
            submit(session, request)


def empty_chat(session: str) -> None:
    """Say what the app does and, for the demo, what it can be asked."""
    st.caption(ABOUT)
    if known_requests():
        st.caption("The demo knows these requests:")
        suggestions(session, "suggest")


def render_turn(turn: dict, session: str, last: bool) -> None:
    """Show one finished turn: the request, then the answer with its story."""
    with st.chat_message("user"):
        st.text(turn["request"])
        if turn["input_files"]:
            st.caption(label("files: " + ", ".join(turn["input_files"])))
    with st.chat_message("assistant"):
        if turn["status"] in ("queued", "running"):
            st.info("This turn is being started.")
            return
        kind = badge_of(turn)
        show_badge(kind)
        if turn["tool"]:
            st.caption(label(f"{turn['tool']} v{turn['version']} ({turn['tool_status']})"))
        if kind in ("failed", "interrupted"):
            sentence = friendly_error(turn["error"])
            st.error(sentence)
            if sentence not in (OFF_SCRIPT, STOPPED):
                st.text(turn["error"])
            if NO_REPLY in turn["error"]:  # the same request would fail again: offer others
                if last:
                    suggestions(session, f"retry-suggest-{turn['turn']}")
            elif st.button("Retry", key=f"retry-{turn['turn']}", icon=":material/replay:"):
                submit(session, turn["request"])
        else:
            if kind == "experimental":
                # The answer says why (failing tests, or a suite too weak to trust).
                st.warning(label(f"{turn['tool']} is experimental: it is not verified, so "
                                 "check this result."))
            st.text(turn["answer"])
            render_result(turn["result"], f"{session}-{turn['turn']}",
                          backend.session_dir(session))
            if last and turn["tool"]:
                thumbs_down(session, turn["turn"])
        usage = usage_line(turn["usage"])
        if usage:
            st.caption(usage)  # step names and numbers only
        steps = len(turn["route"])
        with st.expander(f"Trace: {steps} steps, {len(turn['events'])} events"):
            if turn["arguments"] is not None:
                st.text("Arguments: " + json.dumps(turn["arguments"]))
            render_events(turn["events"], f"{session}-{turn['turn']}")


def thumbs_down(session: str, turn: int) -> None:
    """Offer a thumbs-down on the last answer; one repairs the tool that gave it (a turn)."""
    note = f"note-{session}-{turn}"
    st.text_input("Wrong answer? Say what was wrong (optional), then 👎", key=note)
    # The run that gave the answer shown: the session's last, as no turn of it is running
    # (else no thumbs-down is offered). Bound now, when the answer is drawn: a click in a
    # tab drawn before another tab's repair must not judge the repaired answer.
    try:
        seen = (backend.agent().library.last_execution(session) or {}).get("id")
    except LibraryError:  # the database is down: the repair turn says so itself
        seen = None
    # A callback runs once per click: a refused turn shows its reason, it is not retried.
    st.feedback("thumbs", key=f"verdict-{session}-{turn}", on_change=mark_wrong,
                args=(session, turn, note, seen))


def mark_wrong(session: str, turn: int, note_key: str, seen: int | None) -> None:
    """Queue the turn a thumbs-down asks for (the thumbs-up does nothing)."""
    if st.session_state.get(f"verdict-{session}-{turn}") == 0:
        note = st.session_state.get(note_key) or ""
        queue(session, wrong_answer_request(note), feedback={"note": note, "execution": seen})


def render_run(run: Run) -> None:
    """Show a queued or running turn as it goes."""
    with st.chat_message("user"):
        st.text(run.request)
    with st.chat_message("assistant"):
        if run.status == "queued":
            st.info("Queued: it runs when the turn before it has finished.")
            st.button("Cancel", key=f"cancel-{run.turn}", disabled=run.stopping,
                      on_click=run.stop)
            return
        current = step_label(run.current) if run.current else "Starting"
        with st.container(border=True):
            if not run.done.is_set():
                st.text(f"⏳ {current} — running for {time.time() - run.step_started:.1f} s")
            render_events(run.events, f"{run.session}-{run.turn}")
        if run.stopping:
            st.caption("Stopping after the current step...")
        else:
            st.button("Stop", key=f"stop-{run.turn}", icon=":material/stop:", on_click=run.stop)


@st.fragment(run_every=POLL_SECONDS)
def live(session: str, shown: tuple[int, ...]) -> None:
    """Follow the session's queued and running turns; rerun the page when that set changes."""
    pending = backend.runs().pending(session)
    if tuple(run.turn for run in pending) != shown:
        # A turn ended (or came): show what ended at once, then let the whole page show
        # everything as it is now (the input is enabled again only by the page).
        ended = set(shown) - {run.turn for run in pending}
        try:
            for turn in backend.turn_log().turns(session):
                if turn["turn"] in ended and turn["status"] not in ("queued", "running"):
                    render_turn(turn, session, last=False)
        finally:  # whatever the early view met, the page is drawn again (and shows it)
            st.rerun()
    for run in pending:
        render_run(run)


def chat_page() -> None:
    """Show the conversation, the running turn, and the input."""
    session = current_session()
    take_input(session)
    turns = backend.turn_log().turns(session)
    pending = backend.runs().pending(session)
    shown = tuple(run.turn for run in pending)
    if not turns:
        empty_chat(session)
    finished = [t for t in turns if t["turn"] not in shown]
    for index, turn in enumerate(finished):
        render_turn(turn, session, last=index == len(finished) - 1 and not pending)
    # A turn recorded but not yet (or no longer) in the registry is caught by the next poll.
    if pending or any(t["status"] in ("queued", "running") for t in finished):
        live(session, shown)
    if "submit_error" in st.session_state:
        st.error(label(st.session_state.pop("submit_error")))
    # What it sends is read at the top of the next run (``take_input``).
    st.chat_input(PLACEHOLDER, max_chars=MAX_REQUEST_CHARS, accept_file="multiple",
                  disabled=bool(pending), key="request")
