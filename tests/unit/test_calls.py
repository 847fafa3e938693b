"""What the outside doors (MCP, LangChain) refuse before anything reaches the sandbox."""

from __future__ import annotations

import pytest

from tools_store.calls import (
    MAX_ARGUMENT_BYTES,
    InvalidArguments,
    checked_arguments,
    describe,
    offered,
)
from tools_store.errors import LibraryError
from tools_store.models import ToolRecord, ToolSpec


def record(status: str = "verified") -> ToolRecord:
    spec = ToolSpec(name="pad_text", description="Pad a text to a width.",
                    parameters=[{"name": "text", "type": "string"},
                                {"name": "width", "type": "integer", "required": False,
                                 "default": 10}])
    return ToolRecord(name="pad_text", version=3, status=status, spec=spec, code="", tests="")


def test_arguments_are_checked_and_defaults_filled():
    assert checked_arguments(record(), {"text": "a"}) == {"text": "a", "width": 10}
    with pytest.raises(InvalidArguments, match="missing argument 'text'"):
        checked_arguments(record(), None)  # no arguments at all: an empty object


@pytest.mark.parametrize("arguments, message", [
    ({"text": 1}, "argument 'text' must be str"),
    ({"text": "a", "width": True}, "must be a integer, not a boolean"),
    ({"text": "a", "colour": "red"}, "unknown arguments: colour"),
    ({}, "missing argument 'text'"),
    ({"text": float("nan")}, "arguments are not JSON"),
    ({"text": "x" * MAX_ARGUMENT_BYTES}, f"the limit is {MAX_ARGUMENT_BYTES}"),
    (["text"], "arguments must be a JSON object"),
])
def test_bad_arguments_are_refused_with_a_reason(arguments, message):
    with pytest.raises(InvalidArguments, match=message.replace("(", r"\(")) as caught:
        checked_arguments(record(), arguments)
    assert isinstance(caught.value, LibraryError)  # callers catch one family


def test_experimental_tools_are_offered_only_on_request_and_say_so():
    assert offered("verified", False) and not offered("experimental", False)
    assert offered("experimental", True) and not offered("retired", True)
    assert describe(record()).startswith("Pad a text to a width.")
    assert describe(record("experimental")).startswith("EXPERIMENTAL: pad_text v3")
