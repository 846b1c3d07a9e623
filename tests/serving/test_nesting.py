"""serving/nesting.py: how deeply a JSON text nests, measured without parsing it, as json.loads reads it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from serving.nesting import nesting_depth


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        (b"", 0),
        (b"1", 0),
        (b"[]", 1),
        (b'{"a": [1, {"b": []}], "c": {}}', 4),
        (b'["]]]", "[[[", "{{{"]', 1),
        (b'{"[": "{"}', 1),
        (rb'["a \" [[[ still the string"]', 1),
        (rb'["\\", [["after an escaped backslash, the string ended"]]]', 3),
        (rb'["\\\" [[[ an escaped backslash, then an escaped quote"]', 1),
        (b'["a string left open [[[[[[', 1),
        (b"]][[", 0),
    ],
)
def test_brackets_inside_strings_do_not_count(text: bytes, depth: int) -> None:
    assert nesting_depth(text) == depth
    try:
        parsed = json.loads(text)
    except ValueError:
        return  # not JSON: nothing parses it deeper than where it stops being JSON
    assert depth == depth_of(parsed), "the depth json.loads builds"


def depth_of(value: Any) -> int:
    """How deeply a parsed JSON value nests arrays and objects."""
    if isinstance(value, dict):
        value = list(value.values())
    return 1 + max(map(depth_of, value), default=0) if isinstance(value, list) else 0


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-32-be"])
def test_every_encoding_json_reads_is_measured(encoding: str) -> None:
    text = '{"a": ["[[[", [[1]]]}'
    assert json.loads(text.encode(encoding)) == {"a": ["[[[", [[1]]]}, "json.loads reads it"
    assert nesting_depth(text.encode(encoding)) == 4


def test_a_deep_body_is_measured_without_recursion() -> None:
    assert nesting_depth(b"[" * 1_000_000) == 1_000_000
    assert nesting_depth(b'{"a":' * 100_000 + b"1" + b"}" * 100_000) == 100_000
