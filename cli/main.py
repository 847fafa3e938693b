"""The `sea` command line: one parser; each area of the product adds its own subcommands."""

from __future__ import annotations

import argparse
import sys

from . import ask, bench, evaluate, feedback, sandbox, tools

AREAS = [ask, feedback, tools, sandbox, evaluate, bench]


def build_parser() -> argparse.ArgumentParser:
    """Return the parser with every area's subcommands mounted."""
    parser = argparse.ArgumentParser(prog="sea", description="The self-engineering agent.")
    sub = parser.add_subparsers(dest="command", required=True)
    for area in AREAS:
        area.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line and return its exit status."""
    args = build_parser().parse_args(argv)
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


if __name__ == "__main__":
    sys.exit(main())
