"""A small typed client for Toxiproxy's HTTP API, on httpx; works with a real Toxiproxy and ours.

Three lines::

    client = ToxiproxyClient("http://127.0.0.1:8474")
    proxy = client.create_proxy("llm", listen="127.0.0.1:0", upstream="127.0.0.1:8000")
    with client.toxic("llm", "latency", attributes={"latency": 500}):
        ...  # every connection through proxy.listen is 500 ms late here

Errors are :class:`ToxiproxyError` carrying the server's status and message (``NotFound`` and
``Conflict`` for 404/409), and :class:`ToxiproxyUnavailable` when the server cannot be reached.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

DEFAULT_URL = "http://127.0.0.1:8474"
USER_AGENT = "routechaos-toxiproxy-client"


class ToxiproxyError(Exception):
    """The API answered with an error (``status`` 0 when it could not be reached at all)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"toxiproxy: {message} (HTTP {status})" if status else f"toxiproxy: {message}")
        self.status = status
        self.message = message


class BadRequest(ToxiproxyError):
    """400: missing field, invalid toxic type or stream, bad body."""


class NotFound(ToxiproxyError):
    """404: proxy or toxic not found."""


class Conflict(ToxiproxyError):
    """409: proxy or toxic already exists."""


class ToxiproxyUnavailable(ToxiproxyError):
    """The server could not be reached or did not answer in time."""


_ERRORS: dict[int, type[ToxiproxyError]] = {400: BadRequest, 404: NotFound, 409: Conflict}


@dataclass(frozen=True)
class Toxic:
    name: str
    type: str
    stream: str = "downstream"
    toxicity: float = 1.0
    attributes: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Toxic:
        return cls(
            name=obj["name"],
            type=obj["type"],
            stream=obj.get("stream", "downstream"),
            toxicity=float(obj.get("toxicity", 1.0)),
            attributes=dict(obj.get("attributes") or {}),
        )


@dataclass(frozen=True)
class Proxy:
    name: str
    listen: str
    upstream: str
    enabled: bool
    toxics: tuple[Toxic, ...] = ()

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Proxy:
        return cls(
            name=obj["name"],
            listen=obj["listen"],
            upstream=obj["upstream"],
            enabled=bool(obj.get("enabled", True)),
            toxics=tuple(Toxic.from_json(t) for t in obj.get("toxics") or ()),
        )

    @property
    def host(self) -> str:
        """Listen host, for clients to connect to (``[::]``/``0.0.0.0`` become loopback)."""
        host = self.listen.rpartition(":")[0].strip("[]")
        return {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


def _raise_for(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    message = response.text.strip()
    try:
        body = response.json()
        if isinstance(body, dict) and "error" in body:
            message = str(body["error"])
    except ValueError:
        pass
    cls = _ERRORS.get(response.status_code, ToxiproxyError)
    raise cls(response.status_code, message or response.reason_phrase)


def _toxic_body(
    type: str, stream: str, toxicity: float, attributes: dict[str, Any] | None, name: str | None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": type,
        "stream": stream,
        "toxicity": toxicity,
        "attributes": dict(attributes or {}),
    }
    if name:
        body["name"] = name
    return body


def _update_body(toxicity: float | None, attributes: dict[str, Any] | None) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if attributes is not None:
        body["attributes"] = attributes
    if toxicity is not None:
        body["toxicity"] = toxicity
    return body


def _proxy_body(
    listen: str | None, upstream: str | None, enabled: bool | None, name: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {} if name is None else {"name": name}
    for key, value in (("listen", listen), ("upstream", upstream), ("enabled", enabled)):
        if value is not None:
            body[key] = value
    return body


class ToxiproxyClient:
    """Synchronous client. ``timeout`` bounds every call; env proxies are ignored by default."""

    def __init__(self, url: str = DEFAULT_URL, *, timeout: float = 5.0, trust_env: bool = False) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url, timeout=timeout, trust_env=trust_env, headers={"User-Agent": USER_AGENT}
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ToxiproxyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, json: Any = None) -> Any:
        try:
            response = self._http.request(method, path, json=json)
        except httpx.HTTPError as exc:
            raise ToxiproxyUnavailable(0, f"{method} {self.url}{path}: {exc!r}") from exc
        _raise_for(response)
        return response.json() if response.status_code != 204 and response.content else None

    def version(self) -> str:
        return str(self._request("GET", "/version")["version"])

    def proxies(self) -> dict[str, Proxy]:
        return {name: Proxy.from_json(p) for name, p in self._request("GET", "/proxies").items()}

    def create_proxy(self, name: str, listen: str, upstream: str, enabled: bool = True) -> Proxy:
        """Create a proxy; ``listen="127.0.0.1:0"`` lets the server pick the port (see ``.listen``)."""
        return Proxy.from_json(self._request("POST", "/proxies", _proxy_body(listen, upstream, enabled, name)))

    def get_proxy(self, name: str) -> Proxy:
        return Proxy.from_json(self._request("GET", f"/proxies/{name}"))

    def update_proxy(
        self,
        name: str,
        *,
        listen: str | None = None,
        upstream: str | None = None,
        enabled: bool | None = None,
    ) -> Proxy:
        body = _proxy_body(listen, upstream, enabled)
        return Proxy.from_json(self._request("PATCH", f"/proxies/{name}", body))

    def delete_proxy(self, name: str) -> None:
        self._request("DELETE", f"/proxies/{name}")

    def populate(self, proxies: list[dict[str, Any]]) -> list[Proxy]:
        """Create or replace proxies (``POST /populate``); unchanged ones are left alone."""
        return [Proxy.from_json(p) for p in self._request("POST", "/populate", proxies)["proxies"]]

    def disable(self, name: str) -> Proxy:
        """Take the proxy down: its listener refuses connections and live ones are dropped."""
        return self.update_proxy(name, enabled=False)

    def enable(self, name: str) -> Proxy:
        return self.update_proxy(name, enabled=True)

    @contextlib.contextmanager
    def down(self, name: str) -> Iterator[None]:
        """The proxy is disabled inside the block, and enabled again after it."""
        self.disable(name)
        try:
            yield
        finally:
            self.enable(name)

    def toxics(self, proxy: str) -> list[Toxic]:
        return [Toxic.from_json(t) for t in self._request("GET", f"/proxies/{proxy}/toxics")]

    def get_toxic(self, proxy: str, name: str) -> Toxic:
        return Toxic.from_json(self._request("GET", f"/proxies/{proxy}/toxics/{name}"))

    def add_toxic(
        self,
        proxy: str,
        type: str,
        stream: str = "downstream",
        toxicity: float = 1.0,
        attributes: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> Toxic:
        """Add a toxic; it applies to live connections too. Default name: ``<type>_<stream>``."""
        body = _toxic_body(type, stream, toxicity, attributes, name)
        return Toxic.from_json(self._request("POST", f"/proxies/{proxy}/toxics", body))

    def update_toxic(
        self,
        proxy: str,
        name: str,
        *,
        attributes: dict[str, Any] | None = None,
        toxicity: float | None = None,
    ) -> Toxic:
        """Change attributes and/or toxicity (the only fields Toxiproxy lets you update)."""
        body = _update_body(toxicity, attributes)
        return Toxic.from_json(self._request("PATCH", f"/proxies/{proxy}/toxics/{name}", body))

    def remove_toxic(self, proxy: str, name: str) -> None:
        self._request("DELETE", f"/proxies/{proxy}/toxics/{name}")

    @contextlib.contextmanager
    def toxic(
        self,
        proxy: str,
        type: str,
        stream: str = "downstream",
        toxicity: float = 1.0,
        attributes: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> Iterator[Toxic]:
        """Scope a toxic to a block (Ruby's ``.apply { }``): removed on exit, even on error."""
        created = self.add_toxic(proxy, type, stream, toxicity, attributes, name)
        try:
            yield created
        finally:
            with contextlib.suppress(NotFound):
                self.remove_toxic(proxy, created.name)

    def reset(self) -> None:
        """Enable every proxy and remove every toxic."""
        self._request("POST", "/reset")


class AsyncToxiproxyClient:
    """The same API for asyncio code."""

    def __init__(self, url: str = DEFAULT_URL, *, timeout: float = 5.0, trust_env: bool = False) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.url, timeout=timeout, trust_env=trust_env, headers={"User-Agent": USER_AGENT}
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncToxiproxyClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _request(self, method: str, path: str, json: Any = None) -> Any:
        try:
            response = await self._http.request(method, path, json=json)
        except httpx.HTTPError as exc:
            raise ToxiproxyUnavailable(0, f"{method} {self.url}{path}: {exc!r}") from exc
        _raise_for(response)
        return response.json() if response.status_code != 204 and response.content else None

    async def version(self) -> str:
        return str((await self._request("GET", "/version"))["version"])

    async def proxies(self) -> dict[str, Proxy]:
        return {name: Proxy.from_json(p) for name, p in (await self._request("GET", "/proxies")).items()}

    async def create_proxy(self, name: str, listen: str, upstream: str, enabled: bool = True) -> Proxy:
        body = _proxy_body(listen, upstream, enabled, name)
        return Proxy.from_json(await self._request("POST", "/proxies", body))

    async def get_proxy(self, name: str) -> Proxy:
        return Proxy.from_json(await self._request("GET", f"/proxies/{name}"))

    async def update_proxy(
        self,
        name: str,
        *,
        listen: str | None = None,
        upstream: str | None = None,
        enabled: bool | None = None,
    ) -> Proxy:
        body = _proxy_body(listen, upstream, enabled)
        return Proxy.from_json(await self._request("PATCH", f"/proxies/{name}", body))

    async def delete_proxy(self, name: str) -> None:
        await self._request("DELETE", f"/proxies/{name}")

    async def populate(self, proxies: list[dict[str, Any]]) -> list[Proxy]:
        return [Proxy.from_json(p) for p in (await self._request("POST", "/populate", proxies))["proxies"]]

    async def disable(self, name: str) -> Proxy:
        return await self.update_proxy(name, enabled=False)

    async def enable(self, name: str) -> Proxy:
        return await self.update_proxy(name, enabled=True)

    async def toxics(self, proxy: str) -> list[Toxic]:
        return [Toxic.from_json(t) for t in await self._request("GET", f"/proxies/{proxy}/toxics")]

    async def get_toxic(self, proxy: str, name: str) -> Toxic:
        return Toxic.from_json(await self._request("GET", f"/proxies/{proxy}/toxics/{name}"))

    async def add_toxic(
        self,
        proxy: str,
        type: str,
        stream: str = "downstream",
        toxicity: float = 1.0,
        attributes: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> Toxic:
        body = _toxic_body(type, stream, toxicity, attributes, name)
        return Toxic.from_json(await self._request("POST", f"/proxies/{proxy}/toxics", body))

    async def update_toxic(
        self,
        proxy: str,
        name: str,
        *,
        attributes: dict[str, Any] | None = None,
        toxicity: float | None = None,
    ) -> Toxic:
        body = _update_body(toxicity, attributes)
        return Toxic.from_json(await self._request("PATCH", f"/proxies/{proxy}/toxics/{name}", body))

    async def remove_toxic(self, proxy: str, name: str) -> None:
        await self._request("DELETE", f"/proxies/{proxy}/toxics/{name}")

    @contextlib.asynccontextmanager
    async def toxic(
        self,
        proxy: str,
        type: str,
        stream: str = "downstream",
        toxicity: float = 1.0,
        attributes: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> AsyncIterator[Toxic]:
        created = await self.add_toxic(proxy, type, stream, toxicity, attributes, name)
        try:
            yield created
        finally:
            with contextlib.suppress(NotFound):
                await self.remove_toxic(proxy, created.name)

    async def reset(self) -> None:
        await self._request("POST", "/reset")


__all__ = [
    "AsyncToxiproxyClient",
    "BadRequest",
    "Conflict",
    "NotFound",
    "Proxy",
    "Toxic",
    "ToxiproxyClient",
    "ToxiproxyError",
    "ToxiproxyUnavailable",
]
