"""The reference router's pure parts (no sockets), and one drill per dialect it must speak."""

from __future__ import annotations

import email.utils
import json

import pytest

from examples.agents.router import CircuitBreaker, Router, classify_http_error, parse_retry_after
from harness.drill import Drill
from harness.profile import profile_from_dict


@pytest.mark.parametrize(
    ("headers", "body", "want"),
    [
        ({"retry-after-ms": "1500", "retry-after": "9"}, None, 1.5),
        ({"retry-after": "2"}, None, 2.0),
        ({"retry-after": "1.5"}, None, 1.5),
        ({"retry-after": "abc"}, None, None),
        ({"retry-after": "-1"}, None, None),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, None, None),  # in the past
        (
            {},
            {"error": {"details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "46s"}]}},
            46.0,
        ),
        ({}, {"error": {"message": "no delay"}}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], body: object, want: float | None) -> None:
    assert parse_retry_after(headers, body) == want


def test_parse_retry_after_http_date_in_the_future() -> None:
    now = 1_000_000.0
    when = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after({"retry-after": when}, now=now) == pytest.approx(30, abs=1)


@pytest.mark.parametrize(
    ("status", "body", "retry", "lane_down"),
    [
        (429, {"error": {"type": "requests", "code": "rate_limit_exceeded"}}, True, False),
        (429, {"error": {"type": "insufficient_quota", "code": "insufficient_quota"}}, False, True),
        (
            429,
            {"error": {"type": "rate_limit_error", "details": {"error_code": "enforced_spend_limit_reached"}}},
            False,
            True,
        ),
        (400, {"error": {"code": "context_length_exceeded"}}, False, False),
        (401, {"error": {"type": "authentication_error"}}, False, True),
        (404, {"error": {"code": "model_not_found"}}, False, True),
        (529, {"type": "error", "error": {"type": "overloaded_error"}}, True, False),
        (502, None, True, False),
    ],
)
def test_classify_http_error(status: int, body: object, retry: bool, lane_down: bool) -> None:
    raw = b"<html>502 Bad Gateway</html>" if body is None else json.dumps(body).encode()
    f = classify_http_error(status, {}, raw)
    assert (f.retry_same_lane, f.lane_down) == (retry, lane_down)


def test_should_retry_false_is_obeyed() -> None:
    assert not classify_http_error(503, {"x-should-retry": "false"}, b"{}").retry_same_lane


def test_circuit_breaker_opens_probes_and_closes() -> None:
    b = CircuitBreaker(failures=2, cooldown=5.0, max_cooldown=8.0)
    b.failure(0.0)
    assert b.allow(0.1)
    b.failure(0.2)
    assert not b.allow(1.0)  # open
    assert b.allow(5.3) and not b.allow(5.3)  # one half-open probe at a time
    b.failure(5.4)  # the probe failed: open again, longer
    assert not b.allow(10.5) and b.allow(13.5)
    b.success()
    assert b.state == "closed" and b.allow(13.6)
    b.failure(20.0, retry_after=1.0)
    b.failure(20.1, retry_after=1.0)  # opens for what the server asked, not the cooldown
    assert not b.allow(20.5) and b.allow(21.2)


@pytest.mark.parametrize("dialect", ["openai-chat", "openai-responses", "anthropic", "gemini"])
def test_router_speaks_every_dialect(dialect: str) -> None:
    lane = "openai" if dialect.startswith("openai") else dialect
    profile = profile_from_dict(
        {
            "name": f"dialect-{dialect}",
            "lanes": {"primary": {"dialect": lane, "simulator": {"answer_tokens": 20, "ttft": 0.1}}},
            "faults": [{"fault": "server_error", "lane": "primary", "schedule": {"nth": [1]}}],
        }
    )
    with Drill(profile, time_scale=0.05) as drill:
        # an "openai" lane serves both OpenAI APIs: ask for the one under test
        router = Router([("primary", drill.url("primary"), dialect)], time_scale=drill.time_scale, seed=1)
        results = [drill.call(router.complete, f"question {i}") for i in range(3)]
        report = drill.evaluate({"no_lost_calls": {}, "no_truncated_success": {}, "reports_fallback_model": {}})
    assert all(r.complete and r.lane == "primary" and r.usage for r in results), results
    assert report.passed, report.render()
