"""The `sea` command line: one parser; each area of the product adds its own subcommands.

Only the area a command belongs to is imported, so `sea ask` does not pay for the
benchmarks' or the evaluation's imports; `sea --help` imports them all.
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import os
import sys

# Command -> the module that adds it (a module may add several commands).
AREAS = {"ask": "cli.ask", "chat": "cli.ask", "tools": "cli.tools", "sandbox": "cli.sandbox",
         "eval": "cli.evaluate", "bench": "cli.bench", "mcp": "cli.mcp_server",
         "policy": "cli.policy", "feedback": "cli.feedback", "workflows": "cli.workflows"}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Return the parser with the areas mounted (only ``command``'s, when it is known)."""
    parser = argparse.ArgumentParser(prog="sea", description="The self-engineering agent.")
    sub = parser.add_subparsers(dest="command", required=True)
    wanted = [AREAS[command]] if command in AREAS else list(dict.fromkeys(AREAS.values()))
    for name in dict.fromkeys(wanted):
        importlib.import_module(name).add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line and return its exit status."""
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv[0] if argv else None).parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a clear one-line error, never a traceback, for people
        if getattr(args, "json", False):
            import json

            print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        else:
            print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def run() -> None:
    """Run the `sea` program, then exit without tearing the interpreter down.

    Two third-party package initialisers a turn never needs are deferred first
    (`cli.lean_imports`).

    Python's own exit frees the LangChain/LangGraph module graph object by object (~0.4 s
    measured) after the work is done. The handler below is registered before anything
    else, so it runs after every exit handler the command added (the sandbox's containers
    removed, the database handed over) and after non-daemon threads were joined; only the
    teardown is skipped.
    """
    from cli.lean_imports import install

    install()  # before anything imports LangChain or LangGraph
    status: list[int] = []

    def exit_now() -> None:
        if status:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status[0])

    atexit.register(exit_now)
    status.append(main())
    sys.exit(status[0])


if __name__ == "__main__":
    run()
