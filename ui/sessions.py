"""Sessions: the one in use (kept in the URL), the owner's list, renaming and deleting.

A session's title is its first request; the list is read afresh on every run of the page,
so it is up to date after each turn.
"""

from __future__ import annotations

from datetime import datetime

import streamlit as st

from graph.runner import new_session_id
from tools_store.sessions import check_session_id

from . import backend
from .auth import signed_in
from .render import label


def current_session() -> str:
    """Return the session in use: the URL's (if this owner's), else a new one."""
    session = st.query_params.get("session") or st.session_state.get("session")
    problem = ""
    if session:
        try:
            check_session_id(session)
        except ValueError as exc:  # an address edited by hand
            problem = f"The address names no session ({exc}): a new one was started."
    if session and not problem and backend.turn_log().owner_of(session) not in (
            None, signed_in()):
        problem = "That session belongs to someone else: a new one was started."
    if not session or problem:
        if problem:
            st.warning(problem)
        session = new_session_id()
    st.session_state["session"] = session
    st.query_params["session"] = session
    return session


def switch_to(session: str) -> None:
    """Make ``session`` the one in use and show it."""
    st.session_state["session"] = session
    st.query_params["session"] = session


def when(moment: datetime | None) -> str:
    """Return a date as a person reads it."""
    return moment.astimezone().strftime("%d %b %H:%M") if moment else ""


def sidebar() -> None:
    """Show the New session button and the owner's sessions, the current one marked."""
    current = current_session()
    if st.sidebar.button("New session", icon=":material/add:", key="new-session"):
        switch_to(new_session_id())
        st.switch_page(st.session_state["chat_page"])
    st.sidebar.caption("Sessions")
    listed = backend.turn_log().sessions(signed_in())
    if not listed:
        st.sidebar.caption("No sessions yet.")
    for item in listed:
        mine = item["session_id"] == current
        text = f"{label(item['title'] or '(untitled)')} · {when(item['updated_at'])}"
        if st.sidebar.button(text, key=f"s-{item['session_id']}",
                             type="secondary" if mine else "tertiary",
                             icon=":material/chevron_right:" if mine else None,
                             help="the current session" if mine else None,
                             use_container_width=True):
            switch_to(item["session_id"])
            st.switch_page(st.session_state["chat_page"])


def sessions_page() -> None:
    """List the owner's sessions with their dates; rename, open or delete each."""
    current = current_session()
    listed = backend.turn_log().sessions(signed_in())
    st.subheader(f"{len(listed)} session{'' if len(listed) == 1 else 's'}")
    if not listed:
        st.info("No sessions yet: ask for something in the chat.")
    for item in listed:
        sid = item["session_id"]
        with st.container(border=True):
            head = f"{item['turns']} turns · started {when(item['created_at'])} · last used " \
                   f"{when(item['updated_at'])}"
            st.caption(label(head) + (" · **current**" if sid == current else ""))
            title, save, open_, delete = st.columns([6, 1, 1, 1], vertical_alignment="bottom")
            new_title = title.text_input("Title", value=item["title"], key=f"title-{sid}",
                                         max_chars=80)
            if save.button("Rename", key=f"rename-{sid}"):
                try:
                    backend.turn_log().rename(sid, new_title)
                    st.rerun()
                except ValueError as exc:
                    st.error(label(f"Not renamed: {exc}."))
            if open_.button("Open", key=f"open-{sid}"):
                switch_to(sid)
                st.switch_page(st.session_state["chat_page"])
            busy = bool(backend.runs().pending(sid))
            if delete.button("Delete", key=f"delete-{sid}", disabled=busy,
                             help="a turn is running" if busy else None):
                backend.delete_session(sid)
                if sid == current:
                    switch_to(new_session_id())
                st.rerun()
