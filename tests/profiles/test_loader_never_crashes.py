"""Profiles that used to crash the loader, or were refused with no line: each is now a
:class:`ProfileError` naming file, line and field.

Before (profile fuzzing, 2,418 Hypothesis examples): 26 exceptions that were not a
``ProfileError`` (an unhashable ``lane:`` list, ``a: &x [*x]``, a list 5000 levels deep,
``.inf``/``.nan`` toxic attributes, a file that is not UTF-8) and 173 errors with no line (a
control character). The loader also stopped at the first error; it now reports all, in line order.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.profile import ProfileError, load_profile, load_profile_text, profile_from_dict
from harness.yamlpos import MAX_DEPTH

LANES = "lanes:\n  primary:\n    dialect: openai-chat\n"  # lines 1-3


def located(text: str, tmp_path: Path) -> ProfileError:
    path = tmp_path / "p.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    err = info.value
    assert err.file == str(path)
    return err


@pytest.mark.parametrize(
    ("text", "line", "field", "says"),
    [
        (LANES + "faults:\n  - {fault: overloaded, lane: [primary]}\n", 5, "faults[0].lane", "must be a lane name"),
        (LANES + "faults:\n  - {fault: overloaded, lane: {a: 1}}\n", 5, "faults[0].lane", "must be a lane name"),
        (LANES + "toxics:\n  - {lane: [primary], type: latency}\n", 5, "toxics[0].lane", "must be a lane name"),
        ("a: &x [*x]\n", 1, "a[0]", "recursive"),
        (LANES + "faults: &f\n  - *f\n", 5, "faults[0]", "recursive"),
        ("a: *nowhere\n", 1, "a", "no anchor"),
        ("a: " + "[" * 5000 + "]" * 5000 + "\n", 1, "a" + "[0]" * (MAX_DEPTH - 1), f"deeper than {MAX_DEPTH}"),
        ("faults:\n" + "- " * 5000 + "x\n", 2, "faults" + "[0]" * (MAX_DEPTH - 1), f"deeper than {MAX_DEPTH}"),
        (
            LANES + "toxics:\n  - lane: primary\n    type: latency\n    attributes: {latency: .inf}\n",
            7,
            "toxics[0].attributes.latency",
            "integer >= 0",
        ),
        (
            LANES + "toxics:\n  - lane: primary\n    type: latency\n    toxicity: .nan\n",
            7,
            "toxics[0].toxicity",
            "0 and 1",
        ),
        (LANES + "toxics:\n  - {lane: primary, type: slicer, attributes: {delay: -.inf}}\n", 5, None, "integer >= 0"),
        (LANES + "name: a\x01b\n", 4, "name", "control character U+0001 at column 8"),
        (LANES + "faults:\n  - fault: overloaded\x07\n", 5, "faults[0].fault", "control character U+0007"),
        ("\x00", 1, None, "control character U+0000"),
        (LANES + "seed: " + "9" * 5000 + "\n", 4, "seed", "not a usable integer"),
        (LANES + "seed: " + "9" * 30 + "\n", 4, "seed", "out of range"),
        (LANES + "name: !!python/object:os.system x\n", 4, "name", "not supported"),
        (LANES + "name: !!binary aGVsbG8=\n", 4, "name", "not supported"),
        (LANES + "faults: !!set {a}\n", 4, "faults", "not supported"),
        (LANES + "name: [1]\n", 4, "name", "must be a string"),
        (
            "lanes:\n  primary:\n    dialect: openai-chat\n    upstream: 'http://[::1'\n",
            4,
            "lanes.primary.upstream",
            "URL",
        ),
        (LANES + "---\nseed: 1\n", 4, None, "one YAML document"),
        # found by the fuzz target profile_yaml: a string attribute took .nan as the text "nan"
        (LANES + "faults:\n  - {fault: bad_gateway, message: .nan}\n", 5, "faults[0].message", "must be a string"),
        # found by profile_yaml: PyYAML's scanner raised OverflowError on this escape
        (LANES + 'description: "a\\U99999999"\n', 4, "description", "beyond Unicode"),
    ],
)
def test_a_malformed_profile_is_a_located_profile_error(tmp_path, text, line, field, says):
    err = located(text, tmp_path)
    assert err.line == line, str(err)
    if field is not None:
        assert err.field == field, str(err)
    assert says in str(err)


def test_a_file_that_is_not_utf8_names_line_field_and_byte(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(LANES.encode() + "description: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    err = info.value
    assert (err.file, err.line, err.field) == (str(path), 4, "description"), str(err)
    assert "not valid UTF-8: byte e9" in err.message


def test_an_oversized_file_is_refused_before_it_is_parsed(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text(LANES + "description: " + "x" * (1024 * 1024) + "\n")
    with pytest.raises(ProfileError, match="at most 1048576 bytes"):
        load_profile(path)


def test_aliases_expand_and_errors_inside_them_name_where_they_are_written(tmp_path):
    text = LANES + (
        "faults:\n"  # 4
        "  - &slow {fault: slow_first_token, lane: primary, delay: 1}\n"  # 5
        "  - *slow\n"  # 6
        "  - &bad {fault: stall, lane: primary, duration: .nan}\n"  # 7
        "  - *bad\n"  # 8
    )
    err = located(text, tmp_path)
    # both copies of the bad fault are reported; the attribute is where it is written (line 7)
    assert [(e.line, e.field) for e in err.errors] == [(7, "faults[2].duration"), (7, "faults[3].duration")]
    good = load_profile_text(LANES + "faults:\n  - &s {fault: slow_first_token, lane: primary, delay: 1}\n  - *s\n")
    assert [f.attrs for f in good.faults] == [{"delay": 1}, {"delay": 1}]


def test_an_alias_bomb_is_refused_without_expanding_it(tmp_path):
    text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for i in range(1, 9):  # ten times more values at each level: 10**9 in all
        text += f"{chr(97 + i)}: &{chr(97 + i)} [" + ", ".join([f"*{chr(96 + i)}"] * 10) + "]\n"
    err = located(text, tmp_path)
    assert "more than 100000 values" in err.message and err.line is not None


def test_every_error_of_a_profile_is_reported_at_once_in_line_order(tmp_path):
    text = (
        "colour: red\n"  # 1
        "lanes:\n"  # 2
        "  primary:\n"  # 3
        "    dialect: openai-chat\n"  # 4
        "    port: -1\n"  # 5
        "  stable:\n"  # 6
        "    dialect: klingon\n"  # 7
        "faults:\n"  # 8
        "  - {fault: overloaded, lane: nowhere}\n"  # 9
        "  - {fault: overloaded, lane: primary}\n"  # 10: fine
        "  - {fault: stall, lane: stable, duration: .inf}\n"  # 11: stable is wrong, but it is a lane
        "checks:\n"  # 12
        "  - no_such_check\n"  # 13
        "seed: 1.5\n"  # 14
    )
    err = located(text, tmp_path)
    got = [(e.line, e.field) for e in err.errors]
    assert got == [
        (1, "colour"),
        (5, "lanes.primary.port"),
        (7, "lanes.stable.dialect"),
        (9, "faults[0].lane"),
        (11, "faults[2].duration"),
        (13, "checks[0].no_such_check"),
        (14, "seed"),
    ], str(err)
    assert (err.line, err.field) == (1, "colour")  # the first one stands for all
    assert str(err).startswith("7 errors:\n") and str(err).count(str(err.errors[0].file)) == 7


@pytest.mark.parametrize(
    ("data", "field", "says"),
    [
        (
            {"lanes": {"a": {"dialect": "openai-chat"}}, "faults": [{"fault": "overloaded", "lane": ["a"]}]},
            "faults[0].lane",
            "lane name",
        ),
        ({"lanes": {"a": {"dialect": "openai-chat"}}, "seed": {1, 2}}, "seed", "got set"),
        ({"lanes": {"a": {"dialect": "openai-chat"}}, 5: 1}, None, "keys must be strings"),
        ({"lanes": {"a": {"dialect": "openai-chat"}}, "seed": 10**400}, "seed", "out of range"),
        ({"lanes": {"a": {"dialect": "openai-chat"}}, "description": object()}, "description", "got object"),
    ],
)
def test_profile_data_built_in_code_is_held_to_the_same_rules(data, field, says):
    with pytest.raises(ProfileError) as info:
        profile_from_dict(data)
    assert info.value.field == field and says in str(info.value), str(info.value)


def test_profile_data_nested_past_the_cap_is_refused_without_recursion():
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(ProfileError, match="deeper than"):
        profile_from_dict({"lanes": {"a": {"dialect": "openai-chat"}}, "faults": deep})
