"""The strict JSON reader behind lane request bodies and control requests."""

from __future__ import annotations

import json

import pytest

from harness.safejson import MAX_DEPTH, JSONError, loads


@pytest.mark.parametrize(
    "text,why",
    [
        ("NaN", "NaN"),
        ('{"a": Infinity}', "Infinity"),
        ("[-Infinity]", "-Infinity"),
        ("1e999", "out of range"),
        ("-1e999", "out of range"),
        ("1" * 400, "out of range"),
        ('"\\ud800"', "surrogate"),
        ('{"\\udfff": 1}', "surrogate"),
        ('["ok", {"deep": ["\\ud83d"]}]', "surrogate"),
        ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), "nested deeper"),
        ("[" * 100_000 + "]" * 100_000, "nested deeper"),
        ('{"a": ' * 200 + "1" + "}" * 200, "nested deeper"),
        ("{", "Expecting"),
    ],
)
def test_what_breaks_code_far_from_the_parser_is_refused_here(text, why):
    for data in (text, text.encode("utf-8", "surrogatepass")):
        with pytest.raises(JSONError) as info:
            loads(data)
        assert why in info.value.message
        assert isinstance(info.value, ValueError)


def test_raw_surrogate_bytes_and_bad_utf8_are_refused():
    with pytest.raises(JSONError, match="surrogate"):
        loads(b'"\xed\xa0\x80"')
    with pytest.raises(JSONError, match="UTF-8"):
        loads(b'"\xff"')


@pytest.mark.parametrize(
    "text",
    [
        '"\\ud83d\\ude00"',  # an escaped surrogate pair is one character
        "[" * MAX_DEPTH + "]" * MAX_DEPTH,
        '{"brackets in strings": "' + "[" * 1000 + '"}',
        "[" + ",".join(["{}"] * 1000) + "]",  # many brackets, shallow
        "1.5e308",
        "9" * 300,
        '{"emoji": "😀", "text": "naïve"}',
    ],
)
def test_ordinary_json_is_read_as_json_reads_it(text):
    assert loads(text) == json.loads(text)
    assert loads(text.encode()) == json.loads(text)
