"""Printing results for people or as JSON, reading JSON files, and benchmark percentiles."""

from __future__ import annotations

import json
import statistics
from pathlib import Path


def read_json(path) -> object:
    """Return the JSON in the file at ``path``; ValueError naming the file if it cannot."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read it as JSON ({exc})") from exc


def emit(payload: dict, as_json: bool, lines: list[str] | None = None) -> None:
    """Print ``payload`` as JSON, or ``lines`` (default: key: value) for people."""
    if as_json:
        print(json.dumps(payload, indent=2, default=str))
        return
    for line in lines if lines is not None else [f"{k}: {v}" for k, v in payload.items()]:
        print(line)


def percentiles(samples: list[float], scale: float = 1.0, digits: int = 4) -> dict:
    """Return the p50 and p95 of ``samples`` (times ``scale``) and their count."""
    ordered = sorted(samples)
    return {"p50": round(scale * statistics.median(ordered), digits),
            "p95": round(scale * ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
                         digits),
            "n": len(ordered)}


def subcommand_adder(subparsers):
    """Return ``add(name, func, help, *(argument, options))`` for an area's subcommands.

    Every subcommand it adds takes ``--json``, as every ``sea`` command does.
    """

    def add(name, func, help_text, *arguments):
        p = subparsers.add_parser(name, help=help_text)
        for argument, options in arguments:
            p.add_argument(argument, **options)
        p.add_argument("--json", action="store_true", help="print JSON")
        p.set_defaults(func=func)
        return p

    return add
