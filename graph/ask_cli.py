"""`sea ask`, `sea chat` and `sea bench pipeline`."""

from __future__ import annotations

import json
import statistics
import sys
import time

from sandbox.cli import emit


def _agent(args):
    from .runtime import Agent

    return Agent(model=args.model or "", sandbox_backend=args.backend,
                 sandbox_pool=args.pool, input_files=args.data or [])


def _print_turn(result: dict, scripted: bool) -> None:
    from .runtime import SCRIPTED_BANNER

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
    from .runtime import summary

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
    from .runtime import SCRIPTED_BANNER, new_session_id, summary

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


def cmd_bench(args) -> int:
    """Time the reuse and synthesis paths end to end with the scripted model."""
    import uuid

    from .runtime import Agent

    schema = f"sea_bench_{uuid.uuid4().hex[:8]}"
    agent = Agent(model=args.model or "", sandbox_backend=args.backend, sandbox_pool=args.pool,
                  library_schema=schema)
    from . import services

    synth, reuse = [], []
    try:
        library = services.library(schema)
        library.vector_store()  # load the embedding model before timing
        pool = getattr(services.sandbox(args.backend, args.pool).backend, "pool", None)
        for i in range(args.runs):
            if pool:
                pool.wait_ready(60)
            start = time.perf_counter()
            first = agent.ask("convert 100 degrees Fahrenheit to Celsius")
            synth.append(time.perf_counter() - start)
            if pool:
                pool.wait_ready(60)
            start = time.perf_counter()
            second = agent.ask("it's 98.6 F outside, what is that in celsius?")
            reuse.append(time.perf_counter() - start)
            if first.get("decision") != "synthesize" or second.get("decision") != "reuse":
                raise RuntimeError(f"unexpected routes: {first.get('route')} / "
                                   f"{second.get('route')}; {first.get('error')}")
            library.drop()  # an empty library again, so the next run synthesizes
            services.forget_library(schema)
            library = services.library(schema)
    finally:
        services.library(schema).drop()
        agent.close()
    emit({"model": agent.context.model, "runs": args.runs, "sandbox": args.backend,
          "pool": args.pool,
          "synthesis_path_s": {"p50": round(statistics.median(synth), 3), "max": round(
              max(synth), 3)},
          "reuse_path_s": {"p50": round(statistics.median(reuse), 3),
                           "max": round(max(reuse), 3)}}, args.json)
    return 0


def add_parsers(sub, bench_sub) -> None:
    """Add `sea ask`, `sea chat` and `sea bench pipeline`."""
    def common(p):
        p.add_argument("--model", help="model name, or scripted:FILE")
        p.add_argument("--backend", choices=["docker", "bwrap"], default="docker")
        p.add_argument("--pool", type=int, default=0, help="warm containers (Docker)")
        p.add_argument("--data", action="append", help="input file for the tools (repeat)")
        p.add_argument("--json", action="store_true")

    p = sub.add_parser("ask", help="serve one request")
    p.add_argument("request")
    p.add_argument("--session", help="session id (continues a conversation)")
    common(p)
    p.set_defaults(func=cmd_ask)
    p = sub.add_parser("chat", help="a conversation in the terminal")
    p.add_argument("--session")
    common(p)
    p.set_defaults(func=cmd_chat)
    p = bench_sub.add_parser("pipeline", help="reuse and synthesis paths, scripted model")
    p.add_argument("--runs", type=int, default=5)
    common(p)
    p.set_defaults(func=cmd_bench, pool=2)
