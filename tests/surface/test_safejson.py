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


# past 64 KiB the checks take another road (substring searches, stopping at the limit): the same
# answers there, wherever in a long body the problem sits
_PAD = "x" * 100_000


@pytest.mark.parametrize(
    "text,why",
    [
        ('{"pad": "' + _PAD + '", "a": ' + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "}", "nested deeper"),
        ('{"a": ' * 200 + '"' + _PAD + '"' + "}" * 200, "nested deeper"),
        ('["' + _PAD + '", "\\ud800"]', "surrogate"),
        ('{"' + _PAD + '": 1, "\\uDFFF": 2}', "surrogate"),
        ('["' + _PAD + 'naïve", "\\ud83d"]', "surrogate"),
    ],
)
def test_a_long_body_is_refused_for_what_a_short_one_is(text, why):
    for data in (text, text.encode("utf-8", "surrogatepass")):
        with pytest.raises(JSONError) as info:
            loads(data)
        assert why in info.value.message


def test_a_long_body_with_a_raw_surrogate_is_refused():
    with pytest.raises(JSONError, match="surrogate"):
        loads(b'["' + _PAD.encode() + b'", "\xed\xb0\x80"]')


@pytest.mark.parametrize(
    "text",
    [
        '{"pad": "' + _PAD + '", "a": ' + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "}",
        "[" + ",".join(['{"t": "' + "y" * 100 + '"}'] * 2000) + "]",  # many brackets, shallow, long
        '{"text": "' + "[" * 70_000 + '"}',
        '["' + _PAD + '", "\\ud83d\\ude00", "\\\\ud800 is only text"]',
        '{"hangul": "' + "한국어 텍스트 " * 10_000 + '"}',  # U+D55C: its UTF-8 starts like a surrogate's
    ],
)
def test_a_long_ordinary_body_is_read_as_json_reads_it(text):
    assert loads(text) == json.loads(text)
    assert loads(text.encode()) == json.loads(text)
