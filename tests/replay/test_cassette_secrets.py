"""No credential reaches a cassette: not in a header, the query, the request body, a response."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from harness.cassette import Cassette, CassetteError, redact_bytes
from harness.dialects.eventstream import EventStreamDecoder, event_frame

HEADER_SECRET = "hdr-7f3a9c2e5b1d4f6a8c0e2b4d6f8a0c2e"  # no key shape: caught by its header's name
QUERY_SECRET = "AIzaQUERYsecret0123456789abcdefghijklmn"
BODY_SECRET = "sk-ant-api03-BODYsecret0123456789abcdefgh"


def test_a_cassette_holds_no_secret_of_header_query_or_body(rig, tmp_path):
    cassette = tmp_path / "c.jsonl"
    url, live = rig.recording("gemini", cassette)
    body = {
        "contents": [{"role": "user", "parts": [{"text": f"my key is {BODY_SECRET}, and {HEADER_SECRET} too"}]}],
        "api_key": "plain-value-in-a-json-field-0001",
    }
    r = httpx.post(
        f"{url}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key={QUERY_SECRET}",
        json=body,
        headers={"x-goog-api-key": HEADER_SECRET, "x-custom-auth-token": "tok-" + HEADER_SECRET[::-1]},
    )
    assert r.status_code == 200 and r.text.count("data:") > 1
    assert live.journal.wait_for(1)
    rig.stop(live)
    raw = cassette.read_text()
    for secret in (HEADER_SECRET, HEADER_SECRET[::-1], QUERY_SECRET, BODY_SECRET, "plain-value-in-a-json-field-0001"):
        assert secret not in raw, secret
        assert base64.b64encode(secret.encode()).decode()[:20] not in raw
    (ex,) = Cassette.load(cassette).exchanges
    assert ex.request.headers["x-goog-api-key"] == "[redacted]"
    assert ex.request.headers["x-custom-auth-token"] == "[redacted]"
    assert "key=[redacted]" in ex.request.path
    assert "[redacted]" in (ex.request.body or "")
    assert ex.request.key  # still identified: the key is made before redaction, from what identifies it


def test_a_bedrock_frame_is_redacted_and_stays_a_valid_frame():
    frame = event_frame("contentBlockDelta", json.dumps({"delta": {"text": f"echo {BODY_SECRET}"}}).encode())
    clean = redact_bytes(frame, framed=True)
    assert BODY_SECRET.encode() not in clean
    (msg,) = EventStreamDecoder().feed(clean)
    assert not msg.malformed and msg.event == "contentBlockDelta"
    assert json.loads(msg.data)["delta"]["text"] == "echo [redacted]"
    plain = event_frame("messageStop", b'{"stopReason":"end_turn"}')
    assert redact_bytes(plain, framed=True) is plain  # nothing to redact: the very bytes


def test_a_bad_cassette_line_is_named(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"type": "cassette", "version": 1}\n{"type": "exchange", "n": 1, "lane": "x", "request": {}}\n')
    with pytest.raises(CassetteError, match=r"bad.jsonl:2: exchange: response: .* is not an object"):
        Cassette.load(p)
    p.write_text('{"type": "cassette", "version": 9}\n')
    with pytest.raises(CassetteError, match=r"bad\.jsonl:1: cassette version 9"):
        Cassette.load(p)
