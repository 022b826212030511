"""OpenAI Responses dialect: requests, errors and streams as openai-python itself reads them."""

from __future__ import annotations

import json

import httpx2
import openai
import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

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
from harness.dialects.openai_responses import OpenAIResponses
from harness.sse import SSEDecoder

D = OpenAIResponses()
STREAM_EVENT = TypeAdapter(ResponseStreamEvent)


def parse(body: dict | bytes, method: str = "POST", path: str = "/v1/responses") -> RequestInfo:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return D.parse_request(method, path, {}, {}, raw)


def client(handler=None) -> openai.OpenAI:
    transport = httpx2.MockTransport(handler or (lambda request: httpx2.Response(500)))
    return openai.OpenAI(
        api_key="x", base_url="http://lane/v1", max_retries=0, http_client=httpx2.Client(transport=transport)
    )


def sdk_error(rendered) -> openai.APIStatusError:
    response = httpx2.Response(
        rendered.status,
        headers=rendered.headers,
        content=rendered.body,
        request=httpx2.Request("POST", "http://lane/v1/responses"),
    )
    return client()._make_status_error_from_response(response)


def decode(data: bytes) -> list[tuple[dict, EventInfo]]:
    """Every event of a stream, as JSON and as classified."""
    return [(json.loads(ev.data), D.classify(ev)) for ev in SSEDecoder().feed(data)]


# --- requests -------------------------------------------------------------------------------


def test_matches_only_the_create_path():
    assert D.matches("POST", "/v1/responses")
    assert D.matches("POST", "/openai/v1/responses/")
    assert not D.matches("POST", "/v1/chat/completions")
    assert not D.matches("GET", "/v1/responses/resp_123")


def test_parse_string_input():
    req = parse({"model": "gpt-5", "input": "Hello", "stream": True, "max_output_tokens": 64})
    assert (req.dialect, req.operation, req.model, req.stream, req.max_tokens) == (
        "openai-responses",
        "responses",
        "gpt-5",
        True,
        64,
    )
    assert req.prompt_tokens >= 1
    assert len(req.fingerprint) == 16


def test_parse_item_list_with_content_parts_and_instructions():
    req = parse(
        {
            "model": "gpt-5",
            "instructions": "Be brief.",
            "input": [
                {"role": "developer", "content": "Answer in English."},
                {"role": "user", "content": [{"type": "input_text", "text": "What is a lane?"}]},
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "A route.", "annotations": []}],
                },
                {"type": "message", "role": "user", "content": "And a fault?"},
            ],
        }
    )
    assert req.stream is False and req.max_tokens is None
    same = parse(
        {
            "model": "other-model",
            "stream": True,
            "input": [
                {"role": "system", "content": "Be brief.\nAnswer in English."},
                {"role": "user", "content": "What is a lane?"},
                {"role": "assistant", "content": "A route."},
                {"role": "user", "content": [{"type": "input_text", "text": "And a fault?"}]},
            ],
        }
    )
    assert req.fingerprint == same.fingerprint


def test_input_may_be_omitted_when_continuing_a_response():
    req = parse({"model": "gpt-5", "previous_response_id": "resp_1"})
    assert req.model == "gpt-5"


@pytest.mark.parametrize(
    ("body", "method", "status", "needle"),
    [
        (b"{not json", "POST", 400, "parse the JSON"),
        (b"[1, 2]", "POST", 400, "JSON object"),
        ({"input": "hi"}, "POST", 400, "'model'"),
        ({"model": "gpt-5"}, "POST", 400, "'input'"),
        ({"model": "gpt-5", "input": 3}, "POST", 400, "'input'"),
        ({"model": "gpt-5", "input": ["hi"]}, "POST", 400, "input[0]"),
        ({"model": "gpt-5", "input": [{"content": "hi"}]}, "POST", 400, "input[0].role"),
        ({"model": "gpt-5", "input": "hi"}, "GET", 405, "POST"),
    ],
)
def test_malformed_requests_are_bad_requests(body, method, status, needle):
    with pytest.raises(BadRequest) as info:
        parse(body, method=method)
    assert info.value.status == status
    assert needle in info.value.message


# --- completions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("finish", "status", "reason"),
    [
        ("stop", "completed", None),
        ("length", "incomplete", "max_output_tokens"),
        ("content_filter", "incomplete", "content_filter"),
    ],
)
def test_completion_validates_as_the_sdk_response(finish, status, reason):
    req = parse({"model": "gpt-5", "input": "hi"})
    rendered = D.render_completion(req, Completion("Hello there", Usage(5, 2), finish))
    assert rendered.status == 200
    assert dict(rendered.headers)["x-request-id"].startswith("req_")
    resp = Response.model_validate(json.loads(rendered.body))
    assert resp.id.startswith("resp_") and resp.output[0].id.startswith("msg_")
    assert resp.status == status
    assert (resp.incomplete_details.reason if resp.incomplete_details else None) == reason
    assert resp.output_text == "Hello there"
    assert (resp.usage.input_tokens, resp.usage.output_tokens, resp.usage.total_tokens) == (5, 2, 7)


def test_completion_through_the_sdk():
    req = parse({"model": "gpt-5", "input": "hi"})
    rendered = D.render_completion(req, Completion("Hi!", Usage(1, 1)))
    sdk = client(lambda request: httpx2.Response(200, headers=rendered.headers, content=rendered.body))
    assert sdk.responses.create(model="gpt-5", input="hi").output_text == "Hi!"


@pytest.mark.parametrize("finish", ["stop", "length", "content_filter"])
def test_read_completion_recovers_text_finish_and_usage(finish):
    req = parse({"model": "gpt-5", "input": "hi"})
    info = D.read_completion(D.render_completion(req, Completion("Hello there", Usage(5, 2), finish)).body)
    assert (info.text, info.finish, info.usage) == ("Hello there", finish, Usage(5, 2))
    assert D.read_completion(b"[]") is None


# --- errors ---------------------------------------------------------------------------------

EXPECTED = {
    ErrorKind.RATE_LIMIT: (429, openai.RateLimitError, "rate_limit_exceeded"),
    ErrorKind.SLOW_DOWN: (429, openai.RateLimitError, "slow_down"),
    ErrorKind.QUOTA_EXHAUSTED: (429, openai.RateLimitError, "insufficient_quota"),
    ErrorKind.SPEND_LIMIT: (429, openai.RateLimitError, "insufficient_quota"),
    ErrorKind.OVERLOADED: (503, openai.InternalServerError, "server_is_overloaded"),
    ErrorKind.QUEUE_FULL: (429, openai.RateLimitError, "rate_limit_exceeded"),
    ErrorKind.SERVER_ERROR: (500, openai.InternalServerError, None),
    ErrorKind.BAD_GATEWAY: (502, openai.InternalServerError, "html"),
    ErrorKind.UNAVAILABLE: (503, openai.InternalServerError, None),
    ErrorKind.GATEWAY_TIMEOUT: (504, openai.InternalServerError, "html"),
    ErrorKind.AUTH: (401, openai.AuthenticationError, "invalid_api_key"),
    ErrorKind.PERMISSION: (403, openai.PermissionDeniedError, "unsupported_country_region_territory"),
    ErrorKind.NOT_FOUND: (404, openai.NotFoundError, "model_not_found"),
    ErrorKind.CONTEXT_LENGTH: (400, openai.BadRequestError, "context_length_exceeded"),
    ErrorKind.CONTENT_FILTER: (400, openai.BadRequestError, "content_filter"),
    ErrorKind.INVALID_REQUEST: (400, openai.BadRequestError, None),
    ErrorKind.REQUEST_TIMEOUT: (408, openai.APIStatusError, None),
    ErrorKind.CONFLICT: (409, openai.ConflictError, None),
}


def test_every_kind_has_an_expectation():
    assert set(EXPECTED) == set(ErrorKind)


@pytest.mark.parametrize("kind", list(ErrorKind))
def test_render_error_gives_the_sdk_exception(kind):
    status, exc_class, code = EXPECTED[kind]
    req = parse({"model": "gpt-5", "input": "hi"})
    rendered = D.render_error(ErrorSpec(kind), req)
    assert rendered.status == status
    exc = sdk_error(rendered)
    assert type(exc) is exc_class
    assert exc.status_code == status
    assert exc.request_id and exc.request_id.startswith("req_")
    if code == "html":
        assert dict(rendered.headers)["content-type"] == "text/html"
        assert b"<html>" in rendered.body
    else:
        assert exc.code == code
        assert exc.type or kind is ErrorKind.CONTENT_FILTER  # Azure's content_filter has "type": null
        assert exc.message.startswith(f"Error code: {status} - ")


def test_render_error_honours_every_spec_field():
    snap = RateLimitSnapshot(requests_limit=60, requests_remaining=0, requests_reset=1.7)
    spec = ErrorSpec(
        ErrorKind.RATE_LIMIT,
        status=503,
        message="custom words",
        retry_after=2.5,
        retry_after_ms=True,
        should_retry=False,
        ratelimit=snap,
        extra_headers=(("x-extra", "1"),),
    )
    rendered = D.render_error(spec)
    headers = dict(rendered.headers)
    assert rendered.status == 503
    assert headers["retry-after"] == "2.5" and headers["retry-after-ms"] == "2500"
    assert headers["x-should-retry"] == "false" and headers["x-extra"] == "1"
    assert headers["x-ratelimit-remaining-requests"] == "0" and headers["x-ratelimit-reset-requests"] == "1.7s"
    assert json.loads(rendered.body)["error"]["message"] == "custom words"
    assert isinstance(sdk_error(rendered), openai.InternalServerError)


def test_render_error_raw_body_and_edge_page_with_message():
    raw = D.render_error(
        ErrorSpec(ErrorKind.SERVER_ERROR, raw_body=b"", content_type="text/plain", retry_after_raw="abc")
    )
    assert (raw.status, raw.body, dict(raw.headers)["content-type"]) == (500, b"", "text/plain")
    assert dict(raw.headers)["retry-after"] == "abc"
    gateway = D.render_error(ErrorSpec(ErrorKind.GATEWAY_TIMEOUT, message="upstream timed out"))
    assert json.loads(gateway.body)["error"]["message"] == "upstream timed out"


# --- streams --------------------------------------------------------------------------------

TOKENS = ["Hello", ",", " wörld", ' "quoted"', "\n", " end"]


def stream_bytes(finish: str = "stop") -> tuple[RequestInfo, bytes]:
    req = parse({"model": "gpt-5", "input": "hi", "stream": True})
    enc = D.stream_encoder(req)
    events = enc.start() + [enc.content(t) for t in TOKENS]
    events += enc.finish(Completion("".join(TOKENS), Usage(7, len(TOKENS)), finish))
    return req, b"".join(e.data for e in events)


@pytest.mark.parametrize(("finish", "terminal"), [("stop", "response.completed"), ("length", "response.incomplete")])
def test_stream_round_trip(finish, terminal):
    _, data = stream_bytes(finish)
    decoded = decode(data)
    kinds = [info.kind for _, info in decoded]
    assert kinds == [EventKind.META] * 4 + [EventKind.CONTENT] * len(TOKENS) + [EventKind.META] * 3 + [
        EventKind.TERMINATOR
    ]
    assert "".join(info.text for _, info in decoded if info.kind is EventKind.CONTENT) == "".join(TOKENS)
    assert [info.ends_stream for _, info in decoded] == [False] * (len(decoded) - 1) + [True]
    last_obj, last = decoded[-1]
    assert last_obj["type"] == terminal
    assert last.finish == finish and last.usage == Usage(7, len(TOKENS))
    assert [obj["sequence_number"] for obj, _ in decoded] == list(range(len(decoded)))
    for obj, _ in decoded:
        STREAM_EVENT.validate_python(obj)  # every event is a valid SDK event model
    assert b"[DONE]" not in data


def test_stream_through_the_sdk_helpers():
    req, data = stream_bytes()
    sdk = client(lambda request: httpx2.Response(200, headers=D.stream_headers(req), content=data))
    with sdk.responses.stream(model="gpt-5", input="hi") as stream:
        deltas = [ev.delta for ev in stream if ev.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == final.output_text == "".join(TOKENS)
    assert final.usage.output_tokens == len(TOKENS)


def test_stream_headers_carry_the_request_id():
    req, _ = stream_bytes()
    headers = dict(D.stream_headers(req))
    assert headers["content-type"].startswith("text/event-stream")
    assert headers["x-request-id"].startswith("req_")


@pytest.mark.parametrize(
    ("kind", "code"), [(ErrorKind.OVERLOADED, "server_error"), (ErrorKind.RATE_LIMIT, "rate_limit_exceeded")]
)
def test_inband_error_is_response_failed(kind, code):
    req = parse({"model": "gpt-5", "input": "hi", "stream": True})
    enc = D.stream_encoder(req)
    events = [*enc.start(), enc.content("partial"), *enc.error(ErrorSpec(kind))]
    assert events[-1].kind is EventKind.ERROR
    obj, info = decode(b"".join(e.data for e in events))[-1]
    STREAM_EVENT.validate_python(obj)
    assert obj["type"] == "response.failed" and obj["response"]["status"] == "failed"
    assert info.kind is EventKind.ERROR and info.ends_stream
    assert info.error["code"] == code and info.error["message"]


def test_classify_bare_error_keepalive_and_malformed():
    bare = (
        b'event: error\ndata: {"type":"error","code":"server_is_overloaded","message":"busy",'
        b'"param":null,"sequence_number":3}\n\n'
    )
    [ev] = SSEDecoder().feed(bare)
    info = D.classify(ev)
    assert info.kind is EventKind.ERROR and info.error["code"] == "server_is_overloaded"
    enc = D.stream_encoder(parse({"model": "gpt-5", "input": "hi"}))
    [ka] = SSEDecoder().feed(enc.keepalive().data)
    assert D.classify(ka).kind is EventKind.KEEPALIVE
    [bad] = SSEDecoder().feed(b"event: response.output_text.delta\ndata: {oops\n\n")
    assert D.classify(bad).kind is EventKind.MALFORMED
