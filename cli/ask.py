"""`sea ask` and `sea chat`: serve requests from the terminal."""

from __future__ import annotations

import json
import sys

from .output import emit


def _agent(args):
    from graph.runner import Agent

    return Agent(model=args.model, sandbox_backend=args.backend,
                 sandbox_pool=args.pool, input_files=args.data or [],
                 new_tool=getattr(args, "new_tool", False))


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


def cmd_ask(args) -> int:
    """Serve one request."""
    from graph.runner import summary

    agent = _agent(args)
    try:
        on_event = None if args.json else (
            lambda e: print(f"  [{e['step']}] {e['message']}", file=sys.stderr))
        result = summary(agent.ask(args.request, args.session, on_event=on_event))
        if args.json:
            emit({**result, "scripted_model": agent.scripted}, True)
        else:
            _print_turn(result, agent.scripted)
        return 1 if result["error"] else 0
    finally:
        agent.close()


def cmd_chat(args) -> int:
    """Hold a conversation in the terminal."""
    from graph.runner import SCRIPTED_BANNER, new_session_id, summary

    agent = _agent(args)
    session = args.session or new_session_id()
    print(f"session {session}; an empty line or Ctrl-D ends it.")
    if agent.scripted:
        print(f"[{SCRIPTED_BANNER}]")
    try:
        while True:
            try:
                line = input("you> ").strip()
            except EOFError:
                break
            if not line:
                break
            result = summary(agent.ask(line, session, on_event=lambda e: print(
                f"  [{e['step']}] {e['message']}")))
            print(f"agent> {result['answer']}")
    finally:
        agent.close()
    return 0


def common_options(p) -> None:
    """Add the options every command that runs the agent takes."""
    p.add_argument("--model", help="model name, or scripted:FILE (default: SEA_MODEL)")
    p.add_argument("--backend", choices=["docker", "bwrap"],
                   help="sandbox backend (default: SEA_SANDBOX_BACKEND, else docker)")
    p.add_argument("--pool", type=int, default=0,
                   help="warm containers (Docker); a one-shot command needs none")
    p.add_argument("--data", action="append", help="input file for the tools (repeat)")
    p.add_argument("--json", action="store_true")


def add_parsers(sub) -> None:
    """Add `sea ask` and `sea chat`."""
    p = sub.add_parser("ask", help="serve one request")
    p.add_argument("request")
    p.add_argument("--session", help="session id (continues a conversation)")
    p.add_argument("--new-tool", action="store_true",
                   help="build a new tool (under a new name) even when one could be reused")
    common_options(p)
    p.set_defaults(func=cmd_ask)
    p = sub.add_parser("chat", help="a conversation in the terminal")
    p.add_argument("--session")
    common_options(p)
    p.set_defaults(func=cmd_chat)
