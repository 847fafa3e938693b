"""The Streamlit chat app: chat with live progress, the tool library, sessions, settings."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `streamlit run ui/app.py`
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from graph.resident import ResidentServer  # noqa: E402
from graph.resident import enabled as resident_enabled  # noqa: E402
from graph.runner import (  # noqa: E402
    SCRIPTED_BANNER,
    Agent,
    new_session_id,
    wrong_answer_request,
)
from nodes.answer import why_experimental  # noqa: E402
from nodes.decide import preview  # noqa: E402
from sandbox.doctor import doctor  # noqa: E402
from sandbox.reports import mutation_line  # noqa: E402
from ui.policy_settings import policy_section  # noqa: E402

STEP_LABELS = {"enrich": "Context", "plan": "Plan", "retrieve": "Search", "decide": "Decision",
               "spec": "Specification", "tests": "Tests", "impl": "Implementation",
               "verify": "Sandbox", "reflect": "Reflection", "strengthen": "Strengthening",
               "register": "Registration",
               "execute": "Execution", "answer": "Answer", "feedback": "Feedback",
               "gate": "Repair gate"}


@st.cache_resource(show_spinner="Starting the agent (database, embeddings, sandbox)...")
def get_agent() -> Agent:
    """Return the process's agent, shared by every browser session."""
    agent = Agent()  # every setting from the environment (and .env), as the CLI and Studio
    try:  # `sea ask` elsewhere reuses this warm agent
        agent.resident = ResidentServer(agent) if resident_enabled() else None
    except OSError:
        agent.resident = None  # another agent already serves this data directory
    return agent


def current_session() -> str:
    """Return the session in the URL, creating one if there is none."""
    session = st.query_params.get("session")
    if not session:
        session = new_session_id()
        st.query_params["session"] = session
    return session


def render_event(container, item: dict) -> None:
    """Show one progress event, with code and tests openable inline."""
    label = STEP_LABELS.get(item["step"], item["step"])
    text = f"**{label}** — {item['message']}"
    if item.get("level") == "error":
        container.error(text)
    else:
        container.markdown(text)
    for key, language in (("tests", "python"), ("code", "python")):
        if item.get(key):
            with container.expander(f"{label}: {'tests' if key == 'tests' else 'code'}"):
                st.code(item[key], language=language)
    failures = item.get("failures") or []
    for failure in failures[:5]:
        container.caption(f"failed: {failure['name']}")
        container.code(failure["message"][-600:], language="text")


def chat_page(agent: Agent) -> None:
    """Show the conversation, a thumbs-down for the last answer, and a turn's progress."""
    session = current_session()
    messages = agent.conversation(session)
    for message in messages:
        with st.chat_message(message["role"]):
            st.markdown(message["content"])
    request = st.chat_input("Ask for something a small Python tool could do")
    if request:
        with st.chat_message("user"):
            st.markdown(request)
        with st.chat_message("assistant"):
            show_turn(agent.stream(request, session))
        messages = agent.conversation(session)
    if messages and messages[-1]["role"] == "assistant":
        thumbs_down(agent, session, len(messages))


def thumbs_down(agent: Agent, session: str, count: int) -> None:
    """Offer a thumbs-down on the last answer; one repairs the tool that gave it."""
    note = st.text_input("Wrong answer? Say what was wrong (optional), then 👎",
                         key=f"note-{session}-{count}")
    if st.feedback("thumbs", key=f"verdict-{session}-{count}") == 0:
        with st.chat_message("user"):
            st.markdown(wrong_answer_request(note))
        with st.chat_message("assistant"):
            show_turn(agent.stream_repair(session, note))


def show_turn(items) -> None:
    """Show a turn's live progress, then its answer."""
    status = st.status("Working...", expanded=True)
    final: dict = {}
    try:
        for item in items:
            if item["kind"] == "event":
                render_event(status, item)
            elif item["kind"] == "final":
                final = item["state"]
    except Exception as exc:  # never a traceback: say what failed
        status.update(label="Failed", state="error")
        st.error(f"Something went wrong: {type(exc).__name__}: {exc}")
        return
    failed = bool(final.get("error") or final.get("failure"))
    tool = final.get("tool") or {}
    label = f"{final.get('decision', '')}: {tool.get('name', '')}".strip(": ")
    status.update(label=label or "Done", state="error" if failed else "complete",
                  expanded=False)
    if tool.get("status") == "experimental" and not failed:
        st.warning(f"{tool['name']} is experimental: "
                   f"{why_experimental(final.get('report') or {})}.")
    if failed:
        st.error(final.get("answer") or final.get("error"))
    else:
        st.markdown(final.get("answer", ""))
        if final.get("result") is not None:
            with st.expander("Raw result"):
                st.json(final.get("result"))


def library_page(agent: Agent) -> None:
    """Every tool with its versions, diffs, code, tests, last report and usage."""
    library = agent.library
    query = st.text_input("Search the library")
    if query:
        result = library.search(query)
        decision, _, reason, *_ = preview(result)
        st.write(f"Decision: **{decision}** — {reason}")
        st.dataframe([{"tool": c.name, "similarity": c.similarity, "score": c.score,
                       "conflict": c.conflict} for c in result.candidates])
    tools = library.list_tools()
    st.subheader(f"{len(tools)} tools")
    if not tools:
        st.info("No tools yet: ask for something in the chat.")
    for record in tools:
        rate = "—" if record.success_rate is None else f"{record.success_rate:.0%}"
        badge = "✅ verified" if record.status == "verified" else "⚠️ experimental"
        with st.expander(f"{record.name} v{record.version} · {badge} · used {record.uses}× "
                         f"· success {rate}"):
            st.write(record.spec.description)
            st.caption(mutation_line(record.report))
            st.code(record.spec.signature(), language="python")
            code_tab, tests_tab, report_tab, history_tab = st.tabs(
                ["Code", "Tests", "Last verification", "Versions"])
            code_tab.code(record.code, language="python")
            tests_tab.code(record.tests, language="python")
            report_tab.json(record.report)
            history = library.history(record.name)
            for version in history["versions"][1:]:
                history_tab.code(version["diff"] or "(same code)", language="diff")
            history_tab.table([{"version": v["version"], "status": v["status"],
                                "reason": v["reason"], "current": v["current"],
                                "uses": v["uses"], "success": v["success_rate"],
                                "p50 s": v["p50_latency_s"],
                                "tests added": ", ".join(t["name"] for t in v["tests"]
                                                         if t["added_in"] == v["version"])}
                               for v in history["versions"]])


def settings_page(agent: Agent) -> None:
    """Show the model, the embedding model, the sandbox and the thresholds."""
    library = agent.library
    st.write(f"**Model:** {agent.context.model}")
    st.write(f"**Embedding model:** {library.model_id}")
    st.write(f"**Sandbox backend:** {agent.context.sandbox_backend} "
             f"(warm pool: {agent.context.sandbox_pool})")
    report = doctor()
    for backend in ("docker", "bwrap"):
        info = report[backend]
        if info.get("ok"):
            st.success(f"{backend}: works")
        else:
            st.error(f"{backend}: {info.get('error')}")
    policy = library.policy()
    st.write("**Thresholds** (for this embedding model):", library.thresholds(policy))
    st.write("**Re-ranking weights:**", policy["weights"])
    st.write(f"**Reflections allowed:** {policy['max_retries']}")
    policy_section(library)


def main() -> None:
    """Lay out the app."""
    st.set_page_config(page_title="Self-engineering agent", page_icon="🛠️", layout="wide")
    try:
        agent = get_agent()
    except Exception as exc:
        st.error(f"The agent could not start: {type(exc).__name__}: {exc}")
        return
    if agent.scripted:
        st.warning(SCRIPTED_BANNER, icon="🎞️")
    with st.sidebar:
        page = st.radio("Page", ["Chat", "Library", "Settings"], key="page")
        st.divider()
        if st.button("New session"):
            st.query_params["session"] = new_session_id()
            st.rerun()
        st.caption("Past sessions")
        try:
            sessions = agent.sessions()
        except Exception as exc:
            sessions = []
            st.error(f"Sessions unavailable: {exc}")
        for item in sessions:
            if st.button(f"{item['title']} ({item['turns']})", key=f"s-{item['session_id']}"):
                st.query_params["session"] = item["session_id"]
                st.rerun()
    try:
        {"Chat": chat_page, "Library": library_page, "Settings": settings_page}[page](agent)
    except Exception as exc:  # errors are messages, never a Streamlit traceback
        st.error(f"{type(exc).__name__}: {exc}")


main()
