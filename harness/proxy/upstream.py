"""Upstreams a lane forwards to: the built-in simulator, or a real provider over HTTP(S).

Both produce the same thing for the lane: a status, headers, and either a whole body or an async
iterator of event batches. For a real upstream the bytes are decoded into SSE events as they
arrive (each event keeps its exact bytes) and classified by the dialect, so the lane can count
tokens and faults can act on events, while the client still receives the upstream's own bytes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Protocol

import aiohttp

from ..dialects.base import Dialect, Event, EventKind, RequestInfo, StreamEncoder
from ..simulator import SimResponse, Simulator
from ..sse import SSEDecoder

__all__ = ["HOP_BY_HOP", "HttpUpstream", "SimulatorUpstream", "Upstream", "UpstreamFailure", "UpstreamResponse"]

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

    async def aclose(self) -> None:
        if self.events is not None and hasattr(self.events, "aclose"):
            await self.events.aclose()  # type: ignore[attr-defined]


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
        r: SimResponse = await self.simulator.respond(req, dialect)
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
    """Headers minus hop-by-hop ones (and those named by ``Connection``)."""
    items = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    named = set()
    for k, v in items:
        if k.lower() == "connection":
            named |= {t.strip().lower() for t in v.split(",")}
    return [(k, v) for k, v in items if k.lower() not in HOP_BY_HOP and k.lower() not in named]


class HttpUpstream:
    """A real provider (or another lane) at ``base_url``; one pooled keep-alive session per lane."""

    def __init__(self, base_url: str, *, connect_timeout: float = 10.0, read_timeout: float | None = 600.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.label = self.base_url
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout, sock_read=read_timeout)
        self._session: aiohttp.ClientSession | None = None

    def _session_get(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                auto_decompress=False,
                connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300),
                skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
            )
        return self._session

    async def send(
        self, method: str, path_qs: str, headers: Mapping[str, str], body: bytes, req: RequestInfo, dialect: Dialect
    ) -> UpstreamResponse:
        url = self.base_url + path_qs
        out_headers = [(k, v) for k, v in forward_headers(headers) if k.lower() != "accept-encoding"]
        out_headers.append(("Accept-Encoding", "identity"))  # the proxy must see events, not gzip
        try:
            resp = await self._session_get().request(method, url, headers=out_headers, data=body)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise UpstreamFailure(f"{type(exc).__name__}: {exc}") from exc
        headers_out = forward_headers(list(resp.headers.items()))
        ctype = resp.headers.get("content-type", "")
        if "text/event-stream" in ctype:
            return UpstreamResponse(resp.status, headers_out, events=_decode_events(resp, dialect))
        try:
            data = await resp.read()
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise UpstreamFailure(f"{type(exc).__name__}: {exc}") from exc
        finally:
            resp.release()
        return UpstreamResponse(resp.status, headers_out, body=data)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _tokens(text: str) -> int:
    """Tokens in a forwarded event, estimated (the wire carries text, not token ids); the exact
    count comes from the usage the provider reports at the end."""
    return max(1, (len(text) + 2) // 4) if text else 0


async def _decode_events(resp: aiohttp.ClientResponse, dialect: Dialect) -> AsyncIterator[list[Event]]:
    """Upstream SSE bytes as batches of classified events (one batch per read).

    Bytes left without a closing blank line when the upstream ends are passed on as a
    ``MALFORMED`` event, so a cut stream reaches the client exactly as it was cut.
    """
    decoder = SSEDecoder()
    try:
        async for chunk in resp.content.iter_any():
            batch = []
            for ev in decoder.feed(chunk):
                info = dialect.classify(ev)
                batch.append(Event(ev.raw, info.kind, info.text, _tokens(info.text), info.finish, info.usage))
            if batch:
                yield batch
        if decoder.pending:
            yield [Event(decoder.pending, EventKind.MALFORMED)]
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        if decoder.pending:
            yield [Event(decoder.pending, EventKind.MALFORMED)]
        raise UpstreamFailure(f"{type(exc).__name__}: {exc}") from exc
    finally:
        resp.close()
