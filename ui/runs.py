"""Turns run off Streamlit's script thread, so they survive reloads, closed tabs and reruns.

The app process owns one ``Runs`` registry (held with ``st.cache_resource``). A request is
queued for its session and recorded at once in the turn log; one worker thread per session
with work runs its turns in order, so two tabs on one session never lose a question. A page
shows a running turn from the registry (its steps so far and the step running now) and the
finished ones from the turn log. Stop asks LangGraph to drain the run: it ends between two
steps and the turn is recorded as interrupted.

No Streamlit here: the registry is plain Python, testable without a page.
"""

from __future__ import annotations

import gc
import threading
import time
from pathlib import Path

from langgraph.runtime import RunControl

from graph.runner import Agent, summary
from nodes.kit import services
from nodes.kit.model import load_chat_model
from tools_store.turns import TurnLog

STOPPED_BY_USER = "stopped by the user"
LEFT_BEHIND = "the app stopped before this turn finished"
LOADING = "loading the embedding model and the sandbox (first request after start-up)"


class Run:
    """One queued or running turn, shared between its worker and the pages that show it."""

    def __init__(self, session: str, turn: int, request: str, files: list[str],
                 feedback: dict | None = None):
        self.session, self.turn, self.request, self.files = session, turn, request, files
        self.feedback = feedback  # a thumbs-down: repair the tool of the last answer
        self.status = "queued"
        self.events: list[dict] = []
        self.route: list[str] = []
        self.current = ""  # the step running now
        self.step_started = time.time()
        self.control = RunControl()
        self.done = threading.Event()
        self.record: tuple[str, dict] | None = None  # (status, story) once it has ended

    def stop(self) -> None:
        """Ask the run to stop between two steps (or not to start at all)."""
        self.control.request_drain(STOPPED_BY_USER)

    @property
    def stopping(self) -> bool:
        """Tell whether a stop was asked for."""
        return self.control.drain_requested


class Runs:
    """The process's queued and running turns, one worker thread per busy session."""

    def __init__(self, agent: Agent, log: TurnLog, ready: threading.Event | None = None):
        self.agent, self.log = agent, log
        self.ready = ready or threading.Event()
        if ready is None:
            self.ready.set()
        self._lock = threading.Lock()
        self._queues: dict[str, list[Run]] = {}
        self._workers: dict[str, threading.Thread] = {}
        # Ended turns the turn log could not take (its database was down), kept to retry.
        self._unrecorded: list[Run] = []
        # Turns a previous process left queued or running will never finish: say so.
        log.interrupt_unfinished(LEFT_BEHIND)

    def submit(self, session: str, owner: str, request: str,
               files: list[str] | None = None, feedback: dict | None = None) -> Run:
        """Record and queue a turn; it runs after the session's earlier turns.

        ``feedback`` ({"note": ...}) makes it the turn of a thumbs-down: ``request`` is then
        what the conversation shows (``wrong_answer_request``).
        """
        files = list(files or [])
        turn = self.log.add_turn(session, owner, request, [Path(f).name for f in files])
        run = Run(session, turn, request, files, feedback)
        with self._lock:
            self._queues.setdefault(session, []).append(run)
            if session not in self._workers:
                worker = threading.Thread(target=self._work, args=(session,), daemon=True,
                                          name=f"turns-{session}")
                self._workers[session] = worker
                worker.start()
        return run

    def pending(self, session: str) -> list[Run]:
        """Return the session's running turn and the turns queued after it."""
        with self._lock:
            return list(self._queues.get(session, []))

    def find(self, session: str, turn: int) -> Run | None:
        """Return a queued or running turn."""
        return next((r for r in self.pending(session) if r.turn == turn), None)

    def stop(self, session: str, turn: int) -> bool:
        """Stop a queued or running turn; tell whether there was one."""
        run = self.find(session, turn)
        if run:
            run.stop()
        return run is not None

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until no turn is queued or running (tests, shutdown); tell whether idle."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                runs = [r for queue in self._queues.values() for r in queue]
            if not runs:
                return True
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            runs[0].done.wait(left)

    # -- the worker -------------------------------------------------------------------------

    def _work(self, session: str) -> None:
        while True:
            with self._lock:
                queue = self._queues.get(session) or []
                if not queue:
                    self._workers.pop(session, None)
                    self._queues.pop(session, None)
                    return
                run = queue[0]
            try:
                self._run(run)
            except Exception as exc:  # the turn log failed: the worker goes on all the same
                run.record = run.record or ("failed", {"error": f"the turn log failed: {exc}",
                                                       "answer": ""})
                run.status = run.record[0]
                with self._lock:
                    self._unrecorded.append(run)
            finally:
                with self._lock:
                    queue.remove(run)
                run.done.set()

    def _record_unrecorded(self) -> None:
        """Record the ended turns the turn log could not take before; keep those it still can't."""
        with self._lock:
            waiting, self._unrecorded = self._unrecorded, []
        for run in waiting:
            try:
                self.log.finish(run.session, run.turn, *run.record)
            except Exception:  # noqa: BLE001 - still down: tried again at the next turn
                with self._lock:
                    self._unrecorded.append(run)

    def _run(self, run: Run) -> None:
        self._record_unrecorded()  # turns that ended while the database was down
        if not run.stopping:
            run.status = "running"
            self.log.start(run.session, run.turn)
        if not run.stopping and not self.ready.is_set():
            run.current, run.step_started = "warm-up", time.time()
            run.events.append({"step": "warm-up", "message": LOADING, "time": time.time()})
            while not self.ready.wait(0.2) and not run.stopping:
                pass
        if run.stopping:  # stopped while queued or waiting: the graph never saw it
            self._finish(run, "interrupted", {})
            return
        final: dict = {}
        status = "failed"
        try:
            for item in self.agent.stream(run.request, run.session, files=run.files,
                                          feedback=run.feedback, control=run.control):
                if item["kind"] == "start":
                    run.current, run.step_started = item["step"], time.time()
                elif item["kind"] == "event":
                    run.events.append(item)
                elif item["kind"] == "step":
                    run.route.append(item["step"])
                else:
                    final = item["state"]
                    status = ("interrupted" if item["kind"] == "stopped"
                              else "failed" if final.get("error") else "done")
        except Exception as exc:  # a bug or a broken part: recorded, never a silent loss
            final = {"error": f"{type(exc).__name__}: {exc}"}
            run.events.append({"step": run.current or "enrich", "level": "error",
                               "message": final["error"], "time": time.time()})
        self._finish(run, status, final)

    def _finish(self, run: Run, status: str, final: dict) -> None:
        story = summary({**final, "route": run.route, "events": run.events,
                         "session_id": run.session})
        story["tool_status"] = story.pop("status")
        if status == "interrupted":
            story.update(error=STOPPED_BY_USER, answer="")
        run.record = (status, story)
        self.log.finish(run.session, run.turn, status, story)
        run.status = status


def warm_up(agent: Agent, ready: threading.Event) -> None:
    """Load what a first request would wait for: the embedding model, the model, the sandbox.

    Runs in the background at start-up; a turn that comes first says it is waiting.
    """
    try:
        context = agent.context
        services.warm_up(context.library_schema, context.sandbox_backend, context.sandbox_pool)
        load_chat_model(context.model)
    except Exception:  # noqa: BLE001 - a turn meets the same failure and reports it
        pass
    finally:
        # What start-up made (modules, the agent, the model) lives as long as the process:
        # frozen out of the collector, a full collection no longer walks its ~200,000
        # objects (about 0.12 s holding the interpreter lock each time, measured).
        gc.collect()
        gc.freeze()
        ready.set()
