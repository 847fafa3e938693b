"""Turns outside the page: the runner's stop, the turn log, the app's turn registry.

Against the real PostgreSQL (checkpointer and library schema) and the real Docker sandbox.
"""

from __future__ import annotations

import uuid

import pytest
from app_scripts import SLOW_REQUEST, write_script
from langgraph.runtime import RunControl

from graph.runner import STOPPED, Agent
from graph.session_lock import WAITING, held
from tools_store.library import ToolLibrary
from tools_store.turns import TurnLog


@pytest.fixture
def agent(docker_sandbox, tmp_path):
    """An agent on a throwaway library schema, scripted with the demo and the test tools."""
    from nodes.kit import services

    script = write_script(tmp_path / "script.json")
    made = Agent(model=f"scripted:{script}", sandbox_backend="docker", sandbox_pool=0,
                 library_schema=f"t_{uuid.uuid4().hex[:10]}")
    yield made
    services.library(made.context.library_schema).drop()
    services.forget_library(made.context.library_schema)
    made.close()


def test_a_stopped_turn_is_closed_in_the_session_and_the_next_starts_clean(agent):
    control = RunControl()
    items = []
    for item in agent.stream("convert 100 degrees Fahrenheit to Celsius", "stop-1",
                             control=control):
        items.append(item)
        if item["kind"] == "step" and item["step"] == "spec":
            control.request_drain("stopped by the user")
    kinds = [(i["kind"], i.get("step")) for i in items if i["kind"] in ("start", "step")]
    assert kinds == [(k, s) for s in ("enrich", "plan", "retrieve", "decide", "spec")
                     for k in ("start", "step")]  # each step announced before it runs
    assert items[-1]["kind"] == "stopped"
    assert [m.content for m in items[-1]["state"]["messages"]] == [
        "convert 100 degrees Fahrenheit to Celsius", STOPPED]
    assert agent.graph.get_state(agent._config("stop-1")).next == ()
    turn = agent.ask("count the vowels in Encyclopedia Britannica", "stop-1")
    assert turn["route"][0] == "enrich" and turn["route"][-1] == "answer"
    assert turn["history"][-1] == {"role": "assistant", "content": STOPPED}
    assert turn["result"] == 9


def test_the_turn_log_numbers_turns_keeps_owners_and_closes_left_behind_turns(agent):
    library = ToolLibrary(schema=agent.context.library_schema)
    log = TurnLog(library.url, library.schema)
    try:
        assert log.add_turn("s1", "alice", "convert   100 F to C\n") == 1
        assert log.add_turn("s1", "alice", "now for 451") == 2
        with pytest.raises(PermissionError):
            log.add_turn("s1", "bob", "let me in")
        log.start("s1", 1)
        log.finish("s1", 1, "done", {"answer": "37.78 °C", "decision": "synthesize",
                                     "tool": "f", "version": 1, "tool_status": "verified",
                                     "arguments": {"x": 100}, "result": 37.78,
                                     "usage": {"plan": {"total_tokens": 5}},
                                     "route": ["enrich", "answer"],
                                     "events": [{"step": "plan", "message": "m"}]})
        first, second = log.turns("s1")
        assert (first["status"], first["result"], first["arguments"], first["tool_status"]) \
            == ("done", 37.78, {"x": 100}, "verified")
        assert first["events"] == [{"step": "plan", "message": "m"}]
        assert second["status"] == "queued" and second["result"] is None
        assert [(s["session_id"], s["title"], s["turns"]) for s in log.sessions("alice")] == [
            ("s1", "convert 100 F to C", 2)]
        assert log.sessions("bob") == [] and log.owner_of("s1") == "alice"
        assert log.interrupt_unfinished("the app stopped") == 1
        assert log.turns("s1")[1]["status"] == "interrupted"
        log.rename("s1", "temperatures")
        assert log.sessions("alice")[0]["title"] == "temperatures"
        log.delete("s1")
        assert log.turns("s1") == [] and log.owner_of("s1") is None
    finally:
        log.close()
        library.close()


def test_a_library_already_at_migration_6_gets_the_chat_tables_of_migration_5(agent):
    from tools_store.migrations import MIGRATIONS, migrate

    assert [v for v, _ in MIGRATIONS] == sorted({v for v, _ in MIGRATIONS})  # distinct
    library = ToolLibrary(schema=agent.context.library_schema)
    try:
        with library.connect() as conn:  # a library migrated before migration 5 existed
            conn.execute("DROP TABLE chat_turns, chat_sessions")
            conn.execute("DELETE FROM schema_migrations WHERE version = 5")
            conn.commit()
            assert migrate(conn, library.schema) == [5]
            assert migrate(conn, library.schema) == []
        log = TurnLog(library.url, library.schema)
        try:
            assert log.add_turn("m1", "alice", "convert 100 F to C") == 1
        finally:
            log.close()
    finally:
        library.close()


def test_the_registry_runs_a_sessions_turns_in_order_and_stops_one(agent):
    from ui.runs import Runs

    library = agent.library
    runs = Runs(agent, TurnLog(library.url, library.schema))
    try:
        slow = runs.submit("r1", "local", SLOW_REQUEST)
        queued = runs.submit("r1", "local", "convert 100 degrees Fahrenheit to Celsius")
        cancelled = runs.submit("r1", "local", "count the vowels in Encyclopedia Britannica")
        assert [r.turn for r in runs.pending("r1")] == [1, 2, 3]
        cancelled.stop()  # still queued: it never starts
        assert runs.wait(240)
        turns = runs.log.turns("r1")
        assert [t["status"] for t in turns] == ["done", "done", "interrupted"]
        assert turns[1]["started_at"] >= turns[0]["finished_at"]  # one after the other
        assert turns[2]["error"] == "stopped by the user" and turns[2]["route"] == []
        assert slow.status == queued.status == "done"
    finally:
        runs.log.close()


def test_a_turn_the_log_cannot_record_is_recorded_later_and_the_session_goes_on(agent,
                                                                                 monkeypatch):
    from tools_store.errors import LibraryError
    from ui.runs import Runs

    library = agent.library
    runs = Runs(agent, TurnLog(library.url, library.schema))
    finish, tries = runs.log.finish, []

    def down_once(*args):  # the database is down as the first turn ends
        tries.append(args[1])
        if len(tries) == 1:
            raise LibraryError("the library's database failed: AdminShutdown")
        return finish(*args)

    monkeypatch.setattr(runs.log, "finish", down_once)
    try:
        first = runs.submit("d1", "local", "convert 100 degrees Fahrenheit to Celsius")
        assert runs.wait(240) and first.status == "done"
        assert [t["status"] for t in runs.log.turns("d1")] == ["running"]
        # The session's worker survived: the next turn runs, and the first is recorded.
        runs.submit("d1", "local", "count the vowels in Encyclopedia Britannica")
        assert runs.wait(240)
        turns = runs.log.turns("d1")
        assert [t["status"] for t in turns] == ["done", "done"] and tries == [1, 1, 2]
        assert "37.78" in turns[0]["answer"]
    finally:
        runs.log.close()


def test_a_second_turn_of_a_busy_session_waits_and_both_turns_are_kept(agent):
    import threading

    first_running = threading.Event()
    first: dict = {}

    def slow_turn() -> None:
        for item in agent.stream(SLOW_REQUEST, "busy-1"):
            if item["kind"] == "start" and item["step"] == "execute":
                first_running.set()  # 15 s of the tool's sleep still to go
            if item["kind"] == "final":
                first.update(item["state"])

    runner = threading.Thread(target=slow_turn)
    runner.start()
    try:
        assert first_running.wait(240)
        # Before the lock, this turn ran beside the first: both started from the same
        # checkpoint, and the first, ending last, wrote over this one's messages.
        second = agent.ask("count the vowels in Encyclopedia Britannica", "busy-1")
    finally:
        runner.join(240)
    assert WAITING in [e["message"] for e in second["events"]]
    assert first["answer"] == "It said: hello." and second["result"] == 9
    assert [m["content"] for m in agent.conversation("busy-1")] == [
        SLOW_REQUEST, "It said: hello.", "count the vowels in Encyclopedia Britannica",
        second["answer"]]


def test_a_turn_waiting_for_its_session_can_be_stopped_before_it_starts(agent):
    control = RunControl()
    with held(agent.turn_locks, "busy-2") as lock:  # another turn of this session
        assert lock.acquired
        turn = agent.stream("count the vowels in Encyclopedia Britannica", "busy-2",
                            control=control)
        assert next(turn)["message"] == WAITING
        control.request_drain("stopped by the user")
        assert next(turn) == {"kind": "stopped", "state": {}}
        assert next(turn, None) is None
    assert agent.conversation("busy-2") == []  # the graph never saw it
    assert agent.ask("count the vowels in Encyclopedia Britannica", "busy-2")["result"] == 9


def test_a_turn_cut_off_by_its_caller_or_a_fault_is_closed_in_the_session(agent,
                                                                           monkeypatch):
    from tools_store.library import ToolLibrary

    request = "convert 100 degrees Fahrenheit to Celsius"
    steps = agent.stream(request, "cut-1")
    for item in steps:
        if item["kind"] == "step" and item["step"] == "spec":
            break
    steps.close()  # a caller that stops reading: Ctrl-C, a closed page, a gone client

    def broken_display(event: dict) -> None:
        raise RuntimeError("the display broke")

    with pytest.raises(RuntimeError, match="display broke"):  # inside the first step
        agent.ask(request, "cut-2", on_event=broken_display)

    def fault(*args, **kwargs):
        raise ZeroDivisionError("a bug no step turns into the turn's error")

    with monkeypatch.context() as patch:
        patch.setattr(ToolLibrary, "search", fault)
        with pytest.raises(ZeroDivisionError):
            agent.ask(request, "cut-3")
    # Before, each question stayed without a reply, and the next turn read it that way.
    assert [m["content"] for m in agent.conversation("cut-1")] == [request, STOPPED]
    assert [m["content"] for m in agent.conversation("cut-2")] == [request, STOPPED]
    assert [m["content"] for m in agent.conversation("cut-3")] == [
        request, "(This turn failed before it finished: ZeroDivisionError.)"]
    turn = agent.ask("count the vowels in Encyclopedia Britannica", "cut-1")
    assert turn["history"] == [{"role": "user", "content": request},
                               {"role": "assistant", "content": STOPPED}]
    assert turn["result"] == 9
