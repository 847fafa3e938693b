"""The Streamlit app: a chat whose turns keep their story, the tool library, sessions, settings.

Pages are thin scripts in ``ui/views/`` served with ``st.navigation`` (not ``pages/``: a
folder of that name beside the main script is Streamlit's older multipage convention, which
AppTest then runs instead of this script); their code is in
``ui/chat.py``, ``ui/library_page.py``, ``ui/sessions.py``, ``ui/workflows_page.py`` and
``ui/settings.py``. Turns run
in the app's own worker threads (``ui/runs.py``), so they outlive a page; pages read them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `streamlit run ui/app.py`
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from graph.runner import SCRIPTED_BANNER  # noqa: E402
from ui import backend  # noqa: E402
from ui.auth import signed_in  # noqa: E402
from ui.sessions import sidebar  # noqa: E402


def main() -> None:
    """Lay out the app."""
    st.set_page_config(page_title="Self-engineering agent", page_icon="🛠️", layout="wide")
    signed_in()
    try:
        agent = backend.agent()
        backend.runs()
    except Exception as exc:  # a database or a library that is down: a message, not a trace
        st.error("The agent could not start.")
        st.text(f"{type(exc).__name__}: {exc}")
        return
    if agent.scripted:
        st.warning(SCRIPTED_BANNER, icon="🎞️")
    here = Path(__file__).parent / "views"
    chat = st.Page(here / "chat.py", title="Chat", icon=":material/chat:", default=True)
    st.session_state["chat_page"] = chat
    page = st.navigation([
        chat,
        st.Page(here / "library.py", title="Library", icon=":material/build:"),
        st.Page(here / "sessions.py", title="Sessions", icon=":material/history:"),
        st.Page(here / "workflows.py", title="Workflows", icon=":material/account_tree:"),
        st.Page(here / "settings.py", title="Settings", icon=":material/settings:")])
    try:
        sidebar()
        page.run()
    except Exception as exc:  # errors are messages, never a Streamlit traceback
        st.error("Something went wrong on this page.")
        st.text(f"{type(exc).__name__}: {exc}")


main()
