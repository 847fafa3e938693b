"""How a turn looks: its trace, its badge, its answer and its result shown as what it is.

Text that came from a user, a model or a tool is shown as text (``st.text``, ``st.code``,
tables, JSON), never as Markdown, so it cannot make links or images (an image would be
fetched by the browser). Labels of widgets accept some Markdown, so text that goes into one
is escaped first (``label``).
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pandas as pd
import streamlit as st

STEP_LABELS = {"warm-up": "Start-up", "enrich": "Context", "plan": "Plan", "retrieve": "Search",
               "decide": "Decision", "spec": "Specification", "tests": "Tests",
               "impl": "Implementation", "verify": "Sandbox", "reflect": "Reflection",
               "strengthen": "Strengthening",
               "register": "Registration", "execute": "Execution", "answer": "Answer",
               "feedback": "Feedback", "gate": "Repair gate", "learn": "Learning"}
# Token usage is counted per model call: the execute step's call extracts the arguments.
USAGE_LABELS = {"plan": "Plan", "judge": "Judge", "spec": "Specification", "tests": "Tests",
                "impl": "Implementation", "reflect": "Reflection", "repair": "Repair",
                "args": "Arguments", "answer": "Answer"}
# badge: (label, colour, icon)
BADGES = {"reused": ("Reused", "blue", ":material/recycling:"),
          "built": ("Built", "green", ":material/construction:"),
          "repaired": ("Repaired", "violet", ":material/build:"),
          "experimental": ("Experimental", "orange", ":material/science:"),
          "failed": ("Failed", "red", ":material/error:"),
          "interrupted": ("Interrupted", "gray", ":material/stop_circle:"),
          "answered": ("Answered", "gray", ":material/chat:")}
NO_REPLY = "the scripted model has no recorded reply"
OFF_SCRIPT = ("This demo replays recorded replies only, and this request is not one it was "
              "recorded for, so it has no answer. Try one of the demo's requests.")
STOPPED = "You stopped this turn before it finished."
FAILED = "Sorry, I could not complete this."
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")


def label(text: str) -> str:
    """Escape every Markdown character of ``text`` for a widget label (links, images...)."""
    return _PUNCTUATION.sub(r"\\\1", " ".join(str(text).split()))


def badge_of(turn: dict) -> str:
    """Return the badge of a finished turn: what the agent did, or how it ended."""
    if turn.get("status") == "interrupted":
        return "interrupted"
    if turn.get("status") == "failed" or turn.get("error"):
        return "failed"
    if turn.get("tool_status") == "experimental":
        return "experimental"
    if turn.get("decision") == "reuse" and turn.get("tool"):
        return "reused"
    if turn.get("tool"):
        route = turn.get("route") or []  # fixed while built, or repaired in use by the gate
        return "repaired" if "reflect" in route or "gate" in route else "built"
    return "answered"


def show_badge(kind: str) -> None:
    """Show a badge."""
    text, color, icon = BADGES[kind]
    st.badge(text, color=color, icon=icon)


def step_label(step: str) -> str:
    """Return the person's name of a step."""
    return STEP_LABELS.get(step, step)


def event_line(item: dict) -> str:
    """Return one progress event as one line of text."""
    mark = "✖ " if item.get("level") == "error" else ""
    return f"{mark}{step_label(item.get('step', ''))} — {item.get('message', '')}"


def render_events(events: list[dict], scope: str) -> None:
    """Show progress events as text, with their code, tests and failures openable.

    Code is sent to the page only while its expander is open: highlighting every closed
    block was the largest part of the browser's work during a first request (0.44 s of
    the page's 1.2-1.5 s), and every page run repeated it. ``scope`` (session and turn) keeps the
    expanders' keys apart, and the same while the turn runs and after it.
    """
    for index, item in enumerate(events):
        st.text(event_line(item))
        name = step_label(item.get("step", ""))
        for key in ("tests", "code"):
            if item.get(key):
                with st.expander(f"{name}: {key}", key=f"source-{scope}-{index}-{key}",
                                 on_change="rerun") as box:
                    if box.open:
                        st.code(item[key], language="python")
        for failure in (item.get("failures") or [])[:5]:
            st.text(f"failed: {failure.get('name', '')}")
            st.code(str(failure.get("message", ""))[-600:], language="text")


def usage_line(usage: dict) -> str:
    """Return a turn's token usage in one line."""
    order = list(USAGE_LABELS)
    per_step = sorted(((step, counts.get("total_tokens", 0))
                       for step, counts in (usage or {}).items()),
                      key=lambda item: order.index(item[0]) if item[0] in order else 99)
    if not per_step:
        return ""
    parts = ", ".join(f"{USAGE_LABELS.get(s, s)} {n}" for s, n in per_step)
    total = sum(n for _, n in per_step)
    return f"{total} tokens ({parts})"


def friendly_error(error: str) -> str:
    """Return the plain sentence a failed or stopped turn starts with."""
    if NO_REPLY in error:
        return OFF_SCRIPT
    if error.startswith("stopped"):
        return STOPPED
    return FAILED


# -- results --------------------------------------------------------------------------------


def csv_table(text: str) -> pd.DataFrame | None:
    """Return CSV text as a table, or None when ``text`` is not a table of two columns+."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if len(lines) < 2:
        return None
    rows = list(csv.reader(lines))
    if len(rows[0]) < 2 or any(len(row) != len(rows[0]) for row in rows):
        return None
    return pd.read_csv(io.StringIO("\n".join(lines)))


def session_file(value, folder: Path | None) -> Path | None:
    """Return the session's file a result names (a path or a name in its folder), if any."""
    if folder is None or not isinstance(value, str) or not value.strip() or "\n" in value:
        return None
    try:
        root = folder.resolve()
        path = Path(value.strip())
        path = (path if path.is_absolute() else root / path).resolve()
    except (OSError, ValueError):
        return None
    return path if path.is_file() and path.is_relative_to(root) else None


def _chart(frame: pd.DataFrame) -> None:
    numeric = frame.select_dtypes("number")
    if numeric.empty or len(frame) < 2:
        return
    labels = [c for c in frame.columns if c not in numeric.columns]
    if len(labels) == 1:
        st.bar_chart(frame.set_index(labels[0])[list(numeric.columns)])
    else:
        st.line_chart(numeric)


def _table(frame: pd.DataFrame, key: str, csv_text: str | None = None) -> None:
    st.dataframe(frame, hide_index=True)
    _chart(frame)
    data = csv_text if csv_text is not None else frame.to_csv(index=False)
    st.download_button("Download CSV", data.encode(), file_name=f"result-{key}.csv",
                       mime="text/csv", key=f"csv-{key}", on_click="ignore")


def render_result(result, key: str, folder: Path | None = None) -> str:
    """Show a tool's result as what it is; return the kind shown (tests read it).

    Kinds: ``file`` (a download), ``csv`` and ``records`` (a table, a chart when numeric,
    a download), ``series`` and ``mapping`` (numbers: a chart and a table), ``value``,
    ``text``, ``json``.
    """
    if result is None:
        return "none"
    path = session_file(result, folder)
    if path is not None:
        st.download_button(f"Download {path.name}", path.read_bytes(), file_name=path.name,
                           key=f"file-{key}", on_click="ignore")
        return "file"
    if isinstance(result, str):
        frame = csv_table(result)
        if frame is not None:
            _table(frame, key, result)
            return "csv"
        st.text(result)
        return "text"
    if isinstance(result, (bool, int, float)):
        st.code(json.dumps(result), language=None)
        return "value"
    if isinstance(result, list) and result and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) for x in result):
        st.line_chart(pd.DataFrame({"value": result}))
        st.code(json.dumps(result), language=None)
        return "series"
    if isinstance(result, list) and result and all(isinstance(x, dict) for x in result):
        _table(pd.DataFrame(result), key)
        return "records"
    if isinstance(result, dict) and result and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in result.values()):
        frame = pd.DataFrame({"key": list(result), "value": list(result.values())})
        st.bar_chart(frame.set_index("key"))
        st.dataframe(frame, hide_index=True)
        return "mapping"
    st.json(result, expanded=False)
    return "json"
