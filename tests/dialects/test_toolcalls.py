"""Tool-call arguments: made deterministically for any schema, judged conservatively, and added up
from stream deltas into the journal's entries."""

from __future__ import annotations

import json

import jsonschema
import pytest

from harness.toolcalls import (
    ALL_DONE,
    ToolCallLog,
    ToolDelta,
    ToolSpec,
    args_sha,
    arguments_valid,
    canonical_arguments,
    fragment_count,
    fragments,
    make_arguments,
)

SCHEMAS = {
    "flat": {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer", "minimum": 1, "maximum": 7},
            "detailed": {"type": "boolean"},
            "ratio": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
        },
        "required": ["city", "unit"],
        "additionalProperties": False,
    },
    "nested": {
        "type": "object",
        "properties": {
            "patch": {
                "type": "object",
                "properties": {
                    "file": {"type": "string", "minLength": 12, "maxLength": 40},
                    "hunks": {
                        "type": "array",
                        "minItems": 2,
                        "items": {
                            "type": "object",
                            "properties": {"start": {"type": "integer"}, "text": {"type": "string"}},
                            "required": ["start", "text"],
                        },
                    },
                },
                "required": ["file", "hunks"],
            },
            "when": {"type": "string", "format": "date-time"},
            "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}, "maxItems": 1},
            "note": {"type": ["string", "null"]},
            "mode": {"const": "apply"},
        },
        "required": ["patch", "mode"],
    },
    # what openai.pydantic_function_tool and anthropic's helpers send: $defs and $ref, anyOf null
    "pydantic": {
        "$defs": {
            "Range": {
                "properties": {"lo": {"type": "integer"}, "hi": {"type": "integer"}},
                "required": ["lo", "hi"],
                "type": "object",
                "additionalProperties": False,
            }
        },
        "properties": {
            "query": {"type": "string"},
            "range": {"$ref": "#/$defs/Range"},
            "limit": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
        },
        "required": ["query", "range", "limit"],
        "type": "object",
        "additionalProperties": False,
    },
    "empty": {"type": "object", "properties": {}},
    "none": None,
}


@pytest.mark.parametrize("name", list(SCHEMAS))
@pytest.mark.parametrize("size", [0, 200])
def test_arguments_satisfy_their_schema(name, size):
    spec = ToolSpec("t", SCHEMAS[name])
    text = make_arguments(spec, "seed", size)
    value = json.loads(text)
    jsonschema.validate(value, SCHEMAS[name] or {"type": "object"})
    assert arguments_valid(text, spec)
    assert make_arguments(spec, "seed", size) == text  # deterministic
    if size and name in ("flat", "nested", "pydantic"):
        # grown in its free-text strings, whole words, unless the schema alone needs more
        assert 0.9 * size <= len(text) <= max(size, len(make_arguments(spec, "seed", 0)))
    if name == "nested":
        assert len(value["patch"]["file"]) <= 40


def test_gemini_schemas_use_upper_case_types_and_string_counts():
    schema = {
        "type": "OBJECT",
        "properties": {"n": {"type": "INTEGER"}, "xs": {"type": "ARRAY", "items": {"type": "STRING"}, "minItems": "3"}},
        "required": ["n", "xs"],
    }
    value = json.loads(make_arguments(ToolSpec("g", schema), "s"))
    assert isinstance(value["n"], int) and len(value["xs"]) == 3
    assert arguments_valid(json.dumps(value), ToolSpec("g", schema))


def test_different_seeds_differ():
    spec = ToolSpec("t", SCHEMAS["flat"])
    assert make_arguments(spec, "a") != make_arguments(spec, "b")


@pytest.mark.parametrize(
    ("raw", "valid"),
    [
        ('{"city": "Paris", "unit": "celsius"}', True),
        ('{"city": "Paris"}', False),  # required unit missing
        ('{"city": "Paris", "unit": "kelvin"}', False),  # not in the enum
        ('{"city": 3, "unit": "celsius"}', False),  # wrong type
        ('{"city": "Paris", "unit": "celsius", "days": 2.0}', True),  # 2.0 is an integer in JSON Schema
        ('{"city": "Paris", "unit": "celsius", "days": true}', False),  # a boolean is not an integer
        ('{"city": "Paris", "unit": "celsius"', False),  # cut
        ("[1, 2]", False),
        ("", False),
    ],
)
def test_validity(raw, valid):
    assert arguments_valid(raw, ToolSpec("t", SCHEMAS["flat"])) is valid


def test_validity_is_conservative():
    """Keywords it does not judge (patterns, formats, additionalProperties, unresolvable refs)
    never make arguments invalid: a check on top must not fail a correct agent."""
    schema = {
        "type": "object",
        "properties": {"s": {"type": "string", "pattern": "^x$", "format": "email"}, "r": {"$ref": "other.json#/x"}},
        "additionalProperties": False,
    }
    assert arguments_valid('{"s": "not an email", "r": 1, "extra": true}', ToolSpec("t", schema))
    assert arguments_valid('{"anything": 1}', None)  # a tool that was not offered: only JSON counts


def test_canonical_arguments_ignore_order_and_spacing():
    assert canonical_arguments('{"b": 1,  "a": "é"}') == canonical_arguments({"a": "é", "b": 1}) == '{"a":"é","b":1}'
    assert args_sha('{"b":1,"a":"é"}') == args_sha({"a": "é", "b": 1})
    assert canonical_arguments('{"a": ') == '{"a":'  # not JSON: kept as sent


def test_fragments_join_back():
    text = make_arguments(ToolSpec("t", SCHEMAS["nested"]), "x", 120)
    parts = fragments(text)
    assert "".join(parts) == text and len(parts) == fragment_count(text) > 20
    assert "".join(fragments(text, 3, 5)) == text[12:32]


def test_large_arguments_are_cheap():
    """The simulator makes them per request: a megabyte must not take a noticeable time."""
    spec = ToolSpec("w", {"type": "object", "properties": {"content": {"type": "string"}}, "required": ["content"]})
    text = make_arguments(spec, "s", 1_000_000)
    assert 900_000 <= len(text) <= 1_000_000 and json.loads(text)["content"]


def _log(*deltas: ToolDelta, finish: str | None = "stop") -> list[dict]:
    log = ToolCallLog()
    log.feed(deltas)
    out = log.result([ToolSpec("read", {"type": "object", "required": ["path"]})], finish)
    assert out is not None
    return out


def test_log_chat_style_calls_end_with_the_finish():
    calls = _log(
        ToolDelta(0, "call_a", "read"),
        ToolDelta(0, arguments='{"pa'),
        ToolDelta(0, arguments='th": "x"}'),
        ToolDelta(1, "call_b", "write"),
        ToolDelta(1, arguments='{"x"'),
    )
    assert [(c["id"], c["arguments_complete"], c["arguments_valid"], c["offered"]) for c in calls] == [
        ("call_a", True, True, True),  # the next call opened: its arguments were over
        ("call_b", False, False, False),
    ]
    assert calls[0]["args_sha"] == args_sha({"path": "x"})
    done = _log(ToolDelta(0, "c", "read"), ToolDelta(0, arguments='{"path":"x"}'), ALL_DONE)
    assert done[0]["arguments_complete"]


def test_log_length_finish_means_the_last_call_was_cut():
    calls = _log(ToolDelta(0, "t", "read"), ToolDelta(0, arguments='{"path"'), ToolDelta(0, done=True), finish="length")
    assert calls[0]["arguments_complete"] is False


def test_log_ignores_ends_of_blocks_that_were_not_calls():
    calls = _log(ToolDelta(0, done=True), ToolDelta(1, "t", "read", '{"path":"p"}', done=True))
    assert len(calls) == 1 and calls[0]["arguments_complete"]


def test_log_whole_calls_at_one_index_are_separate_calls():
    """Gemini sends each call whole; two chunks may both put one at part 0."""
    calls = _log(
        ToolDelta(0, None, "read", '{"path":"a"}', done=True), ToolDelta(0, None, "read", '{"path":"b"}', done=True)
    )
    assert len(calls) == 2 and calls[0]["args_sha"] != calls[1]["args_sha"]
    assert ToolCallLog().result() is None
