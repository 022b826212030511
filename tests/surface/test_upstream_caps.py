"""A real upstream that never ends an event, or never ends at all, cannot grow a lane's memory.

Before: an SSE event with no blank line after it was buffered without limit (nothing reached
the client while the lane's memory grew). Now each lane has ``max_event_bytes`` and
``max_response_bytes``: past either the lane cuts the stream (every dialect: see README) and the
attempt ends ``upstream_error``; a whole body past the cap is a 502, as for any upstream that broke.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator

import httpx
import pytest

from harness.profile import profile_from_dict

from .test_lane_bad_input import BODIES, PATHS

LIMIT = 64 * 1024
PLENTY = 64 * 1024 * 1024  # what the fake upstream would send if nobody stopped reading


class FakeUpstream:
    """Answers every request with ``head`` and then ``chunk()`` until ``PLENTY`` bytes are out or
    the reader goes away; counts what it managed to write."""

    def __init__(self, head: bytes, chunk: Callable[[int], bytes]) -> None:
        self.head, self.chunk = head, chunk
        self.sent = 0
        self.stopped_early = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        conn, _ = self._sock.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = next(
                (
                    int(v)
                    for k, _, v in (ln.partition(b":") for ln in head.split(b"\r\n"))
                    if k.lower() == b"content-length"
                ),
                0,
            )
            while len(body) < length:
                body += conn.recv(65536)
            try:
                conn.sendall(self.head)
                i = 0
                while self.sent < PLENTY:
                    piece = self.chunk(i)
                    conn.sendall(piece)
                    self.sent += len(piece)
                    i += 1
            except OSError:
                self.stopped_early.set()

    def close(self) -> None:
        self._sock.close()


@pytest.fixture
def upstream() -> Iterator[Callable[..., FakeUpstream]]:
    made: list[FakeUpstream] = []

    def make(head: bytes, chunk: Callable[[int], bytes]) -> FakeUpstream:
        made.append(FakeUpstream(head, chunk))
        return made[-1]

    yield make
    for u in made:
        u.close()


SSE_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
FIRST = {
    "openai": b'data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n',
    "openai-responses": b"event: response.output_text.delta\n"
    b'data: {"type":"response.output_text.delta","delta":"hi"}\n\n',
    "anthropic": b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hi"}}\n\n',
    "gemini": b'data: {"candidates":[{"content":{"parts":[{"text":"hi"}],"role":"model"}}]}\n\n',
}


def _chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _lane(start_lanes, dialect: str, url: str, **caps: int):
    spec = {"dialect": dialect, "upstream": url, **caps}
    return start_lanes(profile_from_dict({"lanes": {"x": spec}}))


def _stream(bg, dialect: str) -> tuple[bytes, Exception | None]:
    body = {**BODIES[dialect], "stream": True}
    path = PATHS[dialect].replace(":generateContent", ":streamGenerateContent?alt=sse")
    got = b""
    try:
        with httpx.stream("POST", bg.urls["x"] + path, json=body, timeout=30) as r:
            assert r.status_code == 200
            for chunk in r.iter_raw():
                got += chunk
    except httpx.HTTPError as exc:
        return got, exc
    return got, None


@pytest.mark.parametrize("dialect", list(PATHS))
def test_an_event_that_never_ends_is_cut_at_the_cap(start_lanes, upstream, dialect):
    never_ends = upstream(SSE_HEAD, lambda i: _chunked(FIRST[dialect] if i == 0 else b"data: " + b"x" * 16384))
    bg = _lane(start_lanes, dialect, never_ends.url, max_event_bytes=LIMIT)
    got, error = _stream(bg, dialect)
    assert error is not None, "the client must see the stream cut, not an end"
    assert got == FIRST[dialect]  # the complete event before it arrived; nothing of the endless one
    assert bg.journal.wait_for(1)
    (attempt,) = bg.journal.attempts()
    assert (attempt.end_reason, attempt.outcome) == ("upstream_error", "unknown")
    assert "exceeded" in attempt.error["message"] and attempt.events == 1
    assert never_ends.stopped_early.wait(10), "the lane must stop reading the upstream"
    assert never_ends.sent < PLENTY


def test_a_stream_that_never_ends_is_cut_at_the_response_cap(start_lanes, upstream):
    event = FIRST["openai"]
    endless = upstream(SSE_HEAD, lambda i: _chunked(event * 8))
    bg = _lane(start_lanes, "openai", endless.url, max_response_bytes=1024 * 1024)
    got, error = _stream(bg, "openai")
    assert error is not None and 0 < len(got) <= 1024 * 1024
    assert bg.journal.wait_for(1)
    (attempt,) = bg.journal.attempts()
    assert attempt.end_reason == "upstream_error" and "exceeded 1048576 bytes" in attempt.error["message"]
    assert endless.stopped_early.wait(10)


@pytest.mark.parametrize("dialect", ["openai", "anthropic", "gemini"])
def test_a_body_past_the_cap_is_a_502_as_for_any_upstream_failure(start_lanes, upstream, dialect):
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % PLENTY
    huge = upstream(head, lambda i: b" " * 65536)
    bg = _lane(start_lanes, dialect, huge.url, max_response_bytes=LIMIT)
    r = httpx.post(bg.urls["x"] + PATHS[dialect], json=BODIES[dialect], timeout=30)
    assert r.status_code == 502  # the edge's 502, as for an upstream that cannot be reached
    assert bg.journal.wait_for(1)
    (attempt,) = bg.journal.attempts()
    assert attempt.end_reason == "upstream_error" and "exceeded" in attempt.error["message"]
    assert huge.stopped_early.wait(10)


def test_caps_are_lane_settings_with_sane_defaults():
    from harness.profile import ProfileError

    lane = profile_from_dict({"lanes": {"x": {"dialect": "openai", "upstream": "http://127.0.0.1:9"}}}).lanes["x"]
    assert lane.max_event_bytes == 16 * 2**20 and lane.max_response_bytes == 256 * 2**20
    for bad in (0, 10, True, 1.5, "1MB", 2**41):
        with pytest.raises(ProfileError) as info:
            profile_from_dict({"lanes": {"x": {"dialect": "openai", "max_event_bytes": bad}}})
        assert info.value.field == "lanes.x.max_event_bytes"
    assert json.loads(json.dumps(lane.max_event_bytes)) == lane.max_event_bytes
