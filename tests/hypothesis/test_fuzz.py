"""The fuzz targets of ``targets.py``, a few hundred examples in all, in the normal suite.

``python -m benchmarks.fuzz`` runs the same targets with ten thousand examples or more each. Each
target pins, with ``@example``, the inputs that broke it before (so they are tried every run, not
only when Hypothesis happens to draw them).
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings

from .fuzz_http import GOOD_BODY, _encode
from .targets import BY_NAME

#: examples per target in the normal suite (the HTTP ones cost a few milliseconds each)
EXAMPLES = {
    "profile_yaml": 120,
    "profile_file": 40,
    "profile_data": 120,
    "control_api": 80,
    "toxiproxy_api": 60,
    "lane_http": 50,
    "journal_lines": 120,
}
_GOOD = _encode(GOOD_BODY)
#: inputs that broke a target before this suite existed (issue 10's table)
PINNED: dict[str, list[Any]] = {
    "profile_yaml": [
        "lanes:\n  a: {dialect: openai}\nfaults:\n  - {fault: overloaded, lane: [a]}\n",
        "a: &x [*x]\n",
        "faults: " + "[" * 5000 + "]" * 5000 + "\n",
        "lanes:\n  a: {dialect: openai}\ntoxics:\n  - {lane: a, type: latency, attributes: {latency: .inf}}\n",
        "name: a\x01b\n",
        ".nan",
    ],
    "profile_file": [b"lanes:\n  a: {dialect: openai}\ndescription: caf\xe9\n"],
    "profile_data": [{"lanes": {"a": {"dialect": "openai"}}, "faults": [{"fault": "overloaded", "lane": ["a"]}]}],
    "control_api": [
        ("POST", "/faults", {"Content-Type": "application/json"}, b'{"fault": "overloaded", "lane": ["a"]}'),
        ("POST", "/calls", {"Content-Type": "application/json"}, b'{"duration": ' + b"9" * 400 + b"}"),
        ("POST", "/calls", {"Content-Type": "application/json"}, b'{"duration": Infinity}'),
        ("POST", "/calls", {"Content-Type": "application/json"}, b"[" * 100_000 + b"]" * 100_000),
    ],
    "toxiproxy_api": [
        ("POST", "/proxies/p/toxics", {"Content-Type": "application/json"}, b'{"type": "latency", "toxicity": NaN}'),
        (
            "POST",
            "/proxies/p/toxics",
            {"Content-Type": "application/json"},
            b'{"type": "latency", "attributes": {"latency": 1e300}}',
        ),
        ("POST", "/proxies", {"Content-Type": "application/json"}, b"[" * 100_000 + b"]" * 100_000),
    ],
    "lane_http": [
        (
            b"POST /v1/chat/completions HTTP/2.0\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n%s"
            % (len(_GOOD), _GOOD),
            False,
        ),
        (b"NOT AN HTTP REQUEST LINE\r\n\r\n", False),
        (
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
            False,
        ),
    ],
    "journal_lines": [b'{"type": "attempt"}\n', b"[1]\n", b'{"type": "journal", "wall0": 1}\n{"type": "mark", "t"'],
}


@pytest.fixture(autouse=True)
def _quiet_harness_logs():
    """Every malformed request logs one line by design: thousands of them are noise here."""
    logger = logging.getLogger("harness")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    yield
    logger.setLevel(level)


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_fuzz_target(name: str) -> None:
    target = BY_NAME[name]
    with target.open() as check:

        @settings(
            max_examples=EXAMPLES[name],
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
        )
        @given(target.strategy)
        def holds(value: Any) -> None:
            check(value)

        for pinned in PINNED.get(name, []):
            holds = example(pinned)(holds)
        holds()


def test_every_target_runs_in_the_suite() -> None:
    assert set(EXAMPLES) == set(BY_NAME)
