"""Real clients, end to end, through shipped profiles: do the checks say what the clients do?

The official SDKs bring their own retry loops, ``Retry-After`` handling and stream parsing, and
LiteLLM's Router brings fallbacks. Each test runs one of them, unmodified, through a shipped
profile (time compressed), and asserts both what the client really did (its exception, its retry
count from ``x-stainless-retry-count``) and that the profile's checks give the verdict that
behaviour deserves.
"""

from __future__ import annotations

import os

import anthropic
import openai
import pytest

from harness.checks import Verdict
from harness.drill import Drill

PROMPT = "Summarise the incident."


def verdicts(drill: Drill) -> dict[str, Verdict]:
    return {r.name: r.verdict for r in drill.evaluate().results}


def test_anthropic_sdk_retries_529_twice_and_never_falls_back():
    """F05: the SDK retries an overloaded 529 exactly twice (x-should-retry: true), then raises
    OverloadedError. It has no fallback, so fallback_within fails while retries_bounded passes."""
    with Drill("f05-overloaded-529", time_scale=0.2) as drill:
        client = anthropic.Anthropic(base_url=drill.url("primary"), api_key="sk-ant", max_retries=2)

        def ask() -> str:
            msg = client.messages.create(
                model="claude-opus-4-6", max_tokens=64, messages=[{"role": "user", "content": PROMPT}]
            )
            return msg.content[0].text

        import time

        time.sleep(drill.seconds(2.5))  # inside the overload window [2 s, 17 s)
        drill.call(ask)
        while drill.journal.now() < drill.seconds(17.5):  # bounded: the window's end
            time.sleep(0.05)
        drill.call(ask)  # after the window: served
    calls = drill.journal.calls()
    assert [c.error_type for c in calls] == ["OverloadedError", None]
    first = [a for a in drill.journal.attempts() if a.status == 529]
    assert [a.retry_count for a in first] == [0, 1, 2]
    v = verdicts(drill)
    assert v["retries_bounded"] is Verdict.PASS
    assert v["fallback_within"] is Verdict.FAIL
    assert v["no_lost_calls"] is Verdict.PASS  # a clean, classified error is not a lost call


def test_anthropic_inband_error_is_apistatuserror_200_and_not_retried():
    """F19: HTTP 200, then event: error overloaded_error. The SDK raises a bare APIStatusError with
    status 200 from the stream and does not retry; the journal shows one attempt per such call."""
    with Drill("f19-inband-error-before-content", time_scale=0.2, seed=19) as drill:
        client = anthropic.Anthropic(base_url=drill.url("primary"), api_key="sk-ant", max_retries=2)

        def ask(i: int) -> str:
            with client.messages.stream(
                model="claude-opus-4-6", max_tokens=64, messages=[{"role": "user", "content": f"{PROMPT} {i}"}]
            ) as s:
                return "".join(s.text_stream)

        for i in range(8):
            drill.call(ask, i)
    failed = [c for c in drill.journal.calls() if c.outcome == "error"]
    assert failed, "the seeded schedule fails about half the calls"
    assert {c.error_type for c in failed} == {"APIStatusError"}
    inband = [a for a in drill.journal.attempts() if a.end_reason == "inband_error"]
    assert len(inband) == len(failed) and all(a.status == 200 and a.retry_count == 0 for a in inband)
    assert len(drill.journal.attempts()) == 8  # nothing was retried
    v = verdicts(drill)
    assert v["fallback_within"] is Verdict.FAIL
    assert v["no_truncated_success"] is not Verdict.FAIL


def test_openai_sdk_retries_a_billing_429_and_the_harness_reports_it():
    """F03: openai-python retries every 429, insufficient_quota included: 3 attempts per call.
    no_retry_on_permanent and retries_bounded (1 per lane per call) fail, as they should."""
    with Drill("f03-quota-exhausted", time_scale=0.05) as drill:
        client = openai.OpenAI(base_url=drill.base_url("primary"), api_key="sk", max_retries=2)

        def ask() -> str:
            r = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}])
            return r.choices[0].message.content

        drill.call(ask)
    assert [a.retry_count for a in drill.journal.attempts()] == [0, 1, 2]
    assert drill.journal.calls()[0].error_type == "RateLimitError"
    v = verdicts(drill)
    assert v["no_retry_on_permanent"] is Verdict.FAIL
    assert v["retries_bounded"] is Verdict.FAIL


@pytest.fixture(scope="module")
def litellm_router_cls():
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network at import
    litellm = pytest.importorskip("litellm")
    litellm.suppress_debug_info = True
    return litellm.Router


def test_litellm_router_falls_back_during_the_overload(litellm_router_cls):
    """F05 with LiteLLM's Router: primary (Anthropic dialect) with a fallback to stable (OpenAI
    dialect). Calls in the window are served by stable, fallback_within and no_lost_calls pass."""
    import time

    with Drill("f05-overloaded-529", time_scale=0.2) as drill:
        router = litellm_router_cls(
            model_list=[
                {
                    "model_name": "primary",
                    "litellm_params": {
                        "model": "anthropic/claude-opus-4-6",
                        "api_base": drill.url("primary"),
                        "api_key": "k",
                    },
                },
                {
                    "model_name": "stable",
                    "litellm_params": {
                        "model": "openai/gpt-4o-mini",
                        "api_base": drill.base_url("stable"),
                        "api_key": "k",
                    },
                },
            ],
            fallbacks=[{"primary": ["stable"]}],
            num_retries=0,
        )

        def ask(i: int) -> dict:
            r = router.completion(model="primary", messages=[{"role": "user", "content": f"{PROMPT} {i}"}])
            lane = "primary" if r.model.startswith("claude") else "stable"
            return {"text": r.choices[0].message.content, "lane": lane}

        time.sleep(drill.seconds(2.5))
        for i in range(3):
            drill.call(ask, i)
    served = [c.lane for c in drill.journal.calls()]
    assert "stable" in served
    assert all(c.outcome == "ok" for c in drill.journal.calls())
    v = verdicts(drill)
    assert v["fallback_within"] is Verdict.PASS
    assert v["no_lost_calls"] is Verdict.PASS
