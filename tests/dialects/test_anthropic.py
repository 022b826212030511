"""Anthropic Messages dialect: requests, errors and streams as anthropic-python itself reads them."""

from __future__ import annotations

import datetime as dt
import json

import anthropic
import httpx2
import pytest
from anthropic.types import Message, RawMessageStreamEvent
from anthropic.types.shared.enforced_spend_limit_reached_error import EnforcedSpendLimitReachedError
from anthropic.types.shared.ramp_limit_exceeded_error import RampLimitExceededError
from pydantic import TypeAdapter

from harness.dialects.anthropic import AnthropicMessages
from harness.dialects.base import (
    BadRequest,
    Completion,
    ErrorKind,
    ErrorSpec,
    EventInfo,
    EventKind,
    RateLimitSnapshot,
    RequestInfo,
    Usage,
)
from harness.sse import SSEDecoder

D = AnthropicMessages()
STREAM_EVENT = TypeAdapter(RawMessageStreamEvent)
HI = {"model": "claude-sonnet-5-5", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}


def parse(body: dict | bytes, method: str = "POST", path: str = "/v1/messages") -> RequestInfo:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return D.parse_request(method, path, {}, {}, raw)


def client(handler=None, max_retries: int = 0) -> anthropic.Anthropic:
    transport = httpx2.MockTransport(handler or (lambda request: httpx2.Response(500)))
    return anthropic.Anthropic(
        api_key="x",
        base_url="http://lane",
        max_retries=max_retries,
        http_client=httpx2.Client(transport=transport),
    )


def sdk_error(rendered) -> anthropic.APIStatusError:
    response = httpx2.Response(
        rendered.status,
        headers=rendered.headers,
        content=rendered.body,
        request=httpx2.Request("POST", "http://lane/v1/messages"),
    )
    return client()._make_status_error_from_response(response)


def decode(data: bytes) -> list[tuple[str | None, dict, EventInfo]]:
    return [(ev.event, json.loads(ev.data), D.classify(ev)) for ev in SSEDecoder().feed(data)]


# --- requests -------------------------------------------------------------------------------


def test_matches_messages_only():
    assert D.matches("POST", "/v1/messages")
    assert not D.matches("POST", "/v1/messages/count_tokens")
    assert not D.matches("POST", "/v1/chat/completions")


def test_parse_blocks_and_system_list():
    req = parse(
        {
            "model": "claude-sonnet-5-5",
            "max_tokens": 256,
            "stream": True,
            "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "What is a lane?"}]},
                {"role": "assistant", "content": "A route."},
                {"role": "user", "content": "And a fault?"},
            ],
        }
    )
    assert (req.dialect, req.operation, req.model, req.stream, req.max_tokens) == (
        "anthropic",
        "messages",
        "claude-sonnet-5-5",
        True,
        256,
    )
    same = parse(
        {
            "model": "claude-haiku-5-5",
            "max_tokens": 1,
            "system": "Be brief.",
            "messages": [
                {"role": "user", "content": "What is a lane?"},
                {"role": "assistant", "content": [{"type": "text", "text": "A route."}]},
                {"role": "user", "content": [{"type": "text", "text": "And a fault?"}]},
            ],
        }
    )
    assert req.fingerprint == same.fingerprint


@pytest.mark.parametrize(
    ("body", "method", "status", "needle"),
    [
        (b"{", "POST", 400, "parse the JSON"),
        ({k: v for k, v in HI.items() if k != "max_tokens"}, "POST", 400, "max_tokens: Field required"),
        ({k: v for k, v in HI.items() if k != "model"}, "POST", 400, "model: Field required"),
        ({k: v for k, v in HI.items() if k != "messages"}, "POST", 400, "messages: Field required"),
        ({**HI, "messages": []}, "POST", 400, "messages"),
        ({**HI, "max_tokens": "10"}, "POST", 400, "max_tokens"),
        ({**HI, "messages": [{"role": "system", "content": "x"}]}, "POST", 400, "messages.0.role"),
        (HI, "PUT", 405, "POST"),
    ],
)
def test_malformed_requests_are_bad_requests(body, method, status, needle):
    with pytest.raises(BadRequest) as info:
        parse(body, method=method)
    assert info.value.status == status
    assert needle in info.value.message


# --- completions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("finish", "stop"), [("stop", "end_turn"), ("length", "max_tokens"), ("content_filter", "refusal")]
)
def test_completion_validates_as_the_sdk_message(finish, stop):
    rendered = D.render_completion(parse(HI), Completion("Hello there", Usage(5, 2), finish))
    assert rendered.status == 200
    assert dict(rendered.headers)["request-id"].startswith("req_")
    msg = Message.model_validate(json.loads(rendered.body))
    assert msg.id.startswith("msg_") and msg.content[0].text == "Hello there"
    assert msg.stop_reason == stop
    assert (msg.usage.input_tokens, msg.usage.output_tokens) == (5, 2)


def test_completion_through_the_sdk():
    rendered = D.render_completion(parse(HI), Completion("Hi!", Usage(1, 1)))
    sdk = client(lambda request: httpx2.Response(200, headers=rendered.headers, content=rendered.body))
    msg = sdk.messages.create(**HI)
    assert msg.content[0].text == "Hi!"


def test_read_completion_recovers_text_finish_and_usage():
    rendered = D.render_completion(parse(HI), Completion("Hello there", Usage(5, 2), "content_filter"))
    info = D.read_completion(rendered.body)
    assert (info.text, info.finish, info.usage) == ("Hello there", "content_filter", Usage(5, 2))
    assert D.read_completion(b"not json") is None
    assert D.read_completion(b'{"type": "error"}') is None


# --- errors ---------------------------------------------------------------------------------

EXPECTED = {
    ErrorKind.RATE_LIMIT: (429, anthropic.RateLimitError, "rate_limit_error"),
    ErrorKind.SLOW_DOWN: (429, RampLimitExceededError, "rate_limit_error"),
    ErrorKind.QUOTA_EXHAUSTED: (400, anthropic.BadRequestError, "invalid_request_error"),
    ErrorKind.SPEND_LIMIT: (429, EnforcedSpendLimitReachedError, "rate_limit_error"),
    ErrorKind.OVERLOADED: (529, anthropic.OverloadedError, "overloaded_error"),
    ErrorKind.QUEUE_FULL: (529, anthropic.OverloadedError, "overloaded_error"),
    ErrorKind.SERVER_ERROR: (500, anthropic.InternalServerError, "api_error"),
    ErrorKind.BAD_GATEWAY: (502, anthropic.InternalServerError, None),
    ErrorKind.UNAVAILABLE: (503, anthropic.ServiceUnavailableError, "api_error"),
    ErrorKind.GATEWAY_TIMEOUT: (504, anthropic.GatewayTimeoutError, None),
    ErrorKind.AUTH: (401, anthropic.AuthenticationError, "authentication_error"),
    ErrorKind.PERMISSION: (403, anthropic.PermissionDeniedError, "permission_error"),
    ErrorKind.NOT_FOUND: (404, anthropic.NotFoundError, "not_found_error"),
    ErrorKind.CONTEXT_LENGTH: (400, anthropic.BadRequestError, "invalid_request_error"),
    ErrorKind.CONTENT_FILTER: (400, anthropic.BadRequestError, "invalid_request_error"),
    ErrorKind.INVALID_REQUEST: (400, anthropic.BadRequestError, "invalid_request_error"),
    ErrorKind.REQUEST_TIMEOUT: (408, anthropic.RequestTimeoutError, "timeout_error"),
    ErrorKind.CONFLICT: (409, anthropic.ConflictError, "conflict_error"),
}


def test_every_kind_has_an_expectation():
    assert set(EXPECTED) == set(ErrorKind)


@pytest.mark.parametrize("kind", list(ErrorKind))
def test_render_error_gives_the_sdk_exception(kind):
    status, exc_class, etype = EXPECTED[kind]
    rendered = D.render_error(ErrorSpec(kind), parse(HI))
    assert rendered.status == status
    exc = sdk_error(rendered)
    assert type(exc) is exc_class
    assert exc.request_id and exc.request_id.startswith("req_")
    if etype is None:  # edge page, not JSON
        assert b"<html>" in rendered.body and dict(rendered.headers)["content-type"] == "text/html"
    else:
        body = json.loads(rendered.body)
        assert body["type"] == "error" and body["request_id"] == exc.request_id
        assert exc.type == etype and exc.api_message


def test_overloaded_says_retry_unless_told_otherwise():
    assert dict(D.render_error(ErrorSpec(ErrorKind.OVERLOADED)).headers)["x-should-retry"] == "true"
    told = D.render_error(ErrorSpec(ErrorKind.OVERLOADED, should_retry=False)).headers
    assert [v for k, v in told if k == "x-should-retry"] == ["false"]
    assert "x-should-retry" not in dict(D.render_error(ErrorSpec(ErrorKind.RATE_LIMIT)).headers)


def test_spend_limit_has_no_retry_after_and_its_code():
    rendered = D.render_error(ErrorSpec(ErrorKind.SPEND_LIMIT))
    assert "retry-after" not in dict(rendered.headers)
    exc = sdk_error(rendered)
    assert exc.error_code == "enforced_spend_limit_reached"


def test_context_length_message_names_the_token_count():
    req = parse(HI)
    body = json.loads(D.render_error(ErrorSpec(ErrorKind.CONTEXT_LENGTH), req).body)
    assert body["error"]["message"] == "prompt is too long: 200001 tokens > 200000 maximum"


def test_status_override_keeps_type_consistent():
    rendered = D.render_error(ErrorSpec(ErrorKind.QUOTA_EXHAUSTED, status=402))
    exc = sdk_error(rendered)
    assert type(exc) is anthropic.PaymentRequiredError and exc.type == "billing_error"
    assert "credit balance is too low" in exc.api_message


def test_render_error_honours_every_spec_field():
    now = dt.datetime(2026, 11, 30, 12, 0, 0, tzinfo=dt.UTC)
    snap = RateLimitSnapshot(
        requests_limit=50,
        requests_remaining=0,
        requests_reset=1.5,
        input_tokens_limit=30000,
        input_tokens_remaining=-3,
        input_tokens_reset=60,
    )
    headers = dict(D.ratelimit_headers(snap, now))
    assert headers["anthropic-ratelimit-requests-reset"] == "2026-11-30T12:00:02Z"  # 1.5 s rounds up: never early
    assert headers["anthropic-ratelimit-input-tokens-remaining"] == "0"
    assert headers["anthropic-ratelimit-input-tokens-reset"] == "2026-11-30T12:01:00Z"
    assert "anthropic-ratelimit-tokens-limit" not in headers
    spec = ErrorSpec(
        ErrorKind.RATE_LIMIT,
        message="slow down please",
        retry_after=2,
        retry_after_ms=True,
        should_retry=True,
        ratelimit=snap,
        extra_headers=(("via", "1.1 google"),),
    )
    rendered = D.render_error(spec)
    h = dict(rendered.headers)
    assert (h["retry-after"], h["retry-after-ms"], h["x-should-retry"], h["via"]) == (
        "2",
        "2000",
        "true",
        "1.1 google",
    )
    assert h["anthropic-ratelimit-requests-remaining"] == "0"
    assert json.loads(rendered.body)["error"]["message"] == "slow down please"
    raw = D.render_error(ErrorSpec(ErrorKind.OVERLOADED, raw_body=b"upstream connect error", content_type="text/plain"))
    assert (raw.status, raw.body, dict(raw.headers)["content-type"]) == (
        529,
        b"upstream connect error",
        "text/plain",
    )
    gateway = D.render_error(ErrorSpec(ErrorKind.GATEWAY_TIMEOUT, message="Request timed out"))
    assert json.loads(gateway.body)["error"]["type"] == "timeout_error"


def test_sdk_retries_529_by_header_and_stops_when_told():
    ok = D.render_completion(parse(HI), Completion("Hi!", Usage(1, 1)))
    for should_retry, attempts_expected in ((None, 2), (False, 1)):
        err = D.render_error(
            ErrorSpec(ErrorKind.OVERLOADED, retry_after=0.001, retry_after_ms=True, should_retry=should_retry)
        )
        attempts = []

        def handler(request, err=err, attempts=attempts):
            attempts.append(request)
            r = err if len(attempts) == 1 else ok
            return httpx2.Response(r.status, headers=r.headers, content=r.body)

        sdk = client(handler, max_retries=1)
        if attempts_expected == 2:
            assert sdk.messages.create(**HI).content[0].text == "Hi!"
        else:
            with pytest.raises(anthropic.OverloadedError):
                sdk.messages.create(**HI)
        assert len(attempts) == attempts_expected


# --- streams --------------------------------------------------------------------------------

TOKENS = ["Hello", ",", " wörld", ' "quoted"', "\n", " end"]


def stream_bytes(finish: str = "stop") -> tuple[RequestInfo, bytes]:
    req = parse({**HI, "stream": True})
    enc = D.stream_encoder(req)
    events = enc.start() + [enc.content(t) for t in TOKENS[:3]] + [enc.keepalive()]
    events += [enc.content(t) for t in TOKENS[3:]]
    events += enc.finish(Completion("".join(TOKENS), Usage(9, len(TOKENS)), finish))
    return req, b"".join(e.data for e in events)


@pytest.mark.parametrize(
    ("finish", "stop"), [("stop", "end_turn"), ("length", "max_tokens"), ("content_filter", "refusal")]
)
def test_stream_round_trip(finish, stop):
    _, data = stream_bytes(finish)
    decoded = decode(data)
    names = [name for name, _, _ in decoded]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    for name, obj, _ in decoded:
        assert obj["type"] == name  # data.type repeats the event name
        if name != "ping":
            STREAM_EVENT.validate_python(obj)
    kinds = [info.kind for _, _, info in decoded]
    assert kinds.count(EventKind.KEEPALIVE) == 2 and kinds.count(EventKind.FINISH) == 1
    assert "".join(i.text for _, _, i in decoded if i.kind is EventKind.CONTENT) == "".join(TOKENS)
    assert [i.ends_stream for _, _, i in decoded] == [False] * (len(decoded) - 1) + [True]
    assert kinds[-1] is EventKind.TERMINATOR
    [finish_info] = [i for _, _, i in decoded if i.kind is EventKind.FINISH]
    assert finish_info.finish == finish and finish_info.usage == Usage(9, len(TOKENS))
    assert decoded[-2][1]["delta"]["stop_reason"] == stop


def test_stream_through_the_sdk_helpers():
    req, data = stream_bytes("length")
    sdk = client(lambda request: httpx2.Response(200, headers=D.stream_headers(req), content=data))
    with sdk.messages.stream(**HI) as stream:
        text = stream.get_final_text()
        final = stream.get_final_message()
    assert text == "".join(TOKENS)
    assert final.stop_reason == "max_tokens" and final.usage.output_tokens == len(TOKENS)
    assert dict(D.stream_headers(req))["request-id"].startswith("req_")


@pytest.mark.parametrize(
    ("kind", "etype"), [(ErrorKind.OVERLOADED, "overloaded_error"), (ErrorKind.SERVER_ERROR, "api_error")]
)
def test_inband_error_event(kind, etype):
    req = parse({**HI, "stream": True})
    enc = D.stream_encoder(req)
    events = [*enc.start(), enc.content("partial"), *enc.error(ErrorSpec(kind))]
    assert events[-1].kind is EventKind.ERROR
    assert events[-1].data.startswith(b"event: error\n")
    *_, info = decode(b"".join(e.data for e in events))[-1]
    assert info.kind is EventKind.ERROR and info.error["type"] == etype
    sdk = client(
        lambda request: httpx2.Response(200, headers=D.stream_headers(req), content=b"".join(e.data for e in events))
    )
    with pytest.raises(anthropic.APIStatusError) as exc:
        for _ in sdk.messages.create(**HI, stream=True):
            pass
    # SDK quirk: the class is keyed by the HTTP status (200), so only .type tells it is an overload
    assert exc.value.status_code == 200 and exc.value.type == etype


def test_keepalive_is_a_ping_event():
    enc = D.stream_encoder(parse(HI))
    event = enc.keepalive()
    assert event.data == b'event: ping\ndata: {"type": "ping"}\n\n'
    [ev] = SSEDecoder().feed(event.data)
    assert D.classify(ev).kind is EventKind.KEEPALIVE
    [bad] = SSEDecoder().feed(b"event: content_block_delta\ndata: {\n\n")
    assert D.classify(bad).kind is EventKind.MALFORMED
