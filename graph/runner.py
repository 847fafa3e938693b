"""Running the graph with sessions: a Postgres checkpointer, one thread per session.

A turn's progress events and route come from the stream (``custom`` and ``updates``); the
runner hands them to its caller beside the final state, so the state keeps only what the
graph needs.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import replace

from langchain_core.messages import AIMessage
from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.errors import GraphDrained
from langgraph.runtime import RunControl
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from nodes.kit import services
from nodes.kit.checks import check_request
from nodes.kit.context import Context
from nodes.kit.model import is_scripted, resolve_model_name
from tools_store.db import connect, database_url, setup_lock
from tools_store.sessions import check_session_id

from . import session_lock
from .agent import build_graph

SCRIPTED_BANNER = ("Scripted model: every reply is replayed from a recorded script, not "
                   "generated. Configure SEA_MODEL / OPENAI_API_KEY for a real model.")
STOPPED = "(This turn was stopped before it finished.)"
# Connections one Agent may hold for its checkpointer (the library keeps its own).
CHECKPOINT_POOL_SIZE = 4


def new_session_id() -> str:
    """Return a fresh session id."""
    return uuid.uuid4().hex[:12]


def wrong_answer_request(note: str = "") -> str:
    """Return what the conversation shows when the user marks the last answer wrong."""
    return "That answer was wrong" + (f": {note.strip()}" if note.strip() else ".")


class Agent:
    """The compiled graph with a Postgres checkpointer and a runtime context."""

    def __init__(self, **settings):
        self.context = Context(**settings)
        self.context.model = resolve_model_name(self.context.model)
        url = database_url()
        connect(url).close()  # a database that is down: a clear error now, not a hang later
        self.pool = ConnectionPool(url, min_size=1, max_size=CHECKPOINT_POOL_SIZE, open=True,
                                   check=ConnectionPool.check_connection,  # see TurnLog
                                   kwargs={"autocommit": True, "prepare_threshold": 0,
                                           "row_factory": dict_row})
        self.turn_locks = session_lock.pool(url)
        self.checkpointer = PostgresSaver(self.pool)
        with setup_lock(url):  # processes starting together on a new database never race
            self.checkpointer.setup()
        self.graph = build_graph().compile(checkpointer=self.checkpointer)

    @property
    def library(self):
        """Return the tool library this agent's turns use."""
        return services.library(self.context.library_schema)

    @property
    def scripted(self) -> bool:
        """Tell whether replies are replayed from a script."""
        return is_scripted(self.context.model)

    def _config(self, session_id: str) -> dict:
        # Loops are bounded by their own counters (retries, plan steps); this only has to
        # let the longest legal turn through.
        return {"configurable": {"thread_id": session_id}, "recursion_limit": 250}

    def stream(self, request: str, session_id: str, files: list[str] | None = None,
               new_tool: bool = False, feedback: dict | None = None,
               control: RunControl | None = None) -> Iterator[dict]:
        """Yield ``start``, ``event`` and ``step`` items as they happen; the last is ``final``.

        ``files`` replace the context's input files for this turn. ``new_tool``: build a new
        tool for this request even when one could be reused. ``feedback`` ({"note": ...})
        marks the session's last answer wrong and repairs the tool that gave it. A request no
        storage can hold, or a session id none can key, is refused here: the checkpointer
        stores the input before the first node could refuse it. ``control.request_drain()``
        stops the turn cooperatively between steps: it is closed in the session with a
        message saying so, and the last item is ``stopped`` instead of ``final``. While another
        turn of the same session runs (in any process), this one waits for it, saying so; a
        drain then stops it before the graph sees it.
        """
        try:
            check_request(request)
            check_session_id(session_id)
        except ValueError as exc:
            error = f"enrich failed: {exc}"
            yield {"kind": "event", "step": "enrich", "message": error, "level": "error"}
            yield {"kind": "final", "state": {"error": error, "answer": "Sorry, I could not "
                                                                        f"complete this: {error}"}}
            return
        context = replace(self.context, session_id=session_id,
                          input_files=list(files) if files is not None
                          else self.context.input_files,
                          new_tool=new_tool or self.context.new_tool)
        turn = {"request": request, "feedback": feedback or {}}
        config = self._config(session_id)
        with session_lock.held(self.turn_locks, session_id) as turn_lock:
            if not turn_lock.acquired:
                yield {"kind": "event", "step": "enrich", "message": session_lock.WAITING,
                       "time": round(time.time(), 3)}
                while not turn_lock.retry():
                    if control is not None and control.drain_requested:
                        yield {"kind": "stopped", "state": {}}  # the graph never saw it
                        return
                    time.sleep(session_lock.POLL_SECONDS)
            yield from self._run_turn(turn, config, context, control, session_id)

    def _run_turn(self, turn: dict, config: dict, context: Context,
                  control: RunControl | None, session_id: str) -> Iterator[dict]:
        # Checkpointed once, when the turn ends (a stop included): a step's checkpoint cost a
        # write per step, and a turn cut off mid-way by a killed process left its question in
        # the history without a reply.
        steps = self.graph.stream(turn, config, context=context, control=control,
                                  durability="exit",
                                  stream_mode=["custom", "updates", "tasks"])
        try:
            for mode, payload in steps:
                if mode == "custom":
                    yield {"kind": "event", **payload}
                elif mode == "tasks":
                    if "input" in payload:  # a step starts (its end comes as an update)
                        yield {"kind": "start", "step": payload["name"]}
                else:
                    for step in payload:
                        yield {"kind": "step", "step": step}
        except GraphDrained as exc:
            self._close_unanswered(config, STOPPED, str(exc))
            yield {"kind": "stopped", "state": self.state(session_id)}
            return
        except BaseException as exc:
            # Ctrl-C, a caller that stopped reading (GeneratorExit) or a fault no step could
            # turn into the turn's error: the graph saves the question as it exits, and the
            # next turn must not read it without a reply. Closed first, so that its exit
            # save comes before the reply and not over it.
            steps.close()
            reply = (STOPPED if isinstance(exc, (GeneratorExit, KeyboardInterrupt))
                     else f"(This turn failed before it finished: {type(exc).__name__}.)")
            self._close_unanswered(config, reply, reply)
            raise
        yield {"kind": "final", "state": self.state(session_id)}

    def _close_unanswered(self, config: dict, reply: str, error: str) -> None:
        """Give the session's last question, if it has no reply, this one."""
        try:
            messages = self.graph.get_state(config).values.get("messages") or []
            if messages and messages[-1].type == "human":
                # The question is written again, under its own id (no duplicate): cut off
                # inside the first step, it is only a pending write of that step, which an
                # update does not carry over.
                self.graph.update_state(config, {"messages": [messages[-1], AIMessage(reply)],
                                                 "error": error}, as_node="answer")
        except Exception:  # noqa: BLE001 - the database went too: the fault itself is raised
            pass

    def ask(self, request: str, session_id: str | None = None,
            on_event: Callable[[dict], None] | None = None,
            files: list[str] | None = None, new_tool: bool = False,
            feedback: dict | None = None) -> dict:
        """Run one turn; return its final state with ``route``, ``events`` and ``session_id``."""
        session_id = session_id or new_session_id()
        route: list[str] = []
        events: list[dict] = []
        final: dict = {}
        # Closed on the way out, even when on_event raises: a suspended turn would hold its
        # session's lock for as long as the traceback lives.
        with closing(self.stream(request, session_id, files, new_tool, feedback)) as items:
            for item in items:
                if item["kind"] == "event":
                    events.append(item)
                    if on_event:
                        on_event(item)
                elif item["kind"] == "step":
                    route.append(item["step"])
                elif item["kind"] in ("final", "stopped"):
                    final = item["state"]
        return {**final, "route": route, "events": events, "session_id": session_id}

    def start_repair(self, session_id: str, note: str = "",
                     on_event: Callable[[dict], None] | None = None,
                     execution: int | None = None) -> dict:
        """Mark the session's last answer wrong and repair the tool that gave it (a turn).

        ``execution``: the id of the run whose answer the user saw; when another has
        followed it by the time the turn runs, nothing is marked or repaired.
        """
        return self.ask(wrong_answer_request(note), session_id, on_event,
                        feedback={"note": note, "execution": execution})

    def stream_repair(self, session_id: str, note: str = "") -> Iterator[dict]:
        """Stream the turn of ``start_repair`` (for pages that show its progress)."""
        return self.stream(wrong_answer_request(note), session_id, feedback={"note": note})

    def state(self, session_id: str) -> dict:
        """Return the session's current state values."""
        snapshot = self.graph.get_state(self._config(session_id))
        return dict(snapshot.values) if snapshot else {}

    def conversation(self, session_id: str) -> list[dict]:
        """Return the session's messages as role/content pairs."""
        return [{"role": "user" if m.type == "human" else "assistant",
                 "content": str(m.content)}
                for m in self.state(session_id).get("messages", [])]

    def sessions(self, limit: int = 30) -> list[dict]:
        """Return recent sessions, newest first."""
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT thread_id, max(checkpoint_id) AS last FROM checkpoints "
                "GROUP BY thread_id ORDER BY last DESC LIMIT %s", (limit,)).fetchall()
        sessions = []
        for row in rows:
            messages = self.conversation(row["thread_id"])
            title = messages[0]["content"][:60] if messages else "(empty)"
            sessions.append({"session_id": row["thread_id"], "title": title,
                             "turns": sum(m["role"] == "user" for m in messages)})
        return sessions

    def session_items(self, session_id: str) -> list[dict]:
        """Return a session's data items, newest first.

        Each has name, kind (value, table, file), shape, size, sha256, turn, step, source
        (upload, output, result), the file's ``path`` (None for a value, which is in
        ``value``) and whether the file is still ``available``.
        """
        return self.library.sessions.items(session_id)

    def workflows(self) -> list[dict]:
        """Return the learned workflows, most used first."""
        return self.library.workflows.list()

    def promote_workflow(self, workflow_id: int) -> dict:
        """Promote a workflow to a composite tool now (or re-verify its composite)."""
        from nodes.enrich import turn_policy
        from nodes.kit.composite import promote
        from nodes.kit.model import load_chat_model

        library = self.library
        stored = library.policy()
        policy = turn_policy(stored, library.decision_rule(stored), self.context.overrides(),
                             library.model_id)
        sandbox = services.sandbox(self.context.sandbox_backend, self.context.sandbox_pool)
        return promote(library.workflows.get(workflow_id), library, sandbox,
                       load_chat_model(self.context.model), policy)

    def close(self) -> None:
        """Close the connection pools."""
        self.turn_locks.close()
        self.pool.close()


def summary(turn: dict) -> dict:
    """Return what a person wants to see of a finished turn (from ``Agent.ask``)."""
    tool = turn.get("tool") or {}
    return {"session_id": turn.get("session_id"), "route": turn.get("route", []),
            "decision": turn.get("decision"), "tool": tool.get("name"),
            "version": tool.get("version"), "status": tool.get("status"),
            "arguments": turn.get("arguments"), "result": turn.get("result"),
            "cached": bool(turn.get("cached")),
            "answer": turn.get("answer"), "error": turn.get("error") or None,
            "failure": turn.get("failure") or None, "repair": turn.get("repair") or None,
            "usage": turn.get("usage", {}), "events": turn.get("events", []),
            "steps": [{"step": r["step"], "tool": r["tool"]["name"], "result": r["result"],
                       "kept": r["items"]} for r in turn.get("step_results") or []],
            "workflow": (turn.get("workflow") or {}).get("id")}
