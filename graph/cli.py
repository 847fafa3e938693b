"""The `sea` command line: one parser, each area adds its own subcommands."""

from __future__ import annotations

import argparse
import importlib
import sys

# Each area owns its subcommands; this module only mounts them.
AREAS = ["sandbox.cli", "tools_store.cli", "graph.ask_cli"]


def build_parser() -> argparse.ArgumentParser:
    """Return the parser with every area's subcommands mounted."""
    parser = argparse.ArgumentParser(prog="sea", description="The self-engineering agent.")
    sub = parser.add_subparsers(dest="command", required=True)
    bench = sub.add_parser("bench", help="benchmarks that print figures")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True)
    for area in AREAS:
        try:
            module = importlib.import_module(area)
        except ModuleNotFoundError as exc:
            if exc.name != area:
                raise
            continue
        module.add_parsers(sub, bench_sub)
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
