"""The cloud dialects' wire details, byte for byte: the event-stream codec against botocore's own
decoder, NDJSON framing, and the headers and bodies each provider writes (pure code, and a few
raw httpx requests where only the raw bytes show the detail)."""

from __future__ import annotations

import base64
import json
import zlib

import httpx
import pytest
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer

from harness.dialects import dialects_for
from harness.dialects.base import Completion, ErrorKind, ErrorSpec, EventKind, RateLimitSnapshot, Usage
from harness.dialects.bedrock import BedrockConverse
from harness.dialects.eventstream import EventStreamDecoder, EventStreamMessage, encode_message, event_frame
from harness.dialects.ollama_native import NDJSONDecoder, OllamaNative
from harness.profile import profile_from_dict
from harness.sse import SSEDecoder

CONVERSE = "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse-stream"


def _dialect(lane: str, path: str):
    return next(d for d in dialects_for(lane) if d.matches("POST", path))


# -- AWS event-stream ---------------------------------------------------------------------------


def test_frames_decode_with_botocores_own_buffer_crcs_included():
    frames = [event_frame("contentBlockDelta", b'{"delta":{"text":"caf\xc3\xa9"}}'), event_frame("metadata", b"{}")]
    buf = EventStreamBuffer()
    buf.add_data(b"".join(frames))
    msgs = list(buf)
    assert [m.headers[":event-type"] for m in msgs] == ["contentBlockDelta", "metadata"]
    assert msgs[0].headers[":message-type"] == "event"
    assert json.loads(msgs[0].payload)["delta"]["text"] == "café"


def test_decoder_reassembles_frames_split_at_every_byte():
    data = event_frame("a", b'{"x":1}') + event_frame("b", b'{"y":2}')
    dec = EventStreamDecoder()
    out = []
    for i in range(len(data)):
        out += dec.feed(data[i : i + 1])
    assert [(m.event, m.data) for m in out] == [("a", '{"x":1}'), ("b", '{"y":2}')]
    assert b"".join(m.raw for m in out) == data  # exact bytes, for a forwarding lane
    assert dec.pending == b""


def test_a_corrupted_frame_makes_the_rest_malformed_and_loses_no_byte():
    good = event_frame("a", b"{}")
    bad = bytearray(event_frame("b", b'{"text":"x"}'))
    bad[-6] ^= 0xFF  # one payload byte flipped: the message CRC no longer matches
    with pytest.raises(ChecksumMismatch):
        buf = EventStreamBuffer()
        buf.add_data(good + bytes(bad))
        list(buf)
    dec = EventStreamDecoder()
    out = dec.feed(good + bytes(bad)) + dec.feed(b"more")
    assert [isinstance(m, EventStreamMessage) and m.malformed for m in out] == [False, True, True]
    assert b"".join(m.raw for m in out) == good + bytes(bad) + b"more"


def test_prelude_crc_is_checked_before_a_length_is_trusted():
    frame = bytearray(encode_message([(":message-type", "event")], b"{}"))
    frame[3] += 1  # total length off by one: the prelude CRC catches it
    out = EventStreamDecoder().feed(bytes(frame))
    assert len(out) == 1 and out[0].malformed
    assert zlib.crc32(bytes(frame[:8])) != int.from_bytes(frame[8:12], "big")


def test_converse_stream_is_classified_from_its_frames():
    d = BedrockConverse()
    req = d.parse_request("POST", CONVERSE, {}, {}, b'{"messages":[{"role":"user","content":[{"text":"q"}]}]}')
    enc = d.stream_encoder(req)
    events = [*enc.start(), enc.content(" hello", 1), *enc.finish(Completion(" hello", Usage(3, 1)))]
    dec = d.stream_decoder()
    infos = [d.classify(m) for m in dec.feed(b"".join(e.data for e in events))]
    assert [i.kind for i in infos] == [
        EventKind.META,
        EventKind.CONTENT,
        EventKind.META,
        EventKind.FINISH,
        EventKind.TERMINATOR,
    ]
    assert infos[1].text == " hello" and infos[3].finish == "stop" and infos[4].usage == Usage(3, 1)
    (err,) = enc.error(ErrorSpec(ErrorKind.SERVER_ERROR))
    (msg,) = dec.feed(err.data)
    assert msg.message_type == "exception" and msg.event == "internalServerException"
    assert d.classify(msg).kind is EventKind.ERROR


def test_invoke_stream_chunks_are_anthropic_events_in_base64_with_bedrock_metrics():
    d = _dialect("bedrock", "/model/m/invoke-with-response-stream")
    body = json.dumps(
        {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 9, "messages": [{"role": "user", "content": "q"}]}
    )
    req = d.parse_request("POST", "/model/m/invoke-with-response-stream", {}, {}, body.encode())
    assert req.stream and req.model == "m"
    enc = d.stream_encoder(req)
    (last,) = [e for e in enc.finish(Completion("", Usage(2, 5))) if e.kind is EventKind.TERMINATOR]
    (msg,) = EventStreamDecoder().feed(last.data)
    inner = json.loads(base64.b64decode(json.loads(msg.data)["bytes"]))
    assert inner["type"] == "message_stop"
    assert inner["amazon-bedrock-invocationMetrics"]["outputTokenCount"] == 5
    assert all(e.kind is not EventKind.KEEPALIVE for e in enc.start())  # Bedrock relays no ping


def test_invoke_without_anthropic_version_is_bedrocks_validation_error(start_lanes):
    bg = start_lanes(lane="bedrock")
    r = httpx.post(bg.urls["lane"] + "/model/m/invoke", json={"max_tokens": 5, "messages": []})
    assert r.status_code == 400
    assert r.headers["x-amzn-errortype"].startswith("ValidationException:")
    assert "anthropic_version" in r.json()["message"]


def test_bedrock_http_errors_name_the_exception_and_send_no_retry_after():
    r = BedrockConverse().render_error(ErrorSpec(ErrorKind.RATE_LIMIT, retry_after=5))
    headers = dict(r.headers)
    assert r.status == 429
    assert headers["x-amzn-ErrorType"] == "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/"
    assert "retry-after" not in {k.lower() for k in headers}
    assert json.loads(r.body) == {"message": "Too many requests, please wait before trying again."}


# -- Ollama NDJSON ------------------------------------------------------------------------------


def test_ndjson_lines_keep_their_bytes_and_skip_blank_lines():
    dec = NDJSONDecoder()
    out = dec.feed(b'{"a":1}\n\n{"b"') + dec.feed(b":2}\n")
    assert [e.data for e in out] == ['{"a":1}', '{"b":2}']
    assert dec.pending == b""


def test_ollama_stream_ends_with_its_done_line():
    d = OllamaNative()
    req = d.parse_request(
        "POST", "/api/chat", {}, {}, b'{"model":"llama3.1","messages":[{"role":"user","content":"q"}]}'
    )
    assert req.stream  # Ollama streams unless told not to
    enc = d.stream_encoder(req)
    (done,) = enc.finish(Completion("", Usage(4, 7), finish="length"))
    obj = json.loads(done.data)
    assert obj["done"] is True and obj["done_reason"] == "length" and obj["eval_count"] == 7
    assert obj["load_duration"] > 0
    info = d.classify(NDJSONDecoder().feed(done.data)[0])
    assert info.kind is EventKind.TERMINATOR and info.finish == "length" and info.usage == Usage(4, 7)
    assert enc.keepalive().data == b""  # Ollama sends nothing while it waits


def test_ollama_queue_full_is_its_bare_503():
    r = OllamaNative().render_error(ErrorSpec(ErrorKind.QUEUE_FULL))
    assert r.status == 503
    assert json.loads(r.body) == {"error": "server busy, please try again.  maximum pending requests exceeded"}


# -- Azure --------------------------------------------------------------------------------------


def test_azure_rate_limit_has_retry_after_ms_and_remaining_headers(start_lanes):
    profile = profile_from_dict(
        {
            "lanes": {"az": {"dialect": "azure"}},
            "faults": [{"fault": "rate_limiter", "lane": "az", "requests_per_minute": 1}],
        }
    )
    bg = start_lanes(profile)
    url = bg.urls["az"] + "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
    body = {"messages": [{"role": "user", "content": "q"}]}
    ok = httpx.post(url, json=body)
    assert ok.status_code == 200
    assert ok.headers["x-ratelimit-remaining-requests"] == "0"
    assert "x-ratelimit-reset-requests" not in ok.headers  # Azure sends no reset durations
    assert ok.json()["prompt_filter_results"][0]["content_filter_results"]["jailbreak"]["detected"] is False
    assert "content_filter_results" in ok.json()["choices"][0]
    limited = httpx.post(url, json=body)
    assert limited.status_code == 429
    assert float(limited.headers["retry-after-ms"]) == pytest.approx(float(limited.headers["retry-after"]) * 1000)
    assert limited.json()["error"]["code"] == "429"
    assert "Please retry after" in limited.json()["error"]["message"]


def test_azure_classic_paths_need_an_api_version(start_lanes):
    bg = start_lanes(lane="azure")
    r = httpx.post(
        bg.urls["lane"] + "/openai/deployments/d/chat/completions",
        json={"messages": [{"role": "user", "content": "q"}]},
    )
    assert r.status_code == 404


def test_azure_stream_starts_with_prompt_filter_results_and_ends_with_the_filter_that_fired():
    d = _dialect("azure", "/openai/deployments/d/chat/completions")
    req = d.parse_request(
        "POST",
        "/openai/deployments/d/chat/completions",
        {"api-version": "x"},
        {},
        b'{"messages":[{"role":"user","content":"q"}]}',
    )
    assert req.model == "d"
    enc = d.stream_encoder(req)
    first = json.loads(enc.start()[0].data[6:])
    assert first["choices"] == [] and first["prompt_filter_results"]
    fin = json.loads(enc.finish(Completion("", Usage(1, 1), finish="content_filter"))[0].data[6:])
    choice = fin["choices"][0]
    assert choice["finish_reason"] == "content_filter"
    assert choice["content_filter_results"]["violence"]["filtered"] is True


# -- OpenRouter ---------------------------------------------------------------------------------


def test_openrouter_errors_carry_metadata_and_the_status_as_code():
    d = _dialect("openrouter", "/api/v1/chat/completions")
    r = d.render_error(ErrorSpec(ErrorKind.OVERLOADED))
    err = json.loads(r.body)["error"]
    assert r.status == err["code"] == 502
    assert err["metadata"]["provider_name"] == "OpenAI" and "overloaded_error" in err["metadata"]["raw"]
    limited = json.loads(d.render_error(ErrorSpec(ErrorKind.RATE_LIMIT, ratelimit=RateLimitSnapshot(10, 0, 5.0))).body)
    assert limited["error"]["metadata"]["headers"]["X-RateLimit-Remaining"] == "0"


def test_openrouter_stall_is_filled_with_its_processing_comments(start_lanes):
    profile = profile_from_dict(
        {
            "time_scale": 0.05,
            "lanes": {"or": {"dialect": "openrouter", "simulator": {"answer_tokens": 6, "ttft": 0}}},
            "faults": [
                {"fault": "stall", "lane": "or", "after_tokens": 2, "duration": 2, "keepalive": "ping", "interval": 0.5}
            ],
        }
    )
    bg = start_lanes(profile)
    body = {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "q"}], "stream": True}
    with httpx.stream("POST", bg.urls["or"] + "/api/v1/chat/completions", json=body) as r:
        raw = b"".join(r.iter_bytes())
    events = SSEDecoder().feed(raw)
    assert sum(e.comments == ("OPENROUTER PROCESSING",) for e in events) >= 2
    assert events[-1].data == "[DONE]"


def test_openrouter_mid_stream_error_is_a_200_chunk_with_finish_reason_error():
    d = _dialect("openrouter", "/api/v1/chat/completions")
    req = d.parse_request(
        "POST", "/api/v1/chat/completions", {}, {}, b'{"model":"m","messages":[{"role":"user","content":"q"}]}'
    )
    (ev,) = d.stream_encoder(req).error(ErrorSpec(ErrorKind.SERVER_ERROR))
    chunk = json.loads(ev.data[6:])
    assert chunk["error"]["code"] == "server_error" and chunk["choices"][0]["finish_reason"] == "error"
    assert d.classify(SSEDecoder().feed(ev.data)[0]).kind is EventKind.ERROR


# -- Vertex -------------------------------------------------------------------------------------


def test_vertex_claude_mixes_googles_front_end_errors_with_the_models_own():
    d = _dialect("vertex", "/v1/projects/p/locations/l/publishers/anthropic/models/c:rawPredict")
    quota = json.loads(d.render_error(ErrorSpec(ErrorKind.RATE_LIMIT, retry_after=7)).body)
    assert quota["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"} in quota["error"]["details"]
    overloaded = d.render_error(ErrorSpec(ErrorKind.OVERLOADED))
    assert overloaded.status == 529 and json.loads(overloaded.body)["error"]["type"] == "overloaded_error"
