"""`sea feedback SESSION --wrong "NOTE"`: mark a session's last answer wrong, and repair.

The repair of the tool that gave the answer is a turn of that session, through the graph.
"""

from __future__ import annotations

import sys

from .ask import _agent, _print_turn, common_options
from .output import emit


def cmd_feedback(args) -> int:
    """Mark the last answer of a session wrong, then repair and serve it again."""
    from graph.runner import summary

    agent = _agent(args)
    try:
        on_event = None if args.json else (
            lambda e: print(f"  [{e['step']}] {e['message']}", file=sys.stderr))
        result = summary(agent.start_repair(args.session, args.wrong, on_event=on_event))
        if args.json:
            emit({**result, "scripted_model": agent.scripted}, True)
        else:
            _print_turn(result, agent.scripted)
        return 1 if result["error"] else 0
    finally:
        agent.close()


def add_parsers(sub) -> None:
    """Add `sea feedback`."""
    p = sub.add_parser("feedback", help="mark a session's last answer wrong and repair it")
    p.add_argument("session", help="the session whose last answer was wrong")
    p.add_argument("--wrong", required=True, metavar="NOTE",
                   help="what was wrong with it (may be empty)")
    common_options(p)
    p.set_defaults(func=cmd_feedback)
