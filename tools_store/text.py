"""Text PostgreSQL cannot store: NUL characters and lone surrogates, named or escaped.

Neither ``text`` nor ``jsonb`` takes a NUL character, and a lone surrogate (what Python makes
of bytes that are not UTF-8) is not Unicode at all. Requests holding them are refused at the
edge; results holding them are escaped, so they can still be logged.
"""

from __future__ import annotations

import re
from typing import Any

_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


def unstorable(value: Any) -> str:
    """Name what in ``value`` (text, or JSON-like lists and objects) cannot be stored, or ""."""
    if isinstance(value, str):
        found = _UNSTORABLE.search(value)
        if not found:
            return ""
        return ("a NUL character" if found.group() == "\x00" else
                "a lone surrogate (text that is not valid Unicode)")
    if isinstance(value, dict):
        value = [*value.keys(), *value.values()]
    if isinstance(value, list | tuple):
        return next((problem for item in value if (problem := unstorable(item))), "")
    return ""


def check_storable(what: str, text: str) -> None:
    """Raise ValueError naming what in ``text`` (the ``what``) no storage can hold."""
    problem = unstorable(text)
    if problem:
        raise ValueError(f"the {what} contains {problem}, which cannot be stored; remove it "
                         "and try again")


def _escape(found: re.Match) -> str:
    code = ord(found.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def storable(value: Any) -> Any:
    r"""Return ``value`` with NUL characters and lone surrogates escaped (``\x00``, ``\udcff``)."""
    if isinstance(value, str):
        return _UNSTORABLE.sub(_escape, value)
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable(item) for item in value]
    return value
