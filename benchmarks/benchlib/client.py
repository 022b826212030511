"""The load generator's client: a raw asyncio HTTP/1.1 keep-alive connection that timestamps
every read, and the request bodies the benchmarks send.

Minimal response parsing (Content-Length or chunked) keeps the client cheap: the client shares
the machine's cores with the paths it measures.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

HOST = "127.0.0.1"
CHAT_PATH = "/v1/chat/completions"
TEXT_MARK = b'"delta":{"content":'  # every content event of the openai-chat simulator carries it
TOOL_MARK = b'"function":{"arguments":'  # every tool-call argument fragment event
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "run_tests",
            "description": "run the test suite",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
        },
    }
]


class ClientConn(asyncio.Protocol):
    """One keep-alive connection; one request at a time."""

    mark = TEXT_MARK

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.done: asyncio.Future[None] | None = None
        self.closed = asyncio.get_running_loop().create_future()
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers_done = False
        self.chunked = False
        self.length = -1
        self.chunk_left = 0
        self.in_chunk_crlf = False
        self.body_got = 0
        self.content_events = 0
        self.event_times: list[float] = []
        self.t_last = 0.0
        self.t_first = 0.0
        self.carry = b""
        self.tail = b""
        self._complete = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        if self.done is not None and not self.done.done():
            self.done.set_exception(ConnectionError(f"connection lost: {exc}"))

    def request(self, payload: bytes) -> float:
        """Send ``payload`` (a whole request); returns the send time. Await :attr:`done` after."""
        assert self.transport is not None
        self._reset()
        self.done = asyncio.get_running_loop().create_future()
        t0 = time.perf_counter()
        self.transport.write(payload)
        return t0

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        if not self.t_first:
            self.t_first = now
        self.t_last = now
        self.buf += data
        if not self.headers_done:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
            del self.buf[: end + 4]
            self.status = int(head[0].split()[1])
            for line in head[1:]:
                k, _, v = line.partition(":")
                k = k.strip().lower()
                if k == "content-length":
                    self.length = int(v)
                elif k == "transfer-encoding" and "chunked" in v.lower():
                    self.chunked = True
            self.headers_done = True
        body = self._consume()
        if body is None:
            return
        if body:
            mark = self.mark
            marks = (self.carry + body).count(mark)
            self.carry = body[-(len(mark) - 1) :]
            self.tail = (self.tail + body)[-32:]
            if marks:
                self.content_events += marks
                self.event_times.append(now)
        if self._complete and self.done is not None and not self.done.done():
            self.done.set_result(None)

    def _consume(self) -> bytes | None:
        buf = self.buf
        if not self.chunked:
            if self.length < 0:
                return None
            take = bytes(buf[: self.length - self.body_got])
            del buf[: len(take)]
            self.body_got += len(take)
            self._complete = self.body_got >= self.length
            return take
        out = bytearray()
        self._complete = False
        while True:
            if self.chunk_left > 0:
                take = min(self.chunk_left, len(buf))
                if take == 0:
                    break
                out += buf[:take]
                del buf[:take]
                self.chunk_left -= take
                if self.chunk_left == 0:
                    self.in_chunk_crlf = True
                continue
            if self.in_chunk_crlf:
                if len(buf) < 2:
                    break
                del buf[:2]
                self.in_chunk_crlf = False
                continue
            nl = buf.find(b"\r\n")
            if nl < 0:
                break
            size = int(bytes(buf[:nl]).split(b";")[0], 16)
            if size == 0:
                if len(buf) < nl + 4:  # the last chunk and its empty trailer
                    break
                del buf[: nl + 4]
                self._complete = True
                break
            del buf[: nl + 2]
            self.chunk_left = size
        return bytes(out)


class ToolConn(ClientConn):
    mark = TOOL_MARK


async def open_conn(port: int, cls: type[ClientConn] = ClientConn, timeout: float = 10.0) -> ClientConn:
    loop = asyncio.get_running_loop()
    _, conn = await asyncio.wait_for(loop.create_connection(cls, HOST, port), timeout)
    return conn  # type: ignore[return-value]


def http_post(port: int, body: dict[str, Any] | bytes, path: str = CHAT_PATH) -> bytes:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(raw)}\r\nAccept: text/event-stream\r\n\r\n"
    ).encode()
    return head + raw


def chat_request(
    port: int, i: int, *, stream: bool, max_tokens: int | None = None, pad: int = 0, tools: bool = False
) -> bytes:
    """A chat request; ``pad`` characters of extra prompt make a body of about that size."""
    text = f"benchmark request {i}"
    if pad:
        text += " " + ("lorem ipsum " * (pad // 12 + 1))[:pad]
    body: dict[str, Any] = {"model": "bench", "messages": [{"role": "user", "content": text}], "stream": stream}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    if tools:
        body["tools"] = TOOLS
    return http_post(port, body)


def conversation_request(port: int, conv: int, turn: int, turn_chars: int = 1000) -> bytes:
    """Turn ``turn`` (1-based) of conversation ``conv``: every earlier user message and answer,
    each about ``turn_chars`` characters, then the new user message (an agent resending its
    whole context at every step)."""
    messages: list[dict[str, str]] = []
    filler = ("context " * (turn_chars // 8 + 1))[:turn_chars]
    for k in range(1, turn + 1):
        messages.append({"role": "user", "content": f"conversation {conv} turn {k}: {filler}"})
        if k < turn:
            messages.append({"role": "assistant", "content": f"answer {k}: {filler}"})
    return http_post(port, {"model": "bench", "messages": messages, "stream": False})
