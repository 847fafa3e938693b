"""The library page: search it, and per tool try it, roll it back, retire it, read its story.

Trying a tool builds a form from its JSON schema and calls the tool's current version in
the sandbox with the session's uploaded files, as a turn would; a try is not counted in the
tool's usage. Each version shows its diff, tests and verification report; executions are
summed per version (success and latency).
"""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from nodes.decide import preview
from nodes.kit import services
from sandbox.reports import mutation_line
from tools_store.errors import BadQuery
from tools_store.models import ToolRecord, check_arguments

from . import backend
from .render import label, render_result
from .sessions import current_session


def rate_text(record: ToolRecord) -> str:
    """Describe a tool's success honestly: an experimental tool's runs are not checked."""
    if record.success_rate is None:
        runs = "not run yet"
    else:
        runs = f"{record.successes}/{record.uses} runs without an error"
    if record.status != "experimental":
        return runs
    tests = record.report.get("tests") or []
    passed = sum(t.get("outcome") == "passed" for t in tests)
    return (f"{runs}; not verified: passed {passed} of {len(tests)} of its own tests, so "
            "a run without an error may still be wrong")


def argument_field(name: str, schema: dict, required: bool, key: str):
    """Show one form field for an argument; return its value (None when left empty)."""
    kind = schema.get("type", "string")
    text = name + ("" if required else " (optional)")
    hint = label(schema.get("description") or kind) or None
    if kind == "boolean":  # starts at the tool's default, so leaving it alone keeps it
        return st.checkbox(text, value=schema.get("default") is True, key=key, help=hint)
    if kind in ("integer", "number"):
        return st.number_input(text, value=None, step=1 if kind == "integer" else None,
                               key=key, help=hint)
    if kind == "string":
        return st.text_input(text, key=key, help=hint) or None
    raw = st.text_area(f"{text} — JSON {kind}", key=key, help=hint)
    try:
        return json.loads(raw) if raw.strip() else None
    except RecursionError:
        raise ValueError("nested too deeply") from None


def try_form(record: ToolRecord) -> None:
    """Show a form built from the tool's JSON schema; run the call in the sandbox."""
    schema = record.spec.arguments_schema()
    with st.form(f"try-{record.name}"):
        values = {}
        problems = []
        defaults = {p.name: p.default for p in record.spec.parameters}
        for name, prop in schema["properties"].items():
            required = name in schema["required"]
            prop = {**prop, "default": defaults.get(name)}
            try:
                value = argument_field(name, prop, required, f"arg-{record.name}-{name}")
            except ValueError as exc:
                problems.append(f"{name}: not JSON ({exc})")
                continue
            if not required and prop["type"] == "boolean" and value is (prop["default"] is True):
                continue  # left as it was: the tool's own default applies
            if value is not None:
                values[name] = int(value) if prop.get("type") == "integer" else value
            elif required and prop.get("type") != "boolean":
                problems.append(f"{name} is required")
        if not st.form_submit_button(f"Run {record.name} v{record.version}"):
            return
    if not problems:
        try:  # the same check as every other call: types, unknown and missing arguments
            values = check_arguments(values, record.spec)
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        st.error(label("; ".join(problems)))
        return
    agent = backend.agent()
    sandbox = services.sandbox(agent.context.sandbox_backend, agent.context.sandbox_pool)
    call = sandbox.call(record.code, record.name, values,
                        files=backend.session_files(current_session()))
    if call.ok:
        st.success(f"Returned in {call.duration:.2f} s")
        render_result(call.result, f"try-{record.name}")
    else:
        st.error("The call failed.")
        st.text(call.describe_error())


def report_table(report: dict) -> None:
    """Show a verification report: a summary line and one row per test."""
    if not report:
        st.caption("No verification report.")
        return
    st.text(f"{report.get('status')}: {report.get('passed', 0)} passed, "
            f"{report.get('failed', 0)} failed, {report.get('errors', 0)} errors "
            f"in {report.get('duration', 0):.2f} s ({report.get('backend', '')})")
    rows = [{"test": t.get("name"), "outcome": t.get("outcome"),
             "seconds": round(t.get("duration", 0), 3), "message": t.get("message", "")[:300]}
            for t in report.get("tests") or []]
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True)


def version_tab(record: ToolRecord, versions: list[ToolRecord]) -> None:
    """Each version: its figures, the repair that made it, its diff, tests and report.

    The figures, diffs (against the version each was made from), tests and repairs come from
    the library's history, which ``sea tools show`` prints too; any version can be made the
    current one again.
    """
    library = backend.agent().library
    history = library.history(record.name)
    shown = {v["version"]: v for v in history["versions"]}
    st.dataframe(pd.DataFrame([{
        "version": v["version"], "status": v["status"], "reason": v["reason"],
        "current": v["current"], "made from": v["parent"], "uses": v["uses"],
        "success": v["success_rate"], "p50 s": v["p50_latency_s"],
        "tests added": ", ".join(t["name"] for t in v["tests"] if t["added_in"] == v["version"]),
        "created": v["created_at"][:19], "code": v["code_hash"]} for v in history["versions"]]),
        hide_index=True)
    if history["events"]:
        st.dataframe(pd.DataFrame(history["events"]), hide_index=True)
    numbers = [v.version for v in versions]
    chosen = st.selectbox("Version", numbers, index=numbers.index(record.version),
                          key=f"version-{record.name}")
    picked, story = versions[numbers.index(chosen)], shown[chosen]
    if story["failure"]:
        st.text(f"Failure that led to v{chosen}: {story['failure'].get('message', '')} "
                f"(arguments {json.dumps(story['failure'].get('arguments'))})")
    for reflection in story["reflections"]:
        st.text(f"Reflection ({reflection['kind']} {reflection['attempt']}): "
                f"{reflection['note'] or '-'}")
    if picked.parent is not None:
        st.code(story["diff"] or "(same code)", language="diff")
    else:
        st.code(picked.code, language="python")
    with st.expander(f"v{chosen}: tests"):
        st.dataframe(pd.DataFrame(story["tests"]), hide_index=True)
        st.code(picked.tests, language="python")
    with st.expander(f"v{chosen}: verification report"):
        report_table(picked.report)
    if chosen != record.version and st.button(f"Roll back to v{chosen}",
                                              key=f"rollback-{record.name}"):
        library.rollback(record.name, chosen, reason="from the app's library page")
        st.toast(f"{record.name} is now at v{chosen}")
        st.rerun()


def executions_tab(name: str) -> None:
    """Show executions summed per version (runs, success, latency), then the latest."""
    rows = backend.agent().library.executions(name, limit=500)
    if not rows:
        st.caption("Not run yet.")
        return
    frame = pd.DataFrame(rows)
    stats = frame.groupby("version").agg(runs=("id", "count"), succeeded=("success", "sum"),
                                         p50_seconds=("duration", "median"),
                                         max_seconds=("duration", "max")).reset_index()
    stats["success_rate"] = (stats["succeeded"] / stats["runs"]).round(2)
    st.dataframe(stats.round(3), hide_index=True)
    latest = frame.head(20)
    st.dataframe(pd.DataFrame({
        "when": latest["created_at"].astype(str).str[:19], "version": latest["version"],
        "ok": latest["success"], "seconds": latest["duration"].round(3),
        "inputs": latest["inputs"].map(json.dumps), "output": latest["output"].map(json.dumps),
        "error": latest["error"], "request": latest["request"], "source": latest["source"],
        "marked wrong": latest["marked_wrong"], "feedback": latest["feedback"]}),
        hide_index=True)


def reflections_tab(name: str) -> None:
    """Show what failed before each repair."""
    rows = backend.agent().library.reflections(name)
    if not rows:
        st.caption("No reflections: every implementation passed at once.")
        return
    st.dataframe(pd.DataFrame([{
        "kind": r["kind"], "on version": r["version"], "attempt": r["attempt"],
        "failing tests": ", ".join(
            str(t.get("name", "")) for t in r["failing_tests"]),
        "note": r["note"], "when": str(r["created_at"])[:19]} for r in rows]), hide_index=True)


def tool_panel(record: ToolRecord) -> None:
    """Everything about one tool, and what can be done with it."""
    library = backend.agent().library
    st.text(record.spec.description)
    st.code(record.spec.signature(), language="python")
    versions = library.versions(record.name)
    tabs = st.tabs(["Try it", "Code", "Tests", "Verification", "Versions", "Executions",
                    "Reflections"])
    with tabs[0]:
        try_form(record)
    tabs[1].code(record.code, language="python")
    tabs[2].code(record.tests, language="python")
    with tabs[3]:
        report_table(record.report)
    with tabs[4]:
        version_tab(record, versions)
    with tabs[5]:
        executions_tab(record.name)
    with tabs[6]:
        reflections_tab(record.name)
    if st.button("Retire", key=f"retire-{record.name}", icon=":material/delete:",
                 help="no longer found or offered; its history is kept"):
        library.remove(record.name, reason="retired from the app's library page")
        st.rerun()


def library_page() -> None:
    """Search the library; list its tools; open one to act on it; restore a retired one."""
    library = backend.agent().library
    query = st.text_input("Search the library")
    if query.strip():
        try:
            result = library.search(query)
        except BadQuery as exc:  # the search is refused; the page and its tools stay
            st.error(label(f"Not searched: {exc}."))
        else:
            decision, _, reason, *_ = preview(result)
            st.text(f"Decision: {decision} — {reason}")
            st.dataframe(pd.DataFrame([{"tool": c.name, "similarity": c.similarity,
                                        "score": c.score, "conflict": c.conflict}
                                       for c in result.candidates]), hide_index=True)
    tools = library.list_tools(include_retired=True)
    active = [t for t in tools if t.status != "retired"]
    st.subheader(f"{len(active)} tool{'' if len(active) == 1 else 's'}")
    if not active:
        st.info("No tools yet: ask for something in the chat.")
    else:
        st.dataframe(pd.DataFrame([{
            "tool": t.name, "version": t.version, "status": t.status, "uses": t.uses,
            "success": rate_text(t), "description": t.spec.description} for t in active]),
            hide_index=True)
        names = [t.name for t in active]
        chosen = st.selectbox("Open a tool", names, key="tool")
        record = active[names.index(chosen)]
        st.subheader(f"{record.name} v{record.version} · {record.status}")
        st.caption(label(f"used {record.uses}× · {rate_text(record)}"))
        st.caption(label(mutation_line(record.report)))
        tool_panel(record)
    retired = [t for t in tools if t.status == "retired"]
    if retired:
        st.subheader(f"{len(retired)} retired")
        for record in retired:
            if st.button(f"Restore {record.name} v{record.version}",
                         key=f"restore-{record.name}"):
                library.rollback(record.name, record.version,
                                 reason="restored from the app's library page")
                st.rerun()
