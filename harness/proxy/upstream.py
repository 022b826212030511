"""Upstreams a lane forwards to: the built-in simulator, or a real provider over HTTP(S).

Both produce the same thing for the lane: a status, headers, and either a whole body or an async
iterator of event batches. For a real upstream the bytes are decoded into events as they arrive
(each event keeps its exact bytes) and classified by the dialect, so the lane can count tokens and
faults can act on events, while the client still receives the upstream's own bytes. The framing
is the dialect's: a response of its ``stream_media_type`` is a stream, cut into events by its
``stream_decoder()`` (SSE for most; NDJSON lines for Ollama, binary event-stream frames for
Bedrock).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Protocol

from ..dialects.base import Dialect, Event, EventInfo, EventKind, RequestInfo, StreamEncoder
from ..dialects.lazy import tokens_of
from ..simulator import SimResponse, Simulator
from ..sse import SSEEvent, SSEEventTooLarge
from .httpclient import HTTPClient, HTTPClientError, Origin, Response

__all__ = [
    "HOP_BY_HOP",
    "MAX_EVENT_BYTES",
    "MAX_RESPONSE_BYTES",
    "HttpUpstream",
    "SimulatorUpstream",
    "StreamSource",
    "Upstream",
    "UpstreamFailure",
    "UpstreamResponse",
]

#: one SSE event of a real upstream may be this large (a Responses ``response.completed`` carries
#: the whole answer; an image model's event carries base64 pixels); past it the attempt ends
MAX_EVENT_BYTES = 16 * 1024 * 1024
#: a whole upstream response (stream or body) may be this large
MAX_RESPONSE_BYTES = 256 * 1024 * 1024

#: RFC 9110 §7.6.1 connection-specific headers, plus those the proxy recomputes itself
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "host",
    }
)


class UpstreamFailure(Exception):
    """The upstream could not be reached, or broke before answering."""


@dataclass(slots=True)
class UpstreamResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes | None = None
    events: AsyncIterator[list[Event]] | None = None
    expected_tokens: int | None = None
    usage: dict[str, int] | None = None
    finish: str | None = None
    encoder: StreamEncoder | None = None
    answer: str | None = None  # a replayed answer's id (harness.playback): checks judge against it
    #: a real upstream's stream as it arrives (None for the simulator's): what the pass-through
    #: path splices to the client when no fault touches the stream (``events`` is then unused)
    source: StreamSource | None = None

    async def aclose(self) -> None:
        if self.events is not None and hasattr(self.events, "aclose"):
            await self.events.aclose()  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class StreamSource:
    """The raw stream of a forwarded response, and the limits its events must keep."""

    response: Response
    max_event_bytes: int | None
    max_response_bytes: int | None
    #: the events decoded from ``response``: whoever wraps ``UpstreamResponse.events`` (a
    #: cassette recorder) replaces them, and the stream then takes the full path
    events: AsyncIterator[list[Event]] | None = None


class Upstream(Protocol):
    label: str

    async def send(
        self, method: str, path_qs: str, headers: Mapping[str, str], body: bytes, req: RequestInfo, dialect: Dialect
    ) -> UpstreamResponse: ...

    async def close(self) -> None: ...


class SimulatorUpstream:
    """The in-process simulator: no socket between the lane and its provider."""

    label = "simulator"

    def __init__(self, simulator: Simulator) -> None:
        self.simulator = simulator

    async def send(
        self, method: str, path_qs: str, headers: Mapping[str, str], body: bytes, req: RequestInfo, dialect: Dialect
    ) -> UpstreamResponse:
        r: SimResponse = await self.simulator.respond(req, dialect, body, headers)
        c = r.completion
        return UpstreamResponse(
            r.status,
            r.headers,
            body=r.body,
            events=r.events,
            expected_tokens=c.usage.output_tokens if c else None,
            usage=c.usage.to_dict() if c else None,
            finish=c.finish if c else None,
            encoder=r.encoder,
        )

    async def close(self) -> None:
        return None


def forward_headers(headers: Mapping[str, str] | list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Headers minus hop-by-hop ones (and those named by ``Connection``); one pass per request."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    out: list[tuple[str, str]] = []
    named: set[str] | None = None
    for k, v in items:
        lk = k.lower()
        if lk in HOP_BY_HOP:
            if lk == "connection":
                named = (named or set()) | {t.strip().lower() for t in v.split(",")}
            continue
        out.append((k, v))
    if named:
        out = [(k, v) for k, v in out if k.lower() not in named]
    return out


class HttpUpstream:
    """A real provider (or another lane) at ``base_url``; one keep-alive connection pool per lane.

    Uses the small client in ``httpclient`` rather than aiohttp's: it costs a fraction of the CPU
    per request and per streamed read, which is the lane's largest cost when forwarding.
    """

    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float | None = 600.0,
        max_event_bytes: int = MAX_EVENT_BYTES,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.max_event_bytes = max_event_bytes
        self.max_response_bytes = max_response_bytes
        self.label = self.base_url
        try:
            self._origin: Origin | None = Origin.parse(self.base_url)
        except ValueError:
            self._origin = None  # reported per request, as an upstream failure
        self._client = HTTPClient(connect_timeout=connect_timeout, read_timeout=read_timeout)

    async def send(
        self, method: str, path_qs: str, headers: Mapping[str, str], body: bytes, req: RequestInfo, dialect: Dialect
    ) -> UpstreamResponse:
        out_headers = []
        accept = False
        for k, v in forward_headers(headers):
            lk = k.lower()
            if lk == "accept-encoding":
                continue
            accept = accept or lk == "accept"
            out_headers.append((k, v))
        out_headers.append(("Accept-Encoding", "identity"))  # the proxy must see events, not gzip
        if not accept:
            out_headers.append(("Accept", "*/*"))  # as aiohttp's client added it
        if self._origin is None:
            raise UpstreamFailure(f"not an http(s) URL: {self.base_url!r}")
        try:
            resp = await self._client.request(self._origin, method, path_qs, out_headers, body)
        except HTTPClientError as exc:
            raise UpstreamFailure(f"{type(exc).__name__}: {exc}") from exc
        headers_out = forward_headers(resp.headers)
        if dialect.stream_media_type in resp.header("content-type"):
            events = _decode_events(resp, dialect, self.max_event_bytes, self.max_response_bytes)
            source = StreamSource(resp, self.max_event_bytes, self.max_response_bytes, events)
            return UpstreamResponse(resp.status, headers_out, events=events, source=source)
        try:
            data = await _read_capped(resp, self.max_response_bytes)
        except HTTPClientError as exc:
            raise UpstreamFailure(f"{type(exc).__name__}: {exc}") from exc
        finally:
            resp.close()  # no-op once the body was read to its end (the connection is back in the pool)
        return UpstreamResponse(resp.status, headers_out, body=data)

    async def close(self) -> None:
        await self._client.close()




async def _read_capped(resp: Response, limit: int) -> bytes:
    """A whole body, refused (as an upstream failure) once it grows past ``limit`` bytes."""
    parts: list[bytes] = []
    total = 0
    while chunk := await resp.read_chunk():
        total += len(chunk)
        if total > limit:
            raise UpstreamFailure(f"upstream response exceeded {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


def event_of(raw: bytes, info: EventInfo) -> Event:
    """An upstream event, classified, ready for the wire (its bytes unchanged)."""
    tokens = tokens_of(info.text) if not info.tools else tokens_of("".join(d.arguments for d in info.tools))
    return Event(raw, info.kind, info.text, tokens, info.finish, info.usage, info.tools)


def _classified(events: list[SSEEvent], dialect: Dialect) -> list[Event]:
    return [event_of(ev.raw, dialect.classify(ev)) for ev in events]


async def _decode_events(
    resp: Response, dialect: Dialect, max_event_bytes: int | None = None, max_response_bytes: int | None = None
) -> AsyncIterator[list[Event]]:
    """Upstream stream bytes as batches of classified events (one batch per read), framed by the
    dialect's decoder.

    Bytes left without a closing blank line when the upstream ends are passed on as a
    ``MALFORMED`` event, so a cut stream reaches the client exactly as it was cut. An event
    larger than ``max_event_bytes``, or a stream longer than ``max_response_bytes``, is an
    :class:`UpstreamFailure` (the lane cuts the stream, the attempt ends ``upstream_error``):
    the events completed before it are still delivered, the oversized rest is dropped.
    """
    decoder = dialect.stream_decoder(max_event_bytes)
    total = 0
    try:
        while chunk := await resp.read_chunk():
            total += len(chunk)
            if max_response_bytes is not None and total > max_response_bytes:
                raise UpstreamFailure(f"upstream stream exceeded {max_response_bytes} bytes")
            try:
                events = decoder.feed(chunk)
            except SSEEventTooLarge as exc:
                if exc.events:
                    yield _classified(exc.events, dialect)
                raise UpstreamFailure(str(exc)) from None
            if events:
                yield _classified(events, dialect)
        if decoder.pending:
            yield [Event(decoder.pending, EventKind.MALFORMED)]
    except HTTPClientError as exc:
        if decoder.pending:
            yield [Event(decoder.pending, EventKind.MALFORMED)]
        raise UpstreamFailure(f"{type(exc).__name__}: {exc}") from exc
    finally:
        resp.close()
