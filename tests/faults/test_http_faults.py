"""Every provider-error fault on every dialect, as the real client sees it.

Each case starts a lane on the simulator with one fault, drives the official SDK (httpx for
Gemini, which has no SDK in the test extras), and asserts the exception class the SDK raised,
the status, how many attempts it made (from the journal: its own retries), and that the journal
names the fault. ``retry_after: 1`` with ``time_scale: 0.05`` keeps SDK retries at 50 ms.
"""

from __future__ import annotations

import pytest

from harness.canonical import canonical_text, fingerprint
from harness.profile import profile_from_dict
from tests.faults.sdk_drive import DIALECTS, PROMPT, drive, lane_dialect

FAST_RETRY = {"retry_after": 1}
R = 2  # max_retries given to the SDKs: 3 attempts when they retry

# fault -> {dialect: (exception class name | None, status, attempts)}; "oa" covers both OpenAI APIs
CASES: list[tuple[dict, dict[str, tuple[str | None, int, int]]]] = [
    (
        {"fault": "rate_limit", **FAST_RETRY},
        {"oa": ("RateLimitError", 429, 3), "anthropic": ("RateLimitError", 429, 3), "gemini": (None, 429, 1)},
    ),
    (
        {"fault": "slow_down", **FAST_RETRY},
        {"oa": ("RateLimitError", 429, 3), "anthropic": ("RampLimitExceededError", 429, 3), "gemini": (None, 429, 1)},
    ),
    (
        {"fault": "quota_exhausted"},
        {"oa": ("RateLimitError", 429, 3), "anthropic": ("BadRequestError", 400, 1), "gemini": (None, 429, 1)},
    ),
    (
        {"fault": "spend_limit", **FAST_RETRY},
        {
            "oa": ("RateLimitError", 429, 3),
            "anthropic": ("EnforcedSpendLimitReachedError", 429, 3),
            "gemini": (None, 429, 1),
        },
    ),
    (
        {"fault": "overloaded", **FAST_RETRY},
        {"oa": ("InternalServerError", 503, 3), "anthropic": ("OverloadedError", 529, 3), "gemini": (None, 503, 1)},
    ),
    (
        {"fault": "server_error", **FAST_RETRY},
        {"oa": ("InternalServerError", 500, 3), "anthropic": ("InternalServerError", 500, 3), "gemini": (None, 500, 1)},
    ),
    (
        {"fault": "bad_gateway", **FAST_RETRY},
        {"oa": ("InternalServerError", 502, 3), "anthropic": ("InternalServerError", 502, 3), "gemini": (None, 502, 1)},
    ),
    (
        {"fault": "gateway_timeout", **FAST_RETRY},
        {"oa": ("InternalServerError", 504, 3), "anthropic": ("GatewayTimeoutError", 504, 3), "gemini": (None, 504, 1)},
    ),
    (
        {"fault": "unavailable", **FAST_RETRY},
        {
            "oa": ("InternalServerError", 503, 3),
            "anthropic": ("ServiceUnavailableError", 503, 3),
            "gemini": (None, 503, 1),
        },
    ),
    (
        {"fault": "server_error", "should_retry": False},
        {"oa": ("InternalServerError", 500, 1), "anthropic": ("InternalServerError", 500, 1), "gemini": (None, 500, 1)},
    ),
    (
        {"fault": "auth_revoked"},
        {"oa": ("AuthenticationError", 401, 1), "anthropic": ("AuthenticationError", 401, 1), "gemini": (None, 401, 1)},
    ),
    (
        {"fault": "auth_revoked", "status": 403},
        {
            "oa": ("PermissionDeniedError", 403, 1),
            "anthropic": ("PermissionDeniedError", 403, 1),
            "gemini": (None, 403, 1),
        },
    ),
    (
        {"fault": "model_gone"},
        {"oa": ("NotFoundError", 404, 1), "anthropic": ("NotFoundError", 404, 1), "gemini": (None, 404, 1)},
    ),
    (
        {"fault": "context_length"},
        {"oa": ("BadRequestError", 400, 1), "anthropic": ("BadRequestError", 400, 1), "gemini": (None, 400, 1)},
    ),
    (
        {"fault": "content_filter"},
        {"oa": ("BadRequestError", 400, 1), "anthropic": ("BadRequestError", 400, 1), "gemini": (None, 400, 1)},
    ),
    (
        {"fault": "http_error", "status": 408, **FAST_RETRY},
        {"oa": ("APIStatusError", 408, 3), "anthropic": ("RequestTimeoutError", 408, 3), "gemini": (None, 408, 1)},
    ),
    (
        {"fault": "http_error", "status": 502, "body": "empty", **FAST_RETRY},
        {"oa": ("InternalServerError", 502, 3), "anthropic": ("InternalServerError", 502, 3), "gemini": (None, 502, 1)},
    ),
]


def _start(start_lanes, dialect: str, fault: dict, **extra):
    profile = profile_from_dict(
        {
            "time_scale": 0.05,
            "lanes": {"x": {"dialect": lane_dialect(dialect), "simulator": {"answer_tokens": 12, "ttft": 0.0}}},
            "faults": [{"lane": "x", **fault}],
            **extra,
        }
    )
    return start_lanes(profile)


def _case_id(case) -> str:
    f = case[0]
    return f["fault"] + "".join(f"-{k}={v}" for k, v in f.items() if k not in ("fault", "retry_after"))


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_error_fault_as_the_client_sees_it(start_lanes, case, dialect):
    fault, expect = case
    exc_name, status, attempts = expect["oa" if dialect.startswith("openai") else dialect]
    bg = _start(start_lanes, dialect, fault)
    seen = drive(dialect, bg.urls["x"], max_retries=R)
    assert seen.exc_name == exc_name, seen.exc
    assert seen.status == status
    assert bg.journal.wait_for(attempts)
    made = bg.journal.attempts()
    assert len(made) == attempts, [(a.status, a.retry_count) for a in made]
    assert all(a.fault and a.fault["name"] == fault["fault"] for a in made)
    assert all(a.status == status and a.outcome == "error" for a in made)
    if dialect.startswith("openai") or dialect == "anthropic":
        assert [a.retry_count for a in made] == list(range(attempts))
    if dialect == "gemini" and fault["fault"] not in ("bad_gateway", "gateway_timeout") and "body" not in fault:
        assert isinstance(seen.body, dict) and seen.body["error"]["code"] == status


@pytest.mark.parametrize("dialect", ["openai-chat", "anthropic"])
def test_sdk_waits_the_retry_after_it_was_given(start_lanes, dialect):
    """retry_after: 4 at time_scale 0.05 advertises 0.2 s; the SDK's retry comes no sooner."""
    bg = _start(start_lanes, dialect, {"fault": "rate_limit", "retry_after": 4, "schedule": {"first": 1}})
    seen = drive(dialect, bg.urls["x"])
    assert seen.exc is None
    assert bg.journal.wait_for(2)
    first, second = bg.journal.attempts()
    assert first.retry_after == pytest.approx(0.2)
    assert second.t_start - first.t_end >= 0.9 * 0.2
    assert second.fault is None and second.outcome == "ok"


def test_retry_after_beyond_openais_cap_means_no_retry(start_lanes):
    """openai-python gives up at once when Retry-After exceeds its 120 s cap (F09)."""
    bg = _start(start_lanes, "openai-chat", {"fault": "rate_limit", "retry_after_raw": "300"})
    seen = drive("openai-chat", bg.urls["x"])
    assert seen.exc_name == "RateLimitError"
    assert bg.journal.wait_for(1)
    assert len(bg.journal.attempts()) == 1


@pytest.mark.parametrize("raw", ["Wed, 21 Oct 2015 07:28:00 GMT", "abc", "-1"])
def test_retry_after_edge_forms_reach_the_client_verbatim(start_lanes, raw):
    import httpx

    bg = _start(start_lanes, "openai-chat", {"fault": "rate_limit", "retry_after_raw": raw})
    r = httpx.post(
        bg.urls["x"] + "/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "q"}]}
    )
    assert r.status_code == 429 and r.headers["retry-after"] == raw
    assert r.headers["x-ratelimit-remaining-requests"] == "0"


def test_rate_limit_headers_in_each_dialects_format(start_lanes):
    import httpx

    bg = start_lanes(
        profile_from_dict(
            {
                "lanes": {"oa": {"dialect": "openai"}, "an": {"dialect": "anthropic"}},
                "faults": [{"fault": "rate_limit", "lane": "*", "retry_after": 2, "retry_after_ms": True}],
            }
        )
    )
    r = httpx.post(
        bg.urls["oa"] + "/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "q"}]}
    )
    assert r.headers["retry-after"] == "2" and r.headers["retry-after-ms"] == "2000"
    assert r.headers["x-ratelimit-reset-requests"] == "2s"
    assert r.json()["error"]["code"] == "rate_limit_exceeded"
    r = httpx.post(
        bg.urls["an"] + "/v1/messages",
        json={"model": "c", "max_tokens": 5, "messages": [{"role": "user", "content": "q"}]},
    )
    assert r.headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert r.headers["anthropic-ratelimit-requests-reset"].endswith("Z")
    assert r.json()["error"]["type"] == "rate_limit_error"


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("stream", [False, True])
def test_finish_length_truncates_to_the_exact_canonical_prefix(start_lanes, dialect, stream):
    bg = _start(start_lanes, dialect, {"fault": "finish_length", "after_tokens": 5})
    seen = drive(dialect, bg.urls["x"], stream=stream)
    assert seen.exc is None, seen.exc
    assert seen.text == canonical_text(fingerprint("", [("user", PROMPT)]), 5)
    expected_finish = {
        "openai-chat": "length",
        "openai-responses": "max_output_tokens" if not stream else "incomplete",
        "anthropic": "max_tokens",
        "gemini": "MAX_TOKENS",
    }[dialect]
    assert seen.finish == expected_finish
    assert bg.journal.wait_for(1)
    a = bg.journal.attempts()[0]
    assert a.fault["name"] == "finish_length" and a.finish == "length"


@pytest.mark.parametrize("dialect", ["openai-chat", "anthropic", "gemini"])
def test_content_filter_finish(start_lanes, dialect):
    bg = _start(start_lanes, dialect, {"fault": "content_filter", "mode": "finish", "after_tokens": 3})
    seen = drive(dialect, bg.urls["x"])
    assert seen.exc is None
    assert seen.finish == {"openai-chat": "content_filter", "anthropic": "refusal", "gemini": "SAFETY"}[dialect]
    assert seen.text == canonical_text(fingerprint("", [("user", PROMPT)]), 3)


def test_queue_delays_the_headers(start_lanes):
    bg = _start(start_lanes, "openai-chat", {"fault": "queue", "delay": 4})  # 0.2 s at this time scale
    seen = drive("openai-chat", bg.urls["x"])
    assert seen.exc is None and seen.elapsed >= 0.2
    assert bg.journal.wait_for(1)
    a = bg.journal.attempts()[0]
    assert a.t_headers - a.t_start >= 0.19 and a.fault["name"] == "queue"
