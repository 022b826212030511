"""Smaller wire truths, seen through the real SDKs: the two content-filter bodies, a 429 that gives
no delay and says none, an HTTP-date Retry-After counted from the moment it is sent, and faults
keyed on what the request says (``match:``)."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from harness.dialects import dialects_for
from harness.lanes import BackgroundLanes, LaneSet
from harness.profile import ProfileError, load_profile, load_profile_text, profile_from_dict

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SIM = {"answer_tokens": 8, "tokens_per_second": 2000, "ttft": 0.0}
HI = [{"role": "user", "content": "hello"}]


@pytest.fixture
def lane() -> Iterator[Any]:
    """``lane(dialect, *faults) -> base URL`` of a simulated lane named ``lane`` with those faults."""
    started: list[BackgroundLanes] = []

    def make(dialect: str, *faults: dict[str, Any]) -> str:
        profile = profile_from_dict(
            {
                "lanes": {"lane": {"dialect": dialect, "simulator": SIM}},
                "faults": [{"lane": "lane", **f} for f in faults],
            }
        )
        bg = BackgroundLanes(LaneSet(profile)).start()
        started.append(bg)
        return bg.urls["lane"]

    yield make
    for bg in reversed(started):
        bg.stop()


def _openai(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key="sk-test", max_retries=0)


def _anthropic(url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=url, api_key="sk-test", max_retries=0)


# -- content_filter: Azure's body and OpenAI's own ------------------------------------------------
def test_content_filter_azure_flavour_is_azures_body(lane):
    url = lane("openai", {"fault": "content_filter"})
    with pytest.raises(openai.BadRequestError) as info:
        _openai(url).chat.completions.create(model="gpt-4o", messages=HI)
    e = info.value
    assert e.code == "content_filter" and e.param == "prompt" and e.type is None
    assert "Azure OpenAI's content management policy" in e.message
    assert e.body["innererror"]["code"] == "ResponsibleAIPolicyViolation"
    assert e.body["innererror"]["content_filter_result"]["violence"] == {"filtered": True, "severity": "medium"}


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_content_filter_openai_flavour_is_content_policy_violation(lane, api):
    url = lane("openai", {"fault": "content_filter", "flavour": "openai"})
    client = _openai(url)
    with pytest.raises(openai.BadRequestError) as info:
        if api == "chat":
            client.chat.completions.create(model="gpt-4o", messages=HI)
        else:
            client.responses.create(model="gpt-4o", input="hello")
    e = info.value
    assert e.code == "content_policy_violation" and e.type == "invalid_request_error" and e.param is None
    assert e.message.endswith("Your prompt may contain text that is not allowed by our safety system.")
    assert "innererror" not in e.body


# -- rate_limit: the message and the headers give the same delay, or none -------------------------
def _rate_limited(url: str) -> openai.RateLimitError:
    with pytest.raises(openai.RateLimitError) as info:
        _openai(url).chat.completions.create(model="gpt-4o", messages=HI)
    return info.value


def test_rate_limit_without_retry_after_hints_at_no_delay(lane):
    e = _rate_limited(lane("openai", {"fault": "rate_limit", "retry_after": None}))
    h = e.response.headers
    assert "retry-after" not in h and "retry-after-ms" not in h
    assert "x-ratelimit-reset-requests" not in h  # the bucket that ran out: no made-up reset
    assert h["x-ratelimit-remaining-requests"] == "0"
    assert "try again in" not in e.message and e.message.endswith("Requested 1.")


def test_rate_limit_message_names_the_delay_its_headers_give(lane):
    e = _rate_limited(lane("openai", {"fault": "rate_limit", "retry_after": 2}))
    h = e.response.headers
    assert h["retry-after"] == "2" and h["x-ratelimit-reset-requests"] == "2s"
    assert e.message.endswith("Please try again in 2s.")
    e = _rate_limited(lane("openai", {"fault": "rate_limit", "retry_after": None, "retry_after_raw": "300"}))
    assert e.response.headers["retry-after"] == "300" and e.message.endswith("Please try again in 5m0s.")
    e = _rate_limited(lane("openai", {"fault": "rate_limit", "retry_after": None, "retry_after_raw": "abc"}))
    assert e.response.headers["retry-after"] == "abc" and "try again in" not in e.message


def test_rate_limit_without_retry_after_on_anthropic_sends_no_reset(lane):
    url = lane("anthropic", {"fault": "rate_limit", "retry_after": None})
    with pytest.raises(anthropic.RateLimitError) as info:
        _anthropic(url).messages.create(model="claude-opus-4-6", max_tokens=10, messages=HI)
    h = info.value.response.headers
    assert "retry-after" not in h and "anthropic-ratelimit-requests-reset" not in h
    assert h["anthropic-ratelimit-requests-remaining"] == "0"


def test_http_date_retry_after_is_counted_from_when_it_is_sent(lane):
    url = lane("openai", {"fault": "rate_limit", "retry_after": 2, "retry_after_format": "http-date"})
    e = _rate_limited(url)
    raw = e.response.headers["retry-after"]
    ahead = email.utils.mktime_tz(email.utils.parsedate_tz(raw)) - time.time()
    assert 0.5 < ahead <= 3.0, (raw, ahead)  # 2 s rounded up to the second, minus the way back
    assert "retry-after-ms" not in e.response.headers
    said = e.message.rsplit("Please try again in ", 1)[1].rstrip(".s")
    assert 1.5 < float(said) <= 3.0, e.message  # the wait until that date, as the header says it


def test_f09_profile_sends_a_future_http_date():
    profile = load_profile("f09-retry-after-edge-forms")
    (fault,) = [f for f in profile.faults if f.attrs.get("retry_after_format") == "http-date"]
    assert fault.attrs["retry_after"] == 2 and "retry_after_raw" not in fault.attrs


def test_http_date_format_needs_seconds():
    with pytest.raises(ProfileError) as info:
        profile_from_dict(
            {
                "lanes": {"lane": {"dialect": "openai"}},
                "faults": [
                    {"fault": "rate_limit", "lane": "lane", "retry_after": None, "retry_after_format": "http-date"}
                ],
            }
        )
    assert "faults[0].retry_after_format" in str(info.value)


# -- match: faults keyed on what the request says ------------------------------------------------
PREFILL_400 = {
    "fault": "http_error",
    "status": 400,
    "message": "This model does not support assistant message prefill.",
    "schedule": {"match": {"prefill": True}},
}


def test_the_request_that_ends_with_an_assistant_prefill_gets_a_400(lane):
    client = _anthropic(lane("anthropic", PREFILL_400))
    ok = client.messages.create(model="claude-opus-4-6", max_tokens=10, messages=HI)
    assert ok.content[0].text
    prefilled = [*HI, {"role": "assistant", "content": "Sure:"}]
    with pytest.raises(anthropic.BadRequestError, match="prefill"):
        client.messages.create(model="claude-opus-4-6", max_tokens=10, messages=prefilled)
    assert client.messages.create(model="claude-opus-4-6", max_tokens=10, messages=HI).content[0].text


def test_match_on_model_and_on_text(lane):
    url = lane(
        "openai",
        {"fault": "rate_limit", "schedule": {"match": {"model": "gpt-4o*"}}},
        {"fault": "http_error", "status": 400, "schedule": {"match": {"contains": "refund"}}},
    )
    client = _openai(url)
    assert client.chat.completions.create(model="gpt-5", messages=HI).choices[0].message.content
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="gpt-4o-mini", messages=HI)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": "I want a refund"}])


def test_match_counts_only_the_requests_that_match(lane):
    """``first: 1`` is the first *prefilled* request, however many plain ones came before."""
    client = _anthropic(lane("anthropic", {**PREFILL_400, "schedule": {"match": {"prefill": True}, "first": 1}}))
    prefilled = [*HI, {"role": "assistant", "content": "Sure:"}]
    for _ in range(2):
        client.messages.create(model="claude-opus-4-6", max_tokens=10, messages=HI)
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(model="claude-opus-4-6", max_tokens=10, messages=prefilled)
    assert client.messages.create(model="claude-opus-4-6", max_tokens=10, messages=prefilled).content[0].text


@pytest.mark.parametrize(
    ("dialect", "path", "body"),
    [
        (
            "openai-chat",
            "/v1/chat/completions",
            {"model": "m", "messages": [*HI, {"role": "assistant", "content": "A"}]},
        ),
        ("openai-responses", "/v1/responses", {"model": "m", "input": [*HI, {"role": "assistant", "content": "A"}]}),
        (
            "anthropic",
            "/v1/messages",
            {"model": "m", "max_tokens": 5, "messages": [*HI, {"role": "assistant", "content": "A"}]},
        ),
        (
            "gemini",
            "/v1beta/models/gemini-2.5-flash:generateContent",
            {"contents": [{"role": "user", "parts": [{"text": "hello"}]}, {"role": "model", "parts": [{"text": "A"}]}]},
        ),
    ],
)
def test_every_dialect_knows_a_prefill(dialect, path, body):
    import json

    (d,) = [x for x in dialects_for(dialect) if x.matches("POST", path)]
    req = d.parse_request("POST", path, {}, {}, json.dumps(body).encode())
    assert req.last_role == "assistant" and "hello" in req.text
    body_plain = json.loads(json.dumps(body))
    key = "contents" if dialect == "gemini" else "input" if dialect == "openai-responses" else "messages"
    body_plain[key] = body_plain[key][:1]
    assert d.parse_request("POST", path, {}, {}, json.dumps(body_plain).encode()).last_role == "user"


@pytest.mark.parametrize(
    ("match", "field", "words"),
    [
        ({"modle": "gpt-4o"}, "faults[0].schedule.match.modle", "unknown match key"),
        ({"prefill": "yes"}, "faults[0].schedule.match.prefill", "true or false"),
        ({"contains": ""}, "faults[0].schedule.match.contains", "non-empty string"),
        ({}, "faults[0].schedule.match", "mapping"),
    ],
)
def test_a_bad_match_names_file_line_and_field(match, field, words):
    import yaml

    text = yaml.safe_dump(
        {
            "lanes": {"lane": {"dialect": "anthropic"}},
            "faults": [{"fault": "http_error", "lane": "lane", "status": 400, "schedule": {"match": match}}],
        },
        sort_keys=False,
    )
    with pytest.raises(ProfileError) as info:
        load_profile_text(text, "p.yaml")
    assert info.value.file == "p.yaml" and info.value.line is not None and info.value.field == field
    assert words in info.value.message
