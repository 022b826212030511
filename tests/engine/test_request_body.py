"""A request body as the lane reads it: whole however it arrives, and refused past the limit."""

from __future__ import annotations

import asyncio
import json

from harness.dialects import dialects_for
from harness.journal import Journal
from harness.proxy import Lane, SimulatorUpstream
from harness.proxy import server as lane_server
from harness.simulator import SimSettings, Simulator


def _lane(journal: Journal) -> Lane:
    sim = Simulator(SimSettings(tokens_per_second=1e9, ttft=0.0, answer_tokens=4))
    return Lane("lane", "openai-chat", SimulatorUpstream(sim), journal)


async def _exchange(port: int, head: bytes, parts: list[bytes]) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head)
    for part in parts:  # each part its own write, a pause between: the lane reads it in chunks
        writer.write(part)
        await writer.drain()
        await asyncio.sleep(0.01)
    out = await asyncio.wait_for(reader.read(), 30)
    writer.close()
    return out


def _head(extra: str) -> bytes:
    return f"POST /v1/chat/completions HTTP/1.1\r\nHost: lane\r\nConnection: close\r\n{extra}\r\n".encode()


async def test_a_body_in_many_chunks_is_read_whole() -> None:
    """A 3 MB conversation sent in pieces (and once chunk-encoded) is the conversation it is."""
    body = json.dumps(
        {"model": "m", "messages": [{"role": "user", "content": "lorem ipsum " * 250_000 + "the end"}]}
    ).encode()
    expected = dialects_for("openai-chat")[0].parse_request("POST", "/v1/chat/completions", {}, {}, body)
    pieces = [body[i : i + 200_000] for i in range(0, len(body), 200_000)]
    journal = Journal()
    lane = _lane(journal)
    await lane.start()
    try:
        sized = await _exchange(lane.port, _head(f"Content-Length: {len(body)}\r\n"), pieces)
        chunked = [f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in pieces] + [b"0\r\n\r\n"]
        coded = await _exchange(lane.port, _head("Transfer-Encoding: chunked\r\n"), chunked)
    finally:
        await lane.stop()
    assert sized.startswith(b"HTTP/1.1 200") and coded.startswith(b"HTTP/1.1 200")
    attempts = journal.attempts()
    assert [a.fingerprint for a in attempts] == [expected.fingerprint] * 2
    assert [a.end_reason for a in attempts] == ["complete"] * 2


async def test_a_body_past_the_limit_is_the_dialects_413(monkeypatch) -> None:
    monkeypatch.setattr(lane_server, "MAX_BODY", 10_000)
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "x" * 20_000}]}).encode()
    journal = Journal()
    lane = _lane(journal)
    await lane.start()
    try:
        chunked = [f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in (body[:6000], body[6000:])] + [b"0\r\n\r\n"]
        out = await _exchange(lane.port, _head("Transfer-Encoding: chunked\r\n"), chunked)
    finally:
        await lane.stop()
    head, _, payload = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    assert json.loads(payload)["error"]["type"] == "invalid_request_error"
    (attempt,) = journal.attempts()
    assert attempt.end_reason == "bad_request" and attempt.status == 413
