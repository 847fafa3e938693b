"""`sea ask` and `sea chat`: serve requests from the terminal."""

from __future__ import annotations

import gc
import json
import signal
import sys
import threading

from .output import emit


def _agent(args):
    from graph.runner import Agent

    return Agent(model=args.model, sandbox_backend=args.backend,
                 sandbox_pool=args.pool, input_files=args.data or [],
                 new_tool=getattr(args, "new_tool", False))


def _interrupted(signum, frame) -> None:
    # Ctrl-C ends the process: its sandbox runs end first, or the turn would wait for the
    # running tool or suite, up to its time limit, before the interrupt got through.
    sandbox = sys.modules.get("sandbox")
    if sandbox is not None:
        sandbox.stop_all()
    raise KeyboardInterrupt


def _stop_runs_on_ctrl_c() -> None:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _interrupted)


def _warm_up_meanwhile(args) -> None:
    """Load the library and start a sandbox container while this process imports the graph.

    Not a daemon: an exit during the warm-up waits for it, so the container it started is
    removed with the sandbox at exit instead of left behind.
    """
    def warm_up() -> None:
        try:  # imported here too: the libraries' imports overlap the graph's
            from nodes.kit import services
            from nodes.kit.context import Context

            context = Context(model=args.model, sandbox_backend=args.backend,
                              sandbox_pool=args.pool)
            services.warm_up(context.library_schema, context.sandbox_backend,
                             context.sandbox_pool)
        except Exception:  # noqa: BLE001 - the turn meets the same failure and reports it
            pass

    threading.Thread(target=warm_up, name="sea-warm-up").start()


def _print_turn(result: dict, scripted: bool) -> None:
    from graph.runner import SCRIPTED_BANNER

    if scripted:
        print(f"[{SCRIPTED_BANNER}]")
    print(f"route:     {' -> '.join(result['route'])}")
    print(f"decision:  {result['decision']}")
    if result["tool"]:
        print(f"tool:      {result['tool']} v{result['version']} ({result['status']})")
    print(f"arguments: {json.dumps(result['arguments'])}")
    print(f"result:    {json.dumps(result['result'])}")
    usage = {step: counts.get("total_tokens", 0) for step, counts in result["usage"].items()}
    print(f"tokens:    {sum(usage.values())} {usage}")
    print(f"answer:    {result['answer']}")
    print(f"session:   {result['session_id']}")


def not_utf8(text: str) -> str:
    """Say what is wrong with text read from the terminal that was not UTF-8, else ""."""
    try:
        text.encode("utf-8")
        return ""
    except UnicodeEncodeError as exc:
        raw = text[exc.start:exc.end].encode("utf-8", "surrogateescape")
        return (f"the request is not valid UTF-8 (byte {raw.hex(' ')} at character "
                f"{exc.start}); check the terminal's encoding")


def _via_resident(args, on_event) -> dict | None:
    """Serve the turn through a running agent with the same settings, if one is up."""
    from graph.resident import ask_resident, settings_key
    from nodes.kit.context import Context, resolve_model_name

    context = Context(model=args.model, sandbox_backend=args.backend)
    key = settings_key(resolve_model_name(context.model), context.sandbox_backend,
                       context.library_schema)
    return ask_resident(args.request, args.session, key, args.data or [], on_event)


def cmd_ask(args) -> int:
    """Serve one request: through a resident agent when one is up, else in this process."""
    problem = not_utf8(args.request)
    if problem:
        if args.json:
            emit({"error": problem}, True)
        else:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    on_event = None if args.json else (
        lambda e: print(f"  [{e['step']}] {e['message']}", file=sys.stderr))
    from graph.resident import enabled

    resident = enabled() and not (args.in_process or getattr(args, "new_tool", False))
    result = _via_resident(args, on_event) if resident else None
    if result is None:
        # Start-up makes ~290,000 objects that live as long as the process; collecting
        # cycles while they are made cost about a tenth of a fresh `sea ask` (measured).
        # Frozen afterwards, they are never walked: left in the youngest generation, the
        # turn's first collections walked them all (about 0.1 s each, measured).
        gc.disable()
        _stop_runs_on_ctrl_c()
        try:
            _warm_up_meanwhile(args)
            from graph.runner import summary

            agent = _agent(args)
        finally:
            gc.freeze()
            gc.enable()
        try:
            result = {**summary(agent.ask(args.request, args.session, on_event=on_event)),
                      "scripted_model": agent.scripted, "served_by": "this process"}
        finally:
            agent.close()
    if args.json:
        emit(result, True)
    else:
        _print_turn(result, result["scripted_model"])
    return 1 if result["error"] else 0


def cmd_chat(args) -> int:
    """Hold a conversation in the terminal, serving `sea ask` from other terminals too."""
    from graph.resident import ResidentServer, enabled
    from graph.runner import SCRIPTED_BANNER, new_session_id, summary

    _stop_runs_on_ctrl_c()
    agent = _agent(args)
    try:
        resident = ResidentServer(agent) if enabled() else None
    except OSError:
        resident = None  # another agent already serves this data directory
    session = args.session or new_session_id()
    print(f"session {session}; an empty line or Ctrl-D ends it.")
    if agent.scripted:
        print(f"[{SCRIPTED_BANNER}]")
    # Bytes that are not UTF-8 arrive as lone surrogates (and are refused), never as a crash.
    sys.stdin.reconfigure(errors="surrogateescape")
    try:
        while True:
            try:
                line = input("you> ").strip()
            except EOFError:
                break
            if not line:
                break
            if not_utf8(line):
                print(f"agent> Sorry, {not_utf8(line)}.")
                continue
            result = summary(agent.ask(line, session, on_event=lambda e: print(
                f"  [{e['step']}] {e['message']}")))
            print(f"agent> {result['answer']}")
    finally:
        if resident:
            resident.close()
        agent.close()
    return 0


def session_id(value: str) -> str:
    """Return ``value`` if a session can be keyed by it (an argparse type: refused at once)."""
    import argparse

    from tools_store.sessions import check_session_id

    try:
        return check_session_id(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def pool_size(value: str) -> int:
    """Return a warm pool size (an argparse type: 0 to the sandbox's limit)."""
    import argparse

    from sandbox import MAX_POOL, check_pool_size

    try:
        return check_pool_size(int(value))
    except ValueError:  # not a whole number, or out of range (LimitError is a ValueError)
        raise argparse.ArgumentTypeError(
            f"a whole number from 0 to {MAX_POOL}, not {value!r}") from None


def whole_number(low: int, high: int | None = None):
    """Return an argparse type for whole numbers from ``low`` (to ``high``), refused at once."""
    import argparse

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            number = low - 1
        if number < low or (high is not None and number > high):
            span = f"from {low} to {high}" if high is not None else f"of at least {low}"
            raise argparse.ArgumentTypeError(f"a whole number {span}, not {value!r}")
        return number

    return parse


def common_options(p) -> None:
    """Add the options every command that runs the agent takes."""
    p.add_argument("--model", help="model name, or scripted:FILE (default: SEA_MODEL)")
    p.add_argument("--backend", choices=["docker", "bwrap"],
                   help="sandbox backend (default: SEA_SANDBOX_BACKEND, else docker)")
    p.add_argument("--pool", type=pool_size, default=0,
                   help="warm containers (Docker); a one-shot command needs none")
    p.add_argument("--data", action="append", help="input file for the tools (repeat)")
    p.add_argument("--json", action="store_true")


def add_parsers(sub) -> None:
    """Add `sea ask` and `sea chat`."""
    p = sub.add_parser("ask", help="serve one request")
    p.add_argument("request")
    p.add_argument("--session", type=session_id, help="session id (continues a conversation)")
    p.add_argument("--in-process", action="store_true",
                   help="never hand the request to a running agent (sea chat, the app)")
    p.add_argument("--new-tool", action="store_true",
                   help="build a new tool (under a new name) even when one could be reused")
    common_options(p)
    p.set_defaults(func=cmd_ask)
    p = sub.add_parser("chat", help="a conversation in the terminal")
    p.add_argument("--session", type=session_id)
    common_options(p)
    p.set_defaults(func=cmd_chat)
