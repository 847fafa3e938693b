"""What every page of the app shares, made once per process: the agent, the turn registry.

The embedding model, the model and the sandbox's warm pool load in the background as soon
as the first page is served; a turn that comes before they are ready says it is waiting.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import streamlit as st

from graph.resident import ResidentServer
from graph.resident import enabled as resident_enabled
from graph.runner import Agent
from sandbox.doctor import doctor
from tools_store.db import sea_home
from tools_store.sessions import UNSAFE_CHARS, safe_session
from tools_store.turns import TurnLog

from .runs import Runs, warm_up


@st.cache_resource(show_spinner="Starting the agent (database, tool library)...")
def agent() -> Agent:
    """Return the process's agent, shared by every browser session."""
    made = Agent()  # every setting from the environment (and .env), as the CLI and Studio
    try:  # `sea ask` elsewhere reuses this warm agent
        made.resident = ResidentServer(made) if resident_enabled() else None
    except OSError:
        made.resident = None  # another agent already serves this data directory
    return made


@st.cache_resource(show_spinner=False)
def runs() -> Runs:
    """Return the process's turn registry; start loading what a first request needs."""
    shared = agent()
    library = shared.library
    ready = threading.Event()
    threading.Thread(target=warm_up, args=(shared, ready), daemon=True,
                     name="warm-up").start()
    return Runs(shared, TurnLog(library.url, library.schema), ready)


def turn_log() -> TurnLog:
    """Return the log of sessions and turns."""
    return runs().log


@st.cache_data(ttl=600, show_spinner="Checking the sandbox backends...")
def sandbox_check() -> dict:
    """Return the sandbox doctor's report, checked at most every ten minutes."""
    return doctor()


def session_dir(session: str) -> Path:
    """Return the folder that keeps a session's uploaded files, always inside the sessions'.

    A session id is any text from the URL: it names a folder only through ``safe_session``
    (``../x`` must not reach another session's files, or outside the data directory).
    """
    root = sea_home() / "sessions"
    earlier = root / session
    # An earlier version named the folder by the id itself. Such a folder is kept for an id
    # that is one name (pathlib reads "s/" or "./s" as "s") holding a character no safe
    # name holds (so no other id's folder has that name).
    if earlier.name == session and UNSAFE_CHARS.search(session) and earlier.is_dir():
        return earlier
    return root / safe_session(session)


def session_files(session: str) -> list[str]:
    """Return the paths of the files uploaded to a session, by name."""
    folder = session_dir(session)
    return sorted(str(p) for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []


def delete_session(session: str) -> None:
    """Forget a session: its turns, checkpoints, data items, memory and files."""
    turn_log().delete(session)
    agent().checkpointer.delete_thread(session)
    agent().library.sessions.delete(session)
    shutil.rmtree(session_dir(session), ignore_errors=True)
