"""rate_limiter and concurrency_cap through real lanes, driven by the official SDKs on loopback.

What is asserted is what a client sees (exception class, status, headers, how long the SDK
waited) and what the journal says (one attempt per try, the fault only on refused ones). Times
are kept small with the profile's ``time_scale``; elapsed times get lower bounds only (plus
loose upper bounds), so a slow machine never fails a test.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import anthropic
import httpx
import openai
import pytest

from harness.clientkit import build_request
from harness.faults.base import FaultAttrError, make_fault
from harness.lanes import BackgroundLanes
from harness.profile import profile_from_dict

FAST_SIM = {"tokens_per_second": 2000.0, "ttft": 0.005, "answer_tokens": 24}
#: a lane whose streams last about 2 s (40 tokens at 20/s): long enough to hold a slot
SLOW_SIM = {"tokens_per_second": 20.0, "ttft": 0.005, "answer_tokens": 40}
SDK_KINDS = ["chat", "responses", "anthropic"]
LANE_DIALECT = {"chat": "openai", "responses": "openai", "anthropic": "anthropic", "gemini": "gemini"}
GO_DURATION = re.compile(r"^(\d+h)?(\d+m)?\d+(\.\d+)?s$|^\d+ms$")
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

Starter = Callable[..., BackgroundLanes]


def drill(
    start: Starter,
    faults: list[dict[str, Any]],
    *,
    time_scale: float = 1.0,
    sim: dict[str, Any] | None = None,
    **lanes: str,
) -> BackgroundLanes:
    """Lanes (default: one openai lane named ``lane``) with ``faults``, started in the background."""
    lanes = lanes or {"lane": "openai"}
    return start(
        profile_from_dict(
            {
                "time_scale": time_scale,
                "lanes": {n: {"dialect": d, "simulator": sim or FAST_SIM} for n, d in lanes.items()},
                "faults": faults,
            }
        )
    )


def send(
    kind: str,
    url: str,
    *,
    max_retries: int = 0,
    timeout: float = 10.0,
    prompt: str = "hi",
    max_tokens: int | None = None,
) -> httpx.Response:
    """One call as the real client makes it; returns the raw HTTP response of a success.

    SDK kinds raise the SDK's own exceptions; ``gemini`` (no SDK in the test extras) is plain
    httpx and returns whatever status came back. ``max_tokens`` keeps answers short on the slow
    lanes (the simulator stops there).
    """
    if kind in ("chat", "responses"):
        oc = openai.OpenAI(base_url=url + "/v1", api_key="sk-test", max_retries=max_retries, timeout=timeout)
        if kind == "chat":
            extra: dict[str, Any] = {"max_tokens": max_tokens} if max_tokens else {}
            raw = oc.chat.completions.with_raw_response.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}], **extra
            )
        else:
            extra = {"max_output_tokens": max_tokens} if max_tokens else {}
            raw = oc.responses.with_raw_response.create(model="gpt-4o-mini", input=prompt, **extra)
        return raw.http_response  # type: ignore[return-value]
    if kind == "anthropic":
        ac = anthropic.Anthropic(base_url=url, api_key="sk-ant-test", max_retries=max_retries, timeout=timeout)
        raw = ac.messages.with_raw_response.create(
            model="claude-opus-4-6", max_tokens=max_tokens or 64, messages=[{"role": "user", "content": prompt}]
        )
        return raw.http_response  # type: ignore[return-value]
    path, body = build_request("gemini", prompt, stream=False)
    if max_tokens:
        body["generationConfig"] = {"maxOutputTokens": max_tokens}
    return httpx.post(url + path, json=body, timeout=timeout)


def remaining(kind: str, headers: Any, unit: str = "requests") -> int:
    name = f"x-ratelimit-remaining-{unit}" if kind in ("chat", "responses") else f"anthropic-ratelimit-{unit}-remaining"
    return int(headers[name])


def settle(bg: BackgroundLanes, n: int) -> list[Any]:
    """The journal's attempts once ``n`` are recorded (a client can finish reading a moment
    before the lane closes the attempt)."""
    assert bg.journal.wait_for(n, timeout=5.0), bg.journal.attempts()
    return bg.journal.attempts()


@contextmanager
def held_stream(url: str, dialect: str = "openai") -> Iterator[httpx.Response]:
    """A streamed request whose headers have arrived: it holds a slot until the block exits
    (the client leaves) or its ~2 s stream ends."""
    path, body = build_request(dialect, "hold", stream=True)
    with httpx.Client(timeout=10.0) as client, client.stream("POST", url + path, json=body) as r:
        yield r


# -- rate_limiter: admitted calls carry truthful, counting-down headers ------------------------


@pytest.mark.parametrize("kind", SDK_KINDS)
def test_remaining_counts_down_and_reset_is_in_the_dialects_format(start_lanes: Starter, kind: str) -> None:
    # 5 a minute: nothing refills noticeably between three quick calls (one request per 12 s)
    bg = drill(
        start_lanes, [{"fault": "rate_limiter", "lane": "lane", "requests_per_minute": 5}], lane=LANE_DIALECT[kind]
    )
    url = bg.urls["lane"]
    seen = [send(kind, url).headers for _ in range(3)]
    assert [remaining(kind, h) for h in seen] == [4, 3, 2]
    if kind == "anthropic":
        assert all(h["anthropic-ratelimit-requests-limit"] == "5" for h in seen)
        resets = [h["anthropic-ratelimit-requests-reset"] for h in seen]
        assert all(RFC3339.match(r) for r in resets), resets
        now = dt.datetime.now(dt.UTC)
        last = dt.datetime.strptime(resets[-1], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
        # 3 of 5 used: full again ~36 s from now (RFC 3339 to the second)
        assert 30 <= (last - now).total_seconds() <= 40
        assert not any(k.startswith("x-ratelimit") for k in seen[0])
    else:
        assert all(h["x-ratelimit-limit-requests"] == "5" for h in seen)
        resets = [h["x-ratelimit-reset-requests"] for h in seen]
        assert all(GO_DURATION.match(r) for r in resets), resets
        assert resets[0].startswith(("11.", "12s")) and resets[-1].startswith(("35.", "36s")), resets
    attempts = settle(bg, 3)
    assert [a.status for a in attempts] == [200, 200, 200]
    assert all(a.fault is None for a in attempts)  # admitted attempts are not faulted


def test_gemini_gets_no_ratelimit_headers(start_lanes: Starter) -> None:
    bg = drill(start_lanes, [{"fault": "rate_limiter", "requests_per_minute": 5}], lane="gemini")
    r = send("gemini", bg.urls["lane"])
    assert r.status_code == 200
    assert not any("ratelimit" in k for k in r.headers)


def test_remaining_refills_continuously(start_lanes: Starter) -> None:
    # 60 a "minute" of 1.2 real seconds: one request back every 20 ms
    bg = drill(start_lanes, [{"fault": "rate_limiter", "requests_per_minute": 60}], time_scale=0.02)
    url = bg.urls["lane"]
    first = remaining("chat", send("chat", url).headers)
    assert first == 59
    time.sleep(0.3)
    assert remaining("chat", send("chat", url).headers) == 59  # refilled to the limit, then one taken


# -- rate_limiter: refusals ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", SDK_KINDS)
def test_sdk_waits_the_truthful_retry_after_and_is_admitted(start_lanes: Starter, kind: str) -> None:
    # 2 a "minute" of 1.2 s: after two calls the next is admitted ~0.6 s later, and not before
    bg = drill(
        start_lanes,
        [{"fault": "rate_limiter", "lane": "lane", "requests_per_minute": 2}],
        time_scale=0.02,
        lane=LANE_DIALECT[kind],
    )
    url = bg.urls["lane"]
    send(kind, url)
    send(kind, url)
    t0 = time.monotonic()
    r = send(kind, url, max_retries=2)
    elapsed = time.monotonic() - t0
    assert r.status_code == 200
    attempts = settle(bg, 4)
    refused, retried = attempts[2], attempts[3]
    assert refused.status == 429 and refused.retry_count == 0
    assert refused.fault is not None and refused.fault["name"] == "rate_limiter"
    assert refused.fault["limit"] == "requests"
    assert refused.retry_after is not None and 0 < refused.retry_after <= 0.61
    assert retried.status == 200 and retried.retry_count == 1 and retried.fault is None
    gap = retried.t_start - refused.t_start
    assert gap >= 0.9 * refused.retry_after, (gap, refused.retry_after)
    assert 0.9 * refused.retry_after <= elapsed < 10


@pytest.mark.parametrize("kind", ["chat", "responses"])
def test_openai_rate_limit_error_body_and_headers(start_lanes: Starter, kind: str) -> None:
    bg = drill(start_lanes, [{"fault": "rate_limiter", "requests_per_minute": 1}])
    url = bg.urls["lane"]
    send(kind, url)
    with pytest.raises(openai.RateLimitError) as exc:
        send(kind, url, max_retries=0)
    e = exc.value
    assert e.status_code == 429 and e.code == "rate_limit_exceeded" and e.type == "requests"
    assert "requests per min (RPM): Limit 1, Used 1, Requested 1" in e.message
    h = e.response.headers
    assert 55 <= float(h["retry-after"]) <= 60  # the whole minute, minus the time since the first call
    assert h["x-ratelimit-remaining-requests"] == "0" and h["x-ratelimit-limit-requests"] == "1"
    assert GO_DURATION.match(h["x-ratelimit-reset-requests"])
    assert e.request_id is not None


def test_anthropic_rate_limit_error(start_lanes: Starter) -> None:
    bg = drill(start_lanes, [{"fault": "rate_limiter", "requests_per_minute": 1}], lane="anthropic")
    url = bg.urls["lane"]
    send("anthropic", url)
    with pytest.raises(anthropic.RateLimitError) as exc:
        send("anthropic", url, max_retries=0)
    e = exc.value
    assert e.status_code == 429 and e.type == "rate_limit_error"
    assert "rate limit for your organization of 1 requests per minute" in e.message
    h = e.response.headers
    assert 55 <= float(h["retry-after"]) <= 60
    assert h["anthropic-ratelimit-requests-remaining"] == "0"
    assert RFC3339.match(h["anthropic-ratelimit-requests-reset"])
    assert e.request_id is not None and e.request_id.startswith("req_")


def test_gemini_refusal_carries_the_wait_in_the_body(start_lanes: Starter) -> None:
    bg = drill(start_lanes, [{"fault": "rate_limiter", "requests_per_minute": 2}], time_scale=0.02, lane="gemini")
    url = bg.urls["lane"]
    assert send("gemini", url).status_code == 200
    assert send("gemini", url).status_code == 200
    r = send("gemini", url)
    assert r.status_code == 429
    err = r.json()["error"]
    assert err["status"] == "RESOURCE_EXHAUSTED" and "retry-after" not in r.headers
    m = re.search(r"Please retry in ([0-9.]+)s\.", err["message"])
    assert m is not None, err["message"]
    wait = float(m.group(1))
    assert 0 < wait <= 0.61
    assert any(d["@type"].endswith("RetryInfo") for d in err["details"])
    time.sleep(wait)
    assert send("gemini", url).status_code == 200  # the advertised wait was enough


@pytest.mark.parametrize("kind", ["chat", "anthropic"])  # responses share chat's retry loop
def test_no_retry_after_means_sdk_backoff_then_rate_limit_error(start_lanes: Starter, kind: str) -> None:
    """F02: without retry-after the SDK falls back to its own backoff (0.5 s then 1 s, minus up
    to 25 % jitter), retries twice, and raises RateLimitError."""
    bg = drill(
        start_lanes,
        [{"fault": "rate_limiter", "requests_per_minute": 1, "retry_after": False}],
        lane=LANE_DIALECT[kind],
    )
    url = bg.urls["lane"]
    send(kind, url)
    err = openai.RateLimitError if kind != "anthropic" else anthropic.RateLimitError
    t0 = time.monotonic()
    with pytest.raises(err) as exc:
        send(kind, url, max_retries=2)
    elapsed = time.monotonic() - t0
    assert "retry-after" not in exc.value.response.headers
    attempts = settle(bg, 4)[1:]
    assert [a.retry_count for a in attempts] == [0, 1, 2]
    assert all(a.status == 429 and a.fault and a.fault["name"] == "rate_limiter" for a in attempts)
    assert all(a.retry_after is None for a in attempts)
    gaps = [b.t_start - a.t_start for a, b in itertools.pairwise(attempts)]
    assert gaps[0] >= 0.375 and gaps[1] >= 0.75, gaps
    assert 1.1 <= elapsed < 15


def test_tokens_limit_charges_prompt_then_completion(start_lanes: Starter) -> None:
    """Prompt tokens are taken at admission, the 24 completion tokens when the answer ends; a
    token refusal says so in OpenAI's words (``type: tokens``, TPM)."""
    prompt = "x" * 40  # 10 prompt tokens by the harness's estimate
    bg = drill(start_lanes, [{"fault": "rate_limiter", "tokens_per_minute": 40}])
    url = bg.urls["lane"]
    h = send("chat", url, prompt=prompt).headers
    assert h["x-ratelimit-limit-tokens"] == "40"
    assert remaining("chat", h, "tokens") == 30  # completion not charged yet when headers go out
    settle(bg, 1)
    with pytest.raises(openai.RateLimitError) as exc:
        send("chat", url, prompt=prompt)  # 40 - 10 - 24 = 6 left: 10 more does not fit
    e = exc.value
    assert e.type == "tokens" and e.code == "rate_limit_exceeded"
    assert "tokens per min (TPM): Limit 40, Used 34, Requested 10" in e.message
    assert e.response.headers["x-ratelimit-remaining-tokens"] == "6"
    # 4 tokens short at 40 per 60 s: 6 s
    assert 5.5 <= float(e.response.headers["retry-after"]) <= 6.01


def test_anthropic_input_and_output_buckets(start_lanes: Starter) -> None:
    bg = drill(
        start_lanes,
        [{"fault": "rate_limiter", "input_tokens_per_minute": 1000, "output_tokens_per_minute": 30}],
        lane="anthropic",
    )
    url = bg.urls["lane"]
    h1 = send("anthropic", url, prompt="y" * 40).headers
    # about 10 prompt tokens by the harness's estimate, taken at admission
    assert 985 <= int(h1["anthropic-ratelimit-input-tokens-remaining"]) <= 990
    assert h1["anthropic-ratelimit-output-tokens-remaining"] == "30"
    settle(bg, 1)
    h2 = send("anthropic", url).headers  # 24 output tokens charged when the first call ended
    assert int(h2["anthropic-ratelimit-output-tokens-remaining"]) == 6
    settle(bg, 2)
    with pytest.raises(anthropic.RateLimitError) as exc:  # 6 - 24 < 1: in debt
        send("anthropic", url)
    assert "output tokens per minute" in exc.value.message
    assert exc.value.response.headers["anthropic-ratelimit-output-tokens-remaining"] == "0"


def test_shared_bucket_across_two_lanes(start_lanes: Starter) -> None:
    """F31: two lanes naming one shared bucket spend one quota; without ``shared`` each lane
    has its own."""
    bg = drill(
        start_lanes,
        [{"fault": "rate_limiter", "lane": "*", "requests_per_minute": 2, "shared": "org"}],
        a="openai",
        b="openai",
    )
    a, b = bg.urls["a"], bg.urls["b"]
    assert remaining("chat", send("chat", a).headers) == 1
    assert remaining("chat", send("chat", b).headers) == 0
    with pytest.raises(openai.RateLimitError):
        send("chat", a)
    with pytest.raises(openai.RateLimitError):
        send("chat", b)
    refused = [x for x in settle(bg, 4) if x.status == 429]
    assert {x.lane for x in refused} == {"a", "b"}

    apart = drill(
        start_lanes, [{"fault": "rate_limiter", "lane": "*", "requests_per_minute": 2}], a="openai", b="openai"
    )
    for url in (apart.urls["a"], apart.urls["b"]):
        assert [remaining("chat", send("chat", url).headers) for _ in range(2)] == [1, 0]


def test_shared_bucket_across_two_entries_and_dialects(start_lanes: Starter) -> None:
    bg = drill(
        start_lanes,
        [
            {"fault": "rate_limiter", "lane": "a", "requests_per_minute": 2, "shared": "key"},
            {"fault": "rate_limiter", "lane": "b", "requests_per_minute": 2, "shared": "key"},
        ],
        a="openai",
        b="anthropic",
    )
    send("chat", bg.urls["a"])
    assert remaining("anthropic", send("anthropic", bg.urls["b"]).headers) == 0


def test_schedule_off_means_no_limit_and_no_counting(start_lanes: Starter) -> None:
    bg = drill(start_lanes, [{"fault": "rate_limiter", "requests_per_minute": 1, "schedule": {"after": 2}}])
    url = bg.urls["lane"]
    h1, h2 = send("chat", url).headers, send("chat", url).headers
    assert "x-ratelimit-limit-requests" not in h1 and "x-ratelimit-limit-requests" not in h2
    assert send("chat", url).headers["x-ratelimit-remaining-requests"] == "0"  # the first counted one
    with pytest.raises(openai.RateLimitError):
        send("chat", url)


@pytest.mark.parametrize(
    ("kind", "lane_kind", "exc", "status", "check"),
    [
        ("slow_down", "chat", openai.RateLimitError, 429, lambda e: e.code == "slow_down"),
        ("queue_full", "anthropic", anthropic.OverloadedError, 529, lambda e: e.type == "overloaded_error"),
        ("slow_down", "anthropic", anthropic.RateLimitError, 429, lambda e: e.type == "rate_limit_error"),
    ],
)
def test_refusal_kind(
    start_lanes: Starter, kind: str, lane_kind: str, exc: type[Exception], status: int, check: Callable[[Any], bool]
) -> None:
    bg = drill(
        start_lanes, [{"fault": "rate_limiter", "requests_per_minute": 1, "kind": kind}], lane=LANE_DIALECT[lane_kind]
    )
    send(lane_kind, bg.urls["lane"])
    with pytest.raises(exc) as info:
        send(lane_kind, bg.urls["lane"])
    assert info.value.status_code == status and check(info.value)  # type: ignore[attr-defined]
    assert float(info.value.response.headers["retry-after"]) > 50  # type: ignore[attr-defined]


def test_headers_broken_and_absent(start_lanes: Starter) -> None:
    """F32: Azure's ``-1`` / ``0`` metadata with no retry-after; or no metadata at all."""
    bg = drill(
        start_lanes,
        [
            {
                "fault": "rate_limiter",
                "lane": "az",
                "requests_per_minute": 1,
                "headers": "broken",
                "retry_after": False,
            },
            {"fault": "rate_limiter", "lane": "an", "requests_per_minute": 1, "headers": "broken"},
            {"fault": "rate_limiter", "lane": "none", "requests_per_minute": 1, "headers": False},
        ],
        az="openai",
        an="anthropic",
        none="openai",
    )
    h = send("responses", bg.urls["az"]).headers
    assert h["x-ratelimit-limit-tokens"] == "-1" and h["x-ratelimit-reset-tokens"] == "0"
    assert h["x-ratelimit-limit-requests"] == "-1"
    with pytest.raises(openai.RateLimitError) as exc:
        send("responses", bg.urls["az"])
    assert "retry-after" not in exc.value.response.headers
    assert exc.value.response.headers["x-ratelimit-remaining-requests"] == "0"

    h = send("anthropic", bg.urls["an"]).headers
    reset = dt.datetime.strptime(h["anthropic-ratelimit-requests-reset"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    assert reset < dt.datetime.now(dt.UTC)  # a reset in the past

    h = send("chat", bg.urls["none"]).headers
    assert not any(k.startswith("x-ratelimit") for k in h)
    with pytest.raises(openai.RateLimitError) as exc:
        send("chat", bg.urls["none"])
    assert "retry-after" in exc.value.response.headers
    assert not any(k.startswith("x-ratelimit") for k in exc.value.response.headers)


def test_concurrent_limit_refuses_while_a_stream_holds_and_releases_after(start_lanes: Starter) -> None:
    bg = drill(start_lanes, [{"fault": "rate_limiter", "concurrent": 1}], sim=SLOW_SIM)
    url = bg.urls["lane"]
    with held_stream(url) as r:
        assert r.status_code == 200
        with pytest.raises(openai.RateLimitError) as exc:
            send("chat", url)
        # no honest wait exists for a concurrency refusal: no retry-after
        assert "retry-after" not in exc.value.response.headers
        assert "too many concurrent requests" in exc.value.message
    settle(bg, 2)  # the held stream ended when its client left: its slot is free
    assert send("chat", url, max_tokens=2).status_code == 200
    held = next(a for a in bg.journal.attempts() if a.stream)
    assert held.end_reason == "client_gone" and held.fault is None


def test_rate_limiter_attributes_are_validated() -> None:
    with pytest.raises(FaultAttrError):
        make_fault("rate_limiter", {})
    with pytest.raises(FaultAttrError):
        make_fault("rate_limiter", {"requests_per_minute": 0})
    with pytest.raises(FaultAttrError):
        make_fault("rate_limiter", {"requests_per_minute": 5, "headers": "weird"})
    with pytest.raises(FaultAttrError):
        make_fault("rate_limiter", {"requests_per_minute": 5, "kind": "overloaded"})
    assert make_fault("rate_limiter", {"requests_per_minute": 5, "headers": "broken"}).headers == "broken"


# -- concurrency_cap --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "dialect", "exc", "status"),
    [
        ("chat", "openai", openai.RateLimitError, 429),
        ("responses", "openai", openai.RateLimitError, 429),
        ("anthropic", "anthropic", anthropic.OverloadedError, 529),
        ("chat", "ollama", openai.InternalServerError, 503),
    ],
)
def test_cap_overflow_is_the_dialects_capacity_error(
    start_lanes: Starter, kind: str, dialect: str, exc: type[Exception], status: int
) -> None:
    bg = drill(start_lanes, [{"fault": "concurrency_cap", "slots": 1}], sim=SLOW_SIM, lane=dialect)
    url = bg.urls["lane"]
    with held_stream(url, dialect) as r:
        assert r.status_code == 200
        with pytest.raises(exc) as info:
            send(kind, url, max_retries=0, max_tokens=2)
        assert info.value.status_code == status  # type: ignore[attr-defined]
        if dialect == "ollama":
            # the SDK unwraps body.get("error", body): Ollama's bare string is the whole body
            assert info.value.body == "server busy, please try again.  maximum pending requests exceeded"  # type: ignore[attr-defined]
    attempts = settle(bg, 2)
    over = [a for a in attempts if a.status == status]
    assert len(over) == 1 and over[0].fault is not None
    assert over[0].fault["name"] == "concurrency_cap" and over[0].fault["overflow"] is True
    assert next(a for a in attempts if a.stream).fault is None  # the admitted one is not faulted


def test_cap_overflow_gemini(start_lanes: Starter) -> None:
    bg = drill(start_lanes, [{"fault": "concurrency_cap", "slots": 1}], sim=SLOW_SIM, lane="gemini")
    url = bg.urls["lane"]
    with held_stream(url, "gemini") as r:
        assert r.status_code == 200
        over = send("gemini", url, max_tokens=2)
    assert over.status_code == 503 and over.json()["error"]["status"] == "UNAVAILABLE"


def test_cap_anthropic_sdk_retries_529_until_a_slot_frees(start_lanes: Starter) -> None:
    """Anthropic's 529 comes with x-should-retry: true: the SDK retries it, and once the
    holder leaves the retry is admitted."""
    bg = drill(start_lanes, [{"fault": "concurrency_cap", "slots": 1}], sim=SLOW_SIM, lane="anthropic")
    url = bg.urls["lane"]
    with ThreadPoolExecutor(1) as pool, held_stream(url, "anthropic"):
        fut = pool.submit(send, "anthropic", url, max_retries=2, max_tokens=2)
        assert _wait_until(lambda: any(a.status == 529 for a in bg.journal.attempts()))
    assert fut.result(timeout=15).status_code == 200
    tries = [a for a in bg.journal.attempts() if not a.stream]
    assert tries[0].status == 529 and tries[-1].status == 200 and tries[-1].retry_count == len(tries) - 1


def test_queueing_delays_headers_until_a_slot_frees(start_lanes: Starter) -> None:
    bg = drill(start_lanes, [{"fault": "concurrency_cap", "slots": 1, "queue": 1}], sim=SLOW_SIM)
    url = bg.urls["lane"]
    cap = bg.lanes.faults.entries[0].fault  # type: ignore[union-attr]
    with ThreadPoolExecutor(1) as pool:
        with held_stream(url):
            t0 = time.monotonic()
            fut = pool.submit(send, "chat", url, max_tokens=2)
            assert _wait_until(lambda: "lane" in cap._lanes and len(cap._lanes["lane"].waiters) == 1)
            time.sleep(0.3)
            assert not fut.done()  # still queued: no headers yet
        r = fut.result(timeout=15)
        waited = time.monotonic() - t0
    assert r.status_code == 200 and waited >= 0.3
    attempts = settle(bg, 2)
    held = next(a for a in attempts if a.stream)
    queued = next(a for a in attempts if not a.stream)
    assert queued.fault is not None and queued.fault["queued"] is True
    assert queued.t_headers is not None and held.t_end is not None
    assert queued.t_headers >= held.t_end  # its headers went out only once the holder had left
    assert queued.t_headers - queued.t_start >= 0.3


def test_queue_timeout_gives_the_capacity_error(start_lanes: Starter) -> None:
    bg = drill(start_lanes, [{"fault": "concurrency_cap", "slots": 1, "queue": 1, "queue_timeout": 0.2}], sim=SLOW_SIM)
    url = bg.urls["lane"]
    with held_stream(url):
        t0 = time.monotonic()
        with pytest.raises(openai.RateLimitError):
            send("chat", url)
        waited = time.monotonic() - t0
    assert 0.2 <= waited < 5
    timed_out = next(a for a in settle(bg, 2) if a.status == 429)
    assert timed_out.fault is not None and timed_out.fault["queue_timeout"] is True


def test_queue_full_overflows_at_once(start_lanes: Starter) -> None:
    bg = drill(start_lanes, [{"fault": "concurrency_cap", "slots": 1, "queue": 1}], sim=SLOW_SIM)
    url = bg.urls["lane"]
    cap = bg.lanes.faults.entries[0].fault  # type: ignore[union-attr]
    with ThreadPoolExecutor(1) as pool, held_stream(url):
        queued = pool.submit(send, "chat", url, max_tokens=2)
        assert _wait_until(lambda: len(cap._lanes["lane"].waiters) == 1)
        t0 = time.monotonic()
        with pytest.raises(openai.RateLimitError):
            send("chat", url)
        assert time.monotonic() - t0 < 2.0  # refused at once, not queued
    assert queued.result(timeout=15).status_code == 200


def test_cap_shrinks_at_drill_time(start_lanes: Starter) -> None:
    bg = drill(
        start_lanes, [{"fault": "concurrency_cap", "slots": 2, "shrink_to": 1, "shrink_after": 1.0}], sim=SLOW_SIM
    )
    url = bg.urls["lane"]
    with held_stream(url):
        assert send("chat", url, max_tokens=2).status_code == 200  # two slots before the shrink
    before = settle(bg, 2)
    if max(a.t_start for a in before) >= 1.0:
        pytest.skip("machine too slow to act before the shrink")
    while bg.journal.now() < 1.1:
        time.sleep(0.05)
    with held_stream(url), pytest.raises(openai.RateLimitError):
        send("chat", url, max_tokens=2)  # one slot after it
    after = settle(bg, 4)[2:]
    assert any(a.fault and a.fault.get("overflow") for a in after)


def test_schedule_off_bypasses_the_cap(start_lanes: Starter) -> None:
    bg = drill(start_lanes, [{"fault": "concurrency_cap", "slots": 0, "schedule": {"first": 1}}])
    url = bg.urls["lane"]
    with pytest.raises(openai.RateLimitError):
        send("chat", url)
    assert send("chat", url).status_code == 200


def test_cap_attributes_are_validated() -> None:
    with pytest.raises(FaultAttrError):
        make_fault("concurrency_cap", {"slots": 1, "shrink_to": 0})
    with pytest.raises(FaultAttrError):
        make_fault("concurrency_cap", {"slots": 1, "error": "nope"})
    with pytest.raises(FaultAttrError):
        make_fault("concurrency_cap", {"slots": -1})


def _wait_until(pred: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.01)
    return pred()
