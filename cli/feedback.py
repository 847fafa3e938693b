"""`sea feedback SESSION --wrong|--right [NOTE]`: a user's verdict on a session's last answer.

The verdict becomes strong evidence for the pair (request, tool) of the session's last tool
run; "wrong" also withdraws the positive evidence for that tool on the same request.
"""

from __future__ import annotations

from tools_store.library import ToolLibrary

from .output import emit


def cmd_feedback(args) -> int:
    """Record the verdict."""
    serves = args.right is not None
    item = ToolLibrary().feedback(args.session, serves=serves,
                                  note=(args.right if serves else args.wrong) or "")
    verdict = "serves" if item.serves else "does not serve"
    emit(item.model_dump() | {"strength": item.strength}, args.json,
         [f"recorded: {item.tool} v{item.version} {verdict} {item.request!r} "
          f"({item.source}, {item.strength})"])
    return 0


def add_parsers(sub) -> None:
    """Add `sea feedback`."""
    p = sub.add_parser("feedback", help="mark a session's last answer right or wrong")
    p.add_argument("session")
    verdict = p.add_mutually_exclusive_group(required=True)
    verdict.add_argument("--wrong", nargs="?", const="", metavar="NOTE",
                         help="the tool did not serve the request (an optional note why)")
    verdict.add_argument("--right", nargs="?", const="", metavar="NOTE",
                         help="the tool served it")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_feedback)
