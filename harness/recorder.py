"""Recording: an upstream wrapper that writes every exchange of a lane to a cassette.

It sits between the lane and its real upstream (:class:`~harness.proxy.upstream.HttpUpstream`),
so what it records is what the upstream sent, before any fault of the drill acted on it: a fault
that answers by itself (a 429 before the upstream is asked) records nothing, a stream cut by a
fault is still recorded whole as long as the upstream is read to its end (the lane stops reading
a cut stream: the exchange then ends ``closed`` with the events read so far). Each event's offset
is taken when the lane received it from the upstream.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

from .cassette import (
    CassetteWriter,
    RecordedResponse,
    body_fields,
    event_record,
    make_request,
    redact_response_headers,
)
from .dialects.base import Dialect, Event, EventKind, RequestInfo
from .proxy.upstream import UpstreamFailure, UpstreamResponse

__all__ = ["RecordingUpstream", "recording"]

_writers: dict[str, tuple[CassetteWriter, int]] = {}  # path -> writer, lanes writing to it
_writers_lock = threading.Lock()


def recording(inner: Any, path: str, lane: str) -> RecordingUpstream:
    """``inner`` recorded to the cassette at ``path``; lanes naming one path share one file."""
    key = str(Path(path).resolve())
    with _writers_lock:
        writer, n = _writers.get(key, (None, 0))
        if writer is None:
            writer = CassetteWriter(path)
        _writers[key] = (writer, n + 1)
    return RecordingUpstream(inner, writer, lane, release=lambda: _release(key))


def _release(key: str) -> None:
    with _writers_lock:
        writer, n = _writers.get(key, (None, 0))
        if writer is None:
            return
        if n <= 1:
            del _writers[key]
            writer.close()
        else:
            _writers[key] = (writer, n - 1)


class RecordingUpstream:
    """``inner`` (an upstream), with every exchange written to ``writer`` under ``lane``."""

    def __init__(
        self, inner: Any, writer: CassetteWriter, lane: str, *, release: Callable[[], None] | None = None
    ) -> None:
        self.inner = inner
        self.writer = writer
        self.lane = lane
        self.label = inner.label
        self._release: Callable[[], None] | None = release if release is not None else writer.close

    async def send(
        self, method: str, path_qs: str, headers: Mapping[str, str], body: bytes, req: RequestInfo, dialect: Dialect
    ) -> UpstreamResponse:
        t0 = time.monotonic()
        request = make_request(
            dialect=dialect.name,
            method=method,
            path_qs=path_qs,
            headers=headers,
            body=body,
            model=req.model,
            stream=req.stream,
            fingerprint=req.fingerprint,
        )
        try:
            up = await self.inner.send(method, path_qs, headers, body, req, dialect)
        except UpstreamFailure as exc:
            resp = RecordedResponse(status=0, t_headers=time.monotonic() - t0, end="upstream_error", error=str(exc))
            self.writer.add(self.lane, request, resp)
            raise
        t_headers = time.monotonic() - t0
        resp = RecordedResponse(
            status=up.status, t_headers=round(t_headers, 6), headers=redact_response_headers(up.headers)
        )
        if up.events is None:
            fields = body_fields(up.body or b"")
            resp.body, resp.body_b64 = fields["body"], fields["body_b64"]
            resp.t_end = resp.t_headers
            self.writer.add(self.lane, request, resp)
            return up
        binary = "eventstream" in dialect.stream_media_type  # Bedrock's binary frames
        up.events = self._tap(up.events, t0, request, resp, binary)
        return up

    async def _tap(
        self, events: AsyncIterator[list[Event]], t0: float, request: Any, resp: RecordedResponse, binary: bool
    ) -> AsyncIterator[list[Event]]:
        resp.events = []
        resp.end = "closed"
        ended = False
        try:
            async for batch in events:
                t = time.monotonic() - t0
                resp.events.extend(event_record(t, ev.data, binary=binary) for ev in batch)
                ended = ended or any(ev.kind is EventKind.TERMINATOR for ev in batch)
                if ended:
                    # a client hangs up at the terminator (openai stops at [DONE]) and the lane
                    # stops reading: the answer is whole all the same
                    resp.end = "complete"
                yield batch
            resp.end = "complete"
        except UpstreamFailure as exc:
            resp.end, resp.error = "upstream_error", str(exc)
            raise
        finally:
            if resp.end == "complete" and not ended and resp.events and _malformed_tail(resp):
                resp.end = "cut"
            resp.t_end = round(time.monotonic() - t0, 6)
            self.writer.add(self.lane, request, resp)
            if hasattr(events, "aclose"):
                await events.aclose()  # type: ignore[attr-defined]

    async def close(self) -> None:
        try:
            await self.inner.close()
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()


def _malformed_tail(resp: RecordedResponse) -> bool:
    """Whether the upstream's stream ended inside an event (bytes without their end)."""
    last = resp.events[-1] if resp.events else None
    if not last or last.get("data") is None:
        return False
    data = str(last["data"])
    return not (data.endswith("\n\n") or data.endswith("\r\n\r\n") or data.endswith("\n"))
