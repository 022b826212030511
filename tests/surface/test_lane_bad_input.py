"""Malformed input to a lane: the provider's own JSON error, a journaled attempt, one log line.

Before: a bad request line, a 1 MB header or a bad chunked body got aiohttp's ``text/plain`` 400
(echoing the offending bytes), no attempt, and a full traceback on stderr each time; a lone
surrogate or JSON nested 100k deep was a 500 "Server got itself in trouble" with a traceback, and
the attempt was journaled with status null.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from harness.dialects import dialects_for
from harness.dialects.base import ErrorKind, ErrorSpec
from harness.profile import profile_from_dict

from .conftest import FAST, parse_response, raw_http

FAKE_KEY = "sk-proj-FAKEsurface10KEYabcdefghijklmnop0123456789"
PATHS = {
    "openai": "/v1/chat/completions",
    "openai-responses": "/v1/responses",
    "anthropic": "/v1/messages",
    "gemini": "/v1beta/models/gemini-2.0-flash:generateContent",
}
BODIES = {
    "openai": {"model": "m", "messages": [{"role": "user", "content": "CONTENT"}]},
    "openai-responses": {"model": "m", "input": "CONTENT"},
    "anthropic": {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "CONTENT"}]},
    "gemini": {"contents": [{"role": "user", "parts": [{"text": "CONTENT"}]}]},
}


def _request(path: str, body: bytes, *, extra: bytes = b"", length: bool = True) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n".encode() + extra
    if length:
        head += f"Content-Length: {len(body)}\r\n".encode()
    return head + b"\r\n" + body


def _body(dialect: str, content: bytes) -> bytes:
    """The dialect's request with ``content`` (raw JSON text) where the prompt goes."""
    return json.dumps(BODIES[dialect]).encode().replace(b'"CONTENT"', content)


# what is sent -> whether the lane could tell its dialect (protocol errors come before the path)
def _protocol_cases(path: str) -> dict[str, bytes]:
    ok = b'{"model": "m"}'
    return {
        "bad request line": b"NOT AN HTTP REQUEST LINE\r\n\r\n",
        "1 MB header": _request(path, ok, extra=b"X-Padding: " + b"A" * 1_000_000 + b"\r\n"),
        "1 MB Authorization header": _request(
            path, ok, extra=f"Authorization: Bearer {FAKE_KEY}".encode() + b"A" * 2**20 + b"\r\n"
        ),
        "bad chunked body": _request(
            path, b"zz\r\nabc\r\n0\r\n\r\n", extra=b"Transfer-Encoding: chunked\r\n", length=False
        ),
        "Content-Length and Transfer-Encoding": _request(path, b"0\r\n\r\n", extra=b"Transfer-Encoding: chunked\r\n"),
        "two Content-Lengths": _request(path, ok, extra=b"Content-Length: 1\r\n"),
        "obfuscated Transfer-Encoding": _request(path, ok, extra=b"Transfer-Encoding: xchunked\r\n", length=False),
        "bad gzip body": _request(path, b"not gzip", extra=b"Content-Encoding: gzip\r\n"),
    }


def _body_cases(dialect: str) -> dict[str, bytes]:
    return {
        "lone surrogate escape": _body(dialect, b'"\\ud800"'),
        "lone surrogate bytes": _body(dialect, b'"\xed\xa0\x80"'),
        "JSON nested 100k deep": _body(dialect, b"[" * 100_000 + b"]" * 100_000),
        "NaN": _body(dialect, b"NaN"),
        "not UTF-8": _body(dialect, b'"\xff\xfe"'),
    }


def _skeleton(obj):
    """The shape of a JSON value: keys and types, not values (ids and messages differ)."""
    if isinstance(obj, dict):
        return {k: _skeleton(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_skeleton(v) for v in obj]
    return type(obj).__name__


def _expected(dialect: str) -> dict:
    rendered = dialects_for(dialect)[0].render_error(ErrorSpec(ErrorKind.INVALID_REQUEST, status=400, message="x"))
    return _skeleton(json.loads(rendered.body))


def _lane(start_lanes, dialect: str):
    bg = start_lanes(profile_from_dict({"lanes": {"x": {"dialect": dialect, "simulator": FAST}}}))
    return bg, int(bg.urls["x"].rsplit(":", 1)[1])


def _served_next(bg, dialect: str) -> None:
    r = httpx.post(
        bg.urls["x"] + PATHS[dialect], content=_body(dialect, b'"next"'), headers={"content-type": "application/json"}
    )
    assert r.status_code == 200, r.text


def _assert_clean_refusal(raw: bytes, dialect: str) -> None:
    status, headers, body = parse_response(raw)
    assert status == 400, raw[:300]
    assert headers["content-type"].startswith("application/json")
    assert _skeleton(json.loads(body)) == _expected(dialect)
    assert b"AAAA" not in raw and FAKE_KEY.encode() not in raw  # nothing of the request is echoed


def _assert_one_line(caplog, before: int) -> None:
    records = caplog.records[before:]
    lines = [r for r in records if r.name == "harness.proxy.server"]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING and "bad request" in lines[0].getMessage()
    assert all(r.exc_info is None for r in records), [r.getMessage() for r in records if r.exc_info]
    assert not [r for r in records if r.name.startswith("aiohttp") and r.levelno >= logging.WARNING]
    assert FAKE_KEY not in caplog.text and "AAAA" not in caplog.text


@pytest.mark.parametrize("dialect", list(PATHS))
def test_malformed_http_gets_the_dialects_error_and_is_journaled(start_lanes, caplog, dialect):
    caplog.set_level(logging.DEBUG)
    bg, port = _lane(start_lanes, dialect)
    cases = _protocol_cases(PATHS[dialect])
    for i, (what, data) in enumerate(cases.items(), 1):
        before = len(caplog.records)
        _assert_clean_refusal(raw_http(port, data), dialect)
        assert bg.journal.wait_for(i), what
        attempt = bg.journal.attempts()[-1]
        assert (attempt.status, attempt.end_reason, attempt.outcome) == (400, "bad_request", "error"), what
        assert FAKE_KEY not in json.dumps(attempt.to_json())
        _assert_one_line(caplog, before)
    _served_next(bg, dialect)


@pytest.mark.parametrize("dialect", list(PATHS))
def test_bodies_that_break_a_json_reader_are_a_400_not_a_500(start_lanes, caplog, dialect):
    caplog.set_level(logging.DEBUG)
    bg, port = _lane(start_lanes, dialect)
    for i, (what, body) in enumerate(_body_cases(dialect).items(), 1):
        before = len(caplog.records)
        _assert_clean_refusal(raw_http(port, _request(PATHS[dialect], body)), dialect)
        assert bg.journal.wait_for(i), what
        attempt = bg.journal.attempts()[-1]
        assert (attempt.status, attempt.end_reason, attempt.path) == (400, "bad_request", PATHS[dialect]), what
        assert attempt.error and "parse" in attempt.error["message"], (what, attempt.error)
        _assert_one_line(caplog, before)
    _served_next(bg, dialect)


def test_a_bad_chunk_after_the_headers_is_answered_at_once(start_lanes):
    """The headers arrive, the handler starts reading the body, then the chunking goes wrong:
    aiohttp's C parser would leave that handler waiting for a body that never comes."""
    bg, port = _lane(start_lanes, "anthropic")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            b"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b'Transfer-Encoding: chunked\r\n\r\n5\r\n{"mod\r\n'
        )
        time.sleep(0.1)  # the handler is reading the body by now
        sock.sendall(b"zz\r\nmore\r\n0\r\n\r\n")
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    _assert_clean_refusal(raw, "anthropic")
    assert bg.journal.wait_for(1)
    (attempt,) = bg.journal.attempts()
    assert (attempt.path, attempt.status, attempt.end_reason) == ("/v1/messages", 400, "bad_request")
    _served_next(bg, "anthropic")


def test_routechaos_serve_prints_one_line_per_bad_request_and_no_traceback(tmp_path):
    profile = tmp_path / "one.yaml"
    profile.write_text("name: one\nlanes:\n  x: {dialect: openai, simulator: {ttft: 0, answer_tokens: 4}}\n")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "serve", str(profile)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        url = proc.stdout.readline().split()[3]
        port = int(url.rsplit(":", 1)[1])
        sent = {**_protocol_cases(PATHS["openai"]), **_body_cases("openai")}
        for data in sent.values():
            assert parse_response(raw_http(port, data))[0] == 400
        r = httpx.post(
            url + PATHS["openai"], content=_body("openai", b'"next"'), headers={"content-type": "application/json"}
        )
        assert r.status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=15)
    assert "Traceback" not in stderr, stderr[-3000:]
    assert FAKE_KEY not in stderr and "AAAA" not in stderr
    bad = [line for line in stderr.splitlines() if "bad request from" in line]
    assert len(bad) == len(sent), stderr[-3000:]
