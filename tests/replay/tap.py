"""What a client received, byte for byte: an httpx transport that keeps every response body.

The SDKs (openai, anthropic, google-genai) all speak httpx; handing them a client with this
transport lets a test compare what the SDK itself read from a live upstream and from its replay.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType
from typing import Any

import httpx


class Tap:
    """Forwards to a real ``HTTPTransport`` and keeps each response's body as read. ``httpx``
    by default; ``module=httpx2`` for the SDKs built on httpx2 (anthropic)."""

    def __init__(self) -> None:
        self.bodies: list[bytearray] = []
        self.statuses: list[int] = []

    def client(self, module: ModuleType = httpx) -> Any:
        tap = self

        class Transport(module.BaseTransport):  # type: ignore[name-defined,misc]
            def __init__(self) -> None:
                self.inner = module.HTTPTransport()

            def handle_request(self, request: Any) -> Any:
                return tap._handle(module, self.inner, request)

            def close(self) -> None:
                self.inner.close()

        return module.Client(transport=Transport(), timeout=30.0)

    def transport(self) -> Any:
        """An httpx transport (for clients that take one: google-genai's ``client_args``)."""
        return self.client()._transport

    def _handle(self, httpx: ModuleType, inner: Any, request: Any) -> Any:
        resp = inner.handle_request(request)
        buf = bytearray()
        self.bodies.append(buf)
        self.statuses.append(resp.status_code)
        stream = resp.stream

        class Kept(httpx.SyncByteStream):
            def __iter__(self) -> Iterator[bytes]:
                for chunk in stream:  # type: ignore[union-attr]
                    buf.extend(chunk)
                    yield chunk

            def close(self) -> None:
                stream.close()  # type: ignore[union-attr]

        return httpx.Response(resp.status_code, headers=resp.headers, stream=Kept(), extensions=resp.extensions)
