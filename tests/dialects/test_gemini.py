"""Gemini dialect: paths, requests, google.rpc.Status errors and ``alt=sse`` streams.

No Gemini SDK is installed, so shapes are checked against the wire format itself
(reference/provider-wire-formats.md section 1.3).
"""

from __future__ import annotations

import json

import pytest

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
from harness.dialects.gemini import Gemini
from harness.sse import SSEDecoder

D = Gemini()
GEN = "/v1beta/models/gemini-2.5-flash:generateContent"
STREAM = "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
HI = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


def parse(body: dict | bytes, path: str = GEN, query: dict | None = None, method: str = "POST") -> RequestInfo:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return D.parse_request(method, path, query or {}, {}, raw)


def decode(data: bytes) -> list[tuple[dict, EventInfo]]:
    return [(json.loads(ev.data), D.classify(ev)) for ev in SSEDecoder().feed(data)]


# --- requests -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "model", "stream"),
    [
        (GEN, "gemini-2.5-flash", False),
        ("/v1/models/gemini-2.0-flash:streamGenerateContent", "gemini-2.0-flash", True),
        ("/v1beta/models/models/gemini-pro:generateContent", "gemini-pro", False),
        (
            "/v1/projects/p1/locations/us-central1/publishers/google/models/gemini-2.5-pro:streamGenerateContent",
            "gemini-2.5-pro",
            True,
        ),
    ],
)
def test_paths_give_model_and_stream(path, model, stream):
    assert D.matches("POST", path)
    req = parse(HI, path=path, query={"alt": "sse"})
    assert (req.dialect, req.operation, req.model, req.stream) == ("gemini", "generate", model, stream)


def test_matches_nothing_else():
    assert not D.matches("POST", "/v1/chat/completions")
    assert not D.matches("POST", "/v1beta/models/gemini-2.5-flash:countTokens")
    assert not D.matches("GET", "/v1beta/models")


def test_parse_system_parts_and_generation_config():
    req = parse(
        {
            "systemInstruction": {"parts": [{"text": "Be brief."}]},
            "contents": [
                {"role": "user", "parts": [{"text": "What is a lane?"}]},
                {"role": "model", "parts": [{"text": "A route."}]},
                {"role": "user", "parts": [{"text": "And a fault?"}]},
            ],
            "generationConfig": {"maxOutputTokens": 128, "temperature": 0.2},
        }
    )
    assert req.max_tokens == 128 and req.stream is False
    snake = parse(
        {
            "system_instruction": {"parts": [{"text": "Be brief."}]},
            "contents": [
                {"parts": [{"text": "What is a lane?"}]},  # role defaults to user
                {"role": "model", "parts": [{"text": "A route."}]},
                {"role": "user", "parts": [{"text": "And a fault?"}]},
            ],
            "generation_config": {"max_output_tokens": 128},
        }
    )
    assert snake.fingerprint == req.fingerprint and snake.max_tokens == 128


@pytest.mark.parametrize(
    ("body", "path", "query", "method", "status", "needle"),
    [
        (b"nope", GEN, {}, "POST", 400, "parse the JSON"),
        ({}, GEN, {}, "POST", 400, "contents is not specified"),
        ({"contents": []}, GEN, {}, "POST", 400, "contents is not specified"),
        ({"contents": [{"role": "user"}]}, GEN, {}, "POST", 400, "contents[0].parts"),
        (HI, STREAM, {}, "POST", 400, "alt=sse"),
        (HI, GEN, {}, "GET", 405, "POST"),
        (HI, "/v1beta/models/x:embedContent", {}, "POST", 404, "not a Gemini"),
    ],
)
def test_malformed_requests_are_bad_requests(body, path, query, method, status, needle):
    with pytest.raises(BadRequest) as info:
        parse(body, path=path, query=query, method=method)
    assert info.value.status == status
    assert needle in info.value.message


# --- completions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("finish", "reason"), [("stop", "STOP"), ("length", "MAX_TOKENS"), ("content_filter", "SAFETY")]
)
def test_completion_is_a_generate_content_response(finish, reason):
    rendered = D.render_completion(parse(HI), Completion("Hello there", Usage(5, 2), finish))
    assert rendered.status == 200
    assert dict(rendered.headers)["content-type"].startswith("application/json")
    body = json.loads(rendered.body)
    [cand] = body["candidates"]
    assert cand["content"] == {"parts": [{"text": "Hello there"}], "role": "model"}
    assert cand["finishReason"] == reason and cand["index"] == 0
    usage = body["usageMetadata"]
    assert (usage["promptTokenCount"], usage["candidatesTokenCount"], usage["totalTokenCount"]) == (5, 2, 7)
    assert body["modelVersion"] == "gemini-2.5-flash" and body["responseId"]


def test_read_completion_recovers_text_finish_and_usage():
    rendered = D.render_completion(parse(HI), Completion("Hello there", Usage(5, 2), "length"))
    info = D.read_completion(rendered.body)
    assert (info.text, info.finish, info.usage) == ("Hello there", "length", Usage(5, 2))
    assert D.read_completion(b"<html>") is None
    assert D.read_completion(b'{"error": {"code": 500}}') is None


# --- errors ---------------------------------------------------------------------------------

EXPECTED = {
    ErrorKind.RATE_LIMIT: (429, "RESOURCE_EXHAUSTED"),
    ErrorKind.SLOW_DOWN: (429, "RESOURCE_EXHAUSTED"),
    ErrorKind.QUOTA_EXHAUSTED: (429, "RESOURCE_EXHAUSTED"),
    ErrorKind.SPEND_LIMIT: (429, "RESOURCE_EXHAUSTED"),
    ErrorKind.OVERLOADED: (503, "UNAVAILABLE"),
    ErrorKind.QUEUE_FULL: (503, "UNAVAILABLE"),
    ErrorKind.SERVER_ERROR: (500, "INTERNAL"),
    ErrorKind.BAD_GATEWAY: (502, None),
    ErrorKind.UNAVAILABLE: (503, "UNAVAILABLE"),
    ErrorKind.GATEWAY_TIMEOUT: (504, "DEADLINE_EXCEEDED"),
    ErrorKind.AUTH: (401, "UNAUTHENTICATED"),
    ErrorKind.PERMISSION: (403, "PERMISSION_DENIED"),
    ErrorKind.NOT_FOUND: (404, "NOT_FOUND"),
    ErrorKind.CONTEXT_LENGTH: (400, "INVALID_ARGUMENT"),
    ErrorKind.CONTENT_FILTER: (400, "INVALID_ARGUMENT"),
    ErrorKind.INVALID_REQUEST: (400, "INVALID_ARGUMENT"),
    ErrorKind.REQUEST_TIMEOUT: (408, "DEADLINE_EXCEEDED"),
    ErrorKind.CONFLICT: (409, "ABORTED"),
}


def test_every_kind_has_an_expectation():
    assert set(EXPECTED) == set(ErrorKind)


@pytest.mark.parametrize("kind", list(ErrorKind))
def test_render_error_is_a_google_rpc_status(kind):
    status, rpc = EXPECTED[kind]
    rendered = D.render_error(ErrorSpec(kind), parse(HI))
    assert rendered.status == status
    headers = dict(rendered.headers)
    assert not any(k.startswith(("retry-after", "x-ratelimit", "x-should-retry")) for k in headers)
    if rpc is None:
        assert headers["content-type"] == "text/html" and b"<html>" in rendered.body
        return
    err = json.loads(rendered.body)["error"]
    assert (err["code"], err["status"]) == (status, rpc)
    assert err["message"]
    assert all("RetryInfo" not in d["@type"] for d in err.get("details", []))


def test_rate_limit_puts_the_delay_in_the_body_not_a_header():
    rendered = D.render_error(ErrorSpec(ErrorKind.RATE_LIMIT, retry_after=2.1), parse(HI))
    assert "retry-after" not in dict(rendered.headers)
    err = json.loads(rendered.body)["error"]
    assert err["message"].endswith("Please retry in 2.1s.")
    types = [d["@type"] for d in err["details"]]
    assert types == [
        "type.googleapis.com/google.rpc.QuotaFailure",
        "type.googleapis.com/google.rpc.Help",
        "type.googleapis.com/google.rpc.RetryInfo",
    ]
    assert err["details"][-1]["retryDelay"] == "2s"
    assert "PerMinute" in err["details"][0]["violations"][0]["quotaId"]


def test_quota_exhausted_is_the_zero_limit_flavour():
    err = json.loads(D.render_error(ErrorSpec(ErrorKind.QUOTA_EXHAUSTED), parse(HI)).body)["error"]
    assert "limit: 0" in err["message"]
    assert err["details"][0]["violations"][0]["quotaValue"] == "0"
    later = json.loads(D.render_error(ErrorSpec(ErrorKind.QUOTA_EXHAUSTED, retry_after=35640)).body)["error"]
    assert later["details"][-1] == {
        "@type": "type.googleapis.com/google.rpc.RetryInfo",
        "retryDelay": "35640s",
    }


def test_render_error_honours_the_other_spec_fields():
    spec = ErrorSpec(
        ErrorKind.OVERLOADED,
        status=500,
        message="boom",
        retry_after_raw="Wed, 21 Oct 2026 07:28:00 GMT",
        should_retry=False,
        ratelimit=RateLimitSnapshot(requests_limit=10, requests_remaining=0),
        extra_headers=(("x-extra", "yes"),),
    )
    rendered = D.render_error(spec)
    headers = dict(rendered.headers)
    assert headers["retry-after"] == "Wed, 21 Oct 2026 07:28:00 GMT"
    assert headers["x-should-retry"] == "false" and headers["x-extra"] == "yes"
    assert not any(k.startswith("x-ratelimit") for k in headers)  # Gemini has none
    assert json.loads(rendered.body)["error"] == {"code": 500, "message": "boom", "status": "INTERNAL"}
    raw = D.render_error(ErrorSpec(ErrorKind.SERVER_ERROR, raw_body=b""))
    assert (raw.status, raw.body) == (500, b"")
    assert D.ratelimit_headers(RateLimitSnapshot(requests_limit=1)) == []


# --- streams --------------------------------------------------------------------------------

TOKENS = ["Hello", ",", " wörld", ' "quoted"', "\n", " end"]


@pytest.mark.parametrize(
    ("finish", "reason"), [("stop", "STOP"), ("length", "MAX_TOKENS"), ("content_filter", "SAFETY")]
)
def test_stream_round_trip(finish, reason):
    req = parse(HI, path=STREAM, query={"alt": "sse"})
    enc = D.stream_encoder(req)
    events = enc.start() + [enc.content(t) for t in TOKENS]
    events += enc.finish(Completion("".join(TOKENS), Usage(4, len(TOKENS)), finish))
    assert events[-1].kind is EventKind.TERMINATOR
    data = b"".join(e.data for e in events)
    assert all(line.startswith(b"data: ") for line in data.split(b"\n") if line)  # no event names, no [DONE]
    decoded = decode(data)
    assert [i.kind for _, i in decoded] == [EventKind.CONTENT] * len(TOKENS) + [EventKind.TERMINATOR]
    assert "".join(i.text for _, i in decoded if i.kind is EventKind.CONTENT) == "".join(TOKENS)
    assert [i.ends_stream for _, i in decoded] == [False] * len(TOKENS) + [True]
    last_obj, last = decoded[-1]
    assert last_obj["candidates"][0]["finishReason"] == reason
    assert last.finish == finish and last.usage == Usage(4, len(TOKENS))
    ids = {obj["responseId"] for obj, _ in decoded}
    assert len(ids) == 1  # every chunk of one stream shares its responseId
    for obj, _ in decoded:
        assert obj["candidates"][0]["content"]["role"] == "model"


def test_classify_final_chunk_with_text_keeps_the_text():
    chunk = {
        "candidates": [{"content": {"parts": [{"text": " end"}], "role": "model"}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 5, "totalTokenCount": 8},
    }
    [ev] = SSEDecoder().feed(b"data: " + json.dumps(chunk).encode() + b"\r\n\r\n")
    info = D.classify(ev)
    # the terminator (so the proxy sees the stream complete) that still carries the last words
    assert (info.kind, info.text, info.finish, info.usage, info.ends_stream) == (
        EventKind.TERMINATOR,
        " end",
        "stop",
        Usage(3, 5),
        True,
    )


def test_classify_thoughts_blocked_prompt_keepalive_and_malformed():
    thought = {"candidates": [{"content": {"parts": [{"text": "hmm", "thought": True}], "role": "model"}}]}
    [ev] = SSEDecoder().feed(b"data: " + json.dumps(thought).encode() + b"\n\n")
    assert D.classify(ev).kind is EventKind.META
    blocked = {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 3}}
    [ev] = SSEDecoder().feed(b"data: " + json.dumps(blocked).encode() + b"\n\n")
    info = D.classify(ev)
    assert (info.kind, info.finish, info.ends_stream) == (EventKind.TERMINATOR, "content_filter", True)
    enc = D.stream_encoder(parse(HI, path=STREAM, query={"alt": "sse"}))
    [ka] = SSEDecoder().feed(enc.keepalive().data)
    assert D.classify(ka).kind is EventKind.KEEPALIVE
    [bad] = SSEDecoder().feed(b'data: {"candidates": [\n\n')
    assert D.classify(bad).kind is EventKind.MALFORMED


def test_inband_error_is_a_bare_error_chunk():
    req = parse(HI, path=STREAM, query={"alt": "sse"})
    enc = D.stream_encoder(req)
    events = [enc.content("partial"), *enc.error(ErrorSpec(ErrorKind.OVERLOADED))]
    assert events[-1].kind is EventKind.ERROR
    obj, info = decode(b"".join(e.data for e in events))[-1]
    assert obj == {
        "error": {
            "code": 503,
            "message": "The model is overloaded. Please try again later.",
            "status": "UNAVAILABLE",
        }
    }
    assert info.kind is EventKind.ERROR and info.error["status"] == "UNAVAILABLE"


def test_stream_headers_are_sse():
    req = parse(HI, path=STREAM, query={"alt": "sse"})
    assert dict(D.stream_headers(req))["content-type"].startswith("text/event-stream")
