"""The provider's usage lands in the journal however a stream's last events are split into reads,
and however the client leaves once it has the terminator.

Every dialect that reports usage in the stream (OpenAI chat with ``include_usage``, Azure,
OpenRouter, Responses' ``response.completed``, Anthropic's ``message_delta``, Gemini's
``usageMetadata``) is recorded from the simulator and replayed by a scripted upstream on a real
loopback socket: each event in a read of its own; the usage event in one read with the event
before it, with the terminator, with both; and split in two reads at every byte boundary around
the usage event. A lane forwards each to a raw-socket client, spliced
(:mod:`harness.proxy.passthrough`) and on the full event path, and both journals must be the
same field for field, with ``tokens`` the provider's count. Each replay is also run the way the
official OpenAI client reads a stream: it hangs up at the terminator, while the upstream's end
of body is still to come (held until the lane has journaled the attempt), so the lane's handler
is cancelled where, on a loaded machine, it sometimes was. Time is virtual.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from harness.clock import VirtualClock
from harness.dialects.base import EventKind
from harness.journal import Journal
from harness.proxy import HttpUpstream, Lane, passthrough, server

from .test_passthrough import LANE_DIALECT, _dialect, _record

USAGE_FORMS = ("openai", "azure", "openrouter", "openai-responses", "anthropic", "gemini")
#: split points this many bytes either side of the usage event's first and last byte
EDGE = 24
#: inside the usage event (past its edges), a split point every this many bytes
STRIDE = 7


class Upstream:
    """A scripted upstream answering its ``n``-th request with the ``n``-th queued reply: pieces
    written one chunk each (a short pause between them, so they arrive as separate reads), then
    the end of the body, at once or (``hold``) once ``hold()`` is true (bounded: 10 s)."""

    def __init__(self, content_type: str) -> None:
        self.content_type = content_type
        self.replies: list[tuple[list[bytes], Callable[[], bool] | None]] = []
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:  # the lane may keep the connection for its next request
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.lower().split(b"\r\n")
                length = next(int(h.split(b":")[1]) for h in lines if h.startswith(b"content-length"))
                await reader.readexactly(length)
                pieces, hold = self.replies.pop(0)
                writer.write(
                    f"HTTP/1.1 200 OK\r\nContent-Type: {self.content_type}\r\nx-request-id: req_script\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n".encode()
                )
                for piece in pieces:
                    writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    await writer.drain()
                    await asyncio.sleep(0.001)
                if hold is not None:
                    for _ in range(5000):
                        if hold():
                            break
                        await asyncio.sleep(0.002)
                writer.write(b"0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()


async def _fetch(port: int, path: str, body: dict[str, Any], last: bytes | None) -> bytes:
    """POST ``body`` and read the answer until the lane ends it or, with ``last``, only until
    ``last`` (the stream's terminator event) has arrived: then hang up, as openai-python closes
    its response at ``[DONE]``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    payload = json.dumps(body).encode()
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: lane\r\nContent-Type: application/json\r\nConnection: close\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n".encode()
        + payload
    )
    data = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), 10):
            data += chunk
            if last is not None and last in data:
                break
    except ConnectionError:
        pass
    writer.close()
    return data


def _cases(events: list[bytes], u: int) -> Iterator[tuple[str, list[bytes]]]:
    """Reads of a stream whose usage event is ``events[u]``."""
    before, usage, after = events[: u - 1], events[u], events[u + 1 :]
    prev = events[u - 1]
    yield "per-event", events
    yield "with-previous", [*before, prev + usage, *after]
    if after:
        yield "with-terminator", [*before, prev, usage + b"".join(after)]
        yield "with-both", [*before, prev + usage + b"".join(after)]
    region = prev + usage + b"".join(after)
    a, b = len(prev), len(prev) + len(usage)  # the usage event's span in ``region``
    points = {*range(max(1, a - EDGE), a + EDGE), *range(b - EDGE, min(len(region), b + EDGE)), *range(a, b, STRIDE)}
    for i in sorted(p for p in points if 0 < p < len(region)):
        yield f"split-{i - a:+d}", [b"".join(before), region[:i], region[i:]]


def _facts(journal: Journal, n: int) -> dict[str, Any]:
    d = journal.attempts()[n].to_json()
    d.pop("id")
    d.pop("wall_start")
    return d


@pytest.mark.parametrize("form", USAGE_FORMS)
async def test_usage_in_any_read_split_gives_the_same_journal(form: str, monkeypatch) -> None:
    path, body, ctype, data = await _record(form, False)
    dialect = _dialect(form, path)
    decoded = dialect.stream_decoder().feed(data)
    infos = [dialect.classify(ev) for ev in decoded]
    events = [ev.raw for ev in decoded]
    u = max(i for i, info in enumerate(infos) if info.usage is not None)  # the final usage report
    reported = infos[u].usage
    assert reported is not None and infos[-1].kind is EventKind.TERMINATOR
    relayed = 0
    relay = server.relay

    async def counting_relay(*args: Any) -> Any:
        nonlocal relayed
        relayed += 1
        return await relay(*args)

    monkeypatch.setattr(server, "relay", counting_relay)
    journal = Journal(clock=VirtualClock())
    upstream = Upstream(ctype)
    lane = Lane("front", LANE_DIALECT.get(form, form), HttpUpstream(await upstream.start()), journal)
    await lane.start()
    n = 0
    try:
        for name, pieces in _cases(events, u):
            for hangup in (False, True):
                seen = []
                for full in (False, True):
                    monkeypatch.setattr(passthrough, "FORCE_FULL", full)
                    upstream.replies.append((pieces, (lambda k=n: len(journal.attempts()) > k) if hangup else None))
                    got = await _fetch(lane.port, path, body, events[-1] if hangup else None)
                    for _ in range(5000):  # the attempt is journaled as the lane's handler returns
                        if len(journal.attempts()) > n and not lane._open:
                            break
                        await asyncio.sleep(0.002)
                    assert events[-1] in got, f"{form} {name}: the client never got the terminator"
                    seen.append(_facts(journal, n))
                    n += 1
                fast, full_ = seen
                case = f"{form} {name}{' (client hangs up at the terminator)' if hangup else ''}"
                assert fast == full_, f"{case}: journals differ: " + "; ".join(
                    f"{k}: {fast.get(k)!r} != {full_.get(k)!r}" for k in fast if fast.get(k) != full_.get(k)
                )
                assert fast["end_reason"] == "complete", (case, fast["end_reason"])
                assert fast["usage"] == reported.to_dict(), (case, fast["usage"])
                assert fast["tokens"] == reported.output_tokens, f"{case}: tokens {fast['tokens']}, not the provider's"
    finally:
        monkeypatch.setattr(passthrough, "FORCE_FULL", False)
        await lane.stop()
        await upstream.stop()
    assert relayed == n // 2  # every other exchange took the pass-through path
