"""Malformed profiles and the exact ``file:line: field:`` each must be reported at.

A profile error is read by a person with the file open: the line must be the line to edit and the
field path the key to fix, or the message sends them hunting. Each case is YAML written to a temp
file, loaded with :func:`load_profile`, and held to the exact location (and a word of the message).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.profile import ProfileError, load_profile

#: six lines; the case text appended to it starts at line 7
BASE = """\
name: bad
lanes:
  primary:
    dialect: openai-chat
  stable:
    dialect: anthropic
"""


@dataclass(frozen=True)
class Case:
    id: str
    text: str
    line: int | None
    field: str | None
    says: str
    file: str = "bad.yaml"  # where the error must be reported
    extra: dict[str, str] = field(default_factory=dict)  # other files (for extends)


def fault(body: str) -> str:
    """BASE plus ``faults:`` (line 7) and one fault whose first key is on line 8."""
    return BASE + "faults:\n" + body


def check(body: str) -> str:
    return BASE + "checks:\n" + body


def toxic(body: str) -> str:
    return BASE + "toxics:\n" + body


CASES = [
    # -- top level ----------------------------------------------------------------------------
    Case("unknown-top-level-key", BASE + "colour: red\n", 7, "colour", "unknown key"),
    Case("duplicate-key", BASE + "seed: 1\nseed: 2\n", 8, "seed", "duplicate key 'seed' (first at line 7)"),
    Case("time-scale-zero", BASE + "time_scale: 0\n", 7, "time_scale", "must be a finite number > 0"),
    Case("time-scale-string", BASE + "time_scale: fast\n", 7, "time_scale", "must be a finite number > 0"),
    Case("seed-not-int", BASE + "seed: 1.5\n", 7, "seed", "must be an integer"),
    Case("seed-bool", BASE + "seed: true\n", 7, "seed", "must be an integer"),
    Case(
        "yaml-syntax-error",
        "name: bad\nlanes:\n  primary:\n    dialect: [openai\n  stable: {}\n",
        5,
        None,
        "invalid YAML",
    ),
    Case(
        "yaml-bad-indent",
        "name: bad\nlanes:\n  primary:\n    dialect: openai\n   stable: x\n",
        5,
        "lanes",  # the value whose block holds the bad line
        "invalid YAML",
    ),
    Case("not-a-mapping", "- just\n- a list\n", 1, None, "a profile is a mapping"),
    Case("faults-not-a-list", BASE + "faults:\n  fault: overloaded\n", 7, "faults", "must be a list"),
    # -- lanes --------------------------------------------------------------------------------
    Case("lanes-not-mapping", "lanes: [primary, stable]\n", 1, "lanes", "must be a mapping"),
    Case("lane-without-dialect", "lanes:\n  primary:\n    port: 8080\n", 2, "lanes.primary.dialect", "required"),
    Case("unknown-dialect", "lanes:\n  primary:\n    dialect: cohere\n", 3, "lanes.primary.dialect", "'cohere'"),
    Case(
        "unknown-lane-key", "lanes:\n  primary:\n    dialect: openai\n    prot: 1\n", 4, "lanes.primary.prot", "unknown"
    ),
    Case("bad-port", "lanes:\n  primary:\n    dialect: openai\n    port: 70000\n", 4, "lanes.primary.port", "port"),
    Case(
        "upstream-not-http",
        "lanes:\n  primary:\n    dialect: openai\n    upstream: ftp://api.example.com\n",
        4,
        "lanes.primary.upstream",
        "http:// or https://",
    ),
    Case(
        "upstream-and-simulator",
        "lanes:\n  primary:\n    dialect: openai\n    simulator:\n      ttft: 1\n    upstream: https://api.openai.com\n",
        6,
        "lanes.primary.upstream",
        "not both",
    ),
    Case(
        "unknown-simulator-setting",
        "lanes:\n  primary:\n    dialect: openai\n    simulator:\n      ttft: 1\n      warp: 9\n",
        6,
        "lanes.primary.simulator.warp",
        "unknown simulator setting",
    ),
    Case(
        "negative-tokens-per-second",
        "lanes:\n  primary:\n    dialect: openai\n    simulator:\n      tokens_per_second: -5\n",
        5,
        "lanes.primary.simulator.tokens_per_second",
        "a number > 0",
    ),
    Case(
        "bad-slots",
        "lanes:\n  primary:\n    dialect: openai\n    simulator:\n      slots: 0\n",
        5,
        "lanes.primary.simulator.slots",
        "an integer >= 1",
    ),
    Case(
        "bad-capacity-error",
        "lanes:\n  primary:\n    dialect: openai\n    simulator: {capacity_error: explode}\n",
        4,
        "lanes.primary.simulator.capacity_error",
        "must be one of",
    ),
    Case(
        "bad-read-timeout",
        "lanes:\n  p:\n    dialect: openai\n    read_timeout: -1\n",
        4,
        "lanes.p.read_timeout",
        "> 0",
    ),
    # -- faults -------------------------------------------------------------------------------
    Case("fault-not-mapping", fault("  - overloaded\n"), 8, "faults[0]", "a fault is a mapping"),
    Case("fault-missing-name", fault("  - lane: primary\n    status: 500\n"), 8, "faults[0].fault", "required"),
    Case("unknown-fault", fault("  - fault: gremlins\n    lane: primary\n"), 8, "faults[0].fault", "unknown fault"),
    Case(
        "unknown-fault-attribute",
        fault("  - fault: rate_limit\n    lane: primary\n    retry_afterr: 2\n"),
        10,
        "faults[0].retry_afterr",
        "unknown attribute for fault 'rate_limit'",
    ),
    Case(
        "wrong-attribute-type",
        fault("  - fault: rate_limit\n    lane: primary\n    retry_after: soon\n"),
        10,
        "faults[0].retry_after",
        "must be a number",
    ),
    Case(
        "bool-attribute-as-string",
        fault("  - fault: overloaded\n    lane: primary\n    should_retry: 'no'\n"),
        10,
        "faults[0].should_retry",
        "true or false",
    ),
    Case(
        "bad-choice-value",
        fault("  - fault: http_error\n    lane: primary\n    status: 502\n    body: xml\n"),
        11,
        "faults[0].body",
        "must be one of json, html, empty",
    ),
    Case(
        "fault-validate-range",
        fault("  - fault: http_error\n    lane: primary\n    status: 200\n"),
        10,
        "faults[0].status",
        "between 400 and 599",
    ),
    Case(
        "lane-not-declared",
        fault("  - fault: overloaded\n    lane: turbo\n"),
        9,
        "faults[0].lane",
        "no lane named 'turbo'",
    ),
    Case(
        "bad-schedule-key",
        fault("  - fault: overloaded\n    lane: primary\n    schedule:\n      frist: 3\n"),
        11,
        "faults[0].schedule.frist",
        "unknown schedule key",
    ),
    Case(
        "bad-schedule-string",
        fault("  - fault: overloaded\n    lane: primary\n    schedule: sometimes\n"),
        10,
        "faults[0].schedule",
        "unknown schedule 'sometimes'",
    ),
    Case(
        "schedule-first-negative",
        fault("  - fault: overloaded\n    lane: primary\n    schedule:\n      first: -1\n"),
        11,
        "faults[0].schedule.first",
        "integer >= 0",
    ),
    Case(
        "schedule-window-reversed",
        fault("  - fault: overloaded\n    lane: primary\n    schedule:\n      window: [20, 10]\n"),
        11,
        "faults[0].schedule.window",
        "from < to",
    ),
    Case(
        "probability-above-one",
        fault("  - fault: overloaded\n    lane: primary\n    schedule: {probability: 1.5}\n"),
        10,
        "faults[0].schedule.probability",
        "<= 1",
    ),
    Case(
        "for-without-every",
        fault("  - fault: refuse\n    lane: primary\n    schedule:\n      for: 3\n"),
        11,
        "faults[0].schedule.for",
        "only goes with every",
    ),
    Case(
        "every-without-for",
        fault("  - fault: refuse\n    lane: primary\n    schedule:\n      every: 10\n"),
        11,
        "faults[0].schedule.every",
        "needs for:",
    ),
    Case(
        "sequence-item-bad",
        fault(
            "  - fault: overloaded\n    lane: primary\n    schedule:\n      sequence:\n"
            "        - fail\n        - maybe\n"
        ),
        13,
        "faults[0].schedule.sequence[1]",
        "fail or ok",
    ),
    Case(
        "second-fault-located",
        fault("  - fault: overloaded\n    lane: primary\n  - fault: queue\n    lane: primary\n    delay: later\n"),
        12,
        "faults[1].delay",
        "must be a number",
    ),
    # -- checks -------------------------------------------------------------------------------
    Case("unknown-check", check("  - no_such_check\n"), 8, "checks[0].no_such_check", "unknown check"),
    Case(
        "bad-check-param-type",
        check("  - fallback_within: {primary: primary, fallback: stable, within: soon}\n"),
        8,
        "checks[0].fallback_within.within",
        "must be a number",
    ),
    Case(
        "unknown-check-param",
        check("  - no_hammering:\n      max_attemps: 3\n"),
        9,
        "checks[0].no_hammering.max_attemps",
        "unknown parameter",
    ),
    Case(
        "missing-check-param",
        check("  - no_lost_calls\n  - fallback_within: {primary: primary}\n"),
        9,
        "checks[1].fallback_within",
        "missing required parameter",
    ),
    Case(
        "check-param-out-of-range",
        check("  - fallback_within:\n      primary: primary\n      fallback: stable\n      within: -1\n"),
        11,
        "checks[0].fallback_within.within",
        "must be > 0",
    ),
    Case("check-params-not-mapping", check("  - no_hammering: 3\n"), 8, "checks[0].no_hammering", "must be a mapping"),
    # -- toxics -------------------------------------------------------------------------------
    Case(
        "toxic-bad-type", toxic("  - lane: primary\n    type: jitter\n"), 9, "toxics[0].type", "must be one of latency"
    ),
    Case(
        "toxic-bad-stream",
        toxic("  - lane: primary\n    type: latency\n    stream: sideways\n"),
        10,
        "toxics[0].stream",
        "upstream or downstream",
    ),
    Case(
        "toxic-bad-toxicity",
        toxic("  - lane: primary\n    type: latency\n    toxicity: 1.5\n"),
        10,
        "toxics[0].toxicity",
        "between 0 and 1",
    ),
    Case(
        "toxic-unknown-attribute",
        toxic("  - lane: primary\n    type: latency\n    attributes:\n      latencyy: 100\n"),
        11,
        "toxics[0].attributes.latencyy",
        "unknown attribute for toxic 'latency'",
    ),
    Case(
        "toxic-attribute-not-int",
        toxic("  - lane: primary\n    type: bandwidth\n    attributes: {rate: fast}\n"),
        10,
        "toxics[0].attributes.rate",
        "integer >= 0",
    ),
    Case("toxic-unknown-lane", toxic("  - lane: turbo\n    type: latency\n"), 8, "toxics[0].lane", "no lane named"),
    Case(
        "toxic-bad-schedule",
        toxic("  - lane: primary\n    type: down\n    schedule: {window: [5, 1]}\n"),
        10,
        "toxics[0].schedule.window",
        "from < to",
    ),
    # -- extends ------------------------------------------------------------------------------
    Case("extends-missing-file", "extends: nowhere.yaml\nseed: 1\n", 1, "extends", "not found"),
    Case("extends-not-a-string", "extends: [a, b]\n", 1, "extends", "must be a profile name or path"),
    Case(
        "extends-circular",
        "extends: a.yaml\nseed: 1\n",
        1,
        "extends",
        "circular extends",
        file="a.yaml",
        extra={"a.yaml": "extends: bad.yaml\nseed: 2\n"},
    ),
    Case(
        "extends-error-in-base",
        "extends: base.yaml\nfaults:\n  - fault: overloaded\n    lane: primary\n",
        10,
        "faults[0].status",
        "must be an integer",
        file="base.yaml",
        extra={"base.yaml": BASE + "faults:\n  - fault: overloaded\n    lane: primary\n    status: high\n"},
    ),
    Case(
        "extends-error-in-child-after-base-faults",
        "extends: base.yaml\nfaults:\n  - fault: overloaded\n    lane: primary\n    statsu: 500\n",
        5,
        "faults[0].statsu",
        "unknown attribute",
        extra={"base.yaml": BASE + "faults:\n  - fault: overloaded\n    lane: primary\n"},
    ),
    Case(
        "extends-base-lane-key-kept-in-base",
        "extends: base.yaml\nlanes:\n  primary:\n    port: 0\n",
        3,
        "lanes.primary.dialect",
        "'klingon'",
        file="base.yaml",
        extra={"base.yaml": "lanes:\n  primary:\n    dialect: klingon\n    port: 1\n"},
    ),
]


def test_the_table_is_big_enough() -> None:
    assert len(CASES) >= 25
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_profile_is_located(case: Case, tmp_path: Path) -> None:
    for name, text in case.extra.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    path = tmp_path / "bad.yaml"
    path.write_text(case.text, encoding="utf-8")
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    err = info.value
    where = str(tmp_path / case.file)
    expected = f"{where}:{case.line}: {case.field}:" if case.field else f"{where}:{case.line}:"
    rendered = str(err)
    assert rendered.startswith(expected + " "), f"expected {expected!r}, got {rendered!r}"
    assert (err.file, err.line, err.field) == (where, case.line, case.field)
    assert case.says in err.message, f"{case.says!r} not in {err.message!r}"
