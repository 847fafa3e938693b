"""`sea feedback SESSION --wrong|--right [NOTE]`: a user's verdict on a session's last answer.

The verdict becomes strong evidence for the pair (request, tool) of the session's last tool
run ("wrong" also withdraws the positive evidence for that tool on the same request). A
"wrong" then starts a repair of that tool: a turn of the session, through the graph.
"""

from __future__ import annotations

import sys

from .ask import _agent, _print_turn, common_options, session_id
from .output import emit


def cmd_feedback(args) -> int:
    """Record the verdict; on "wrong", repair the tool and serve the request again."""
    from graph.runner import summary

    serves = args.right is not None
    agent = _agent(args)
    try:
        seen = agent.library.last_execution(args.session)  # the answer being judged
        item = agent.library.feedback(args.session, serves=serves,
                                      note=(args.right if serves else args.wrong) or "")
        verdict = "serves" if item.serves else "does not serve"
        recorded = {**item.model_dump(), "strength": item.strength}
        line = (f"recorded: {item.tool} v{item.version} {verdict} {item.request!r} "
                f"({item.source}, {item.strength})")
        if serves or args.no_repair:
            emit(recorded, args.json, [line])
            return 0
        if not args.json:
            print(line)
        on_event = None if args.json else (
            lambda e: print(f"  [{e['step']}] {e['message']}", file=sys.stderr))
        result = summary(agent.start_repair(args.session, args.wrong or "", on_event=on_event,
                                            execution=seen["id"] if seen else None))
        if args.json:
            emit({**result, "evidence": recorded, "scripted_model": agent.scripted}, True)
        else:
            _print_turn(result, agent.scripted)
        return 1 if result["error"] else 0
    finally:
        agent.close()


def add_parsers(sub) -> None:
    """Add `sea feedback`."""
    p = sub.add_parser("feedback", help="mark a session's last answer right, or wrong (repair)")
    p.add_argument("session", type=session_id, help="the session whose last answer is judged")
    verdict = p.add_mutually_exclusive_group(required=True)
    verdict.add_argument("--wrong", nargs="?", const="", metavar="NOTE",
                         help="the answer was wrong (an optional note why): repair the tool")
    verdict.add_argument("--right", nargs="?", const="", metavar="NOTE",
                         help="the answer was right")
    p.add_argument("--no-repair", action="store_true",
                   help="with --wrong: record the verdict only, repair nothing")
    common_options(p)
    p.set_defaults(func=cmd_feedback)
