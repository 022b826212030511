"""Proxies and the proxy collection: the state behind Toxiproxy's HTTP API.

Everything here runs on the event loop thread; the API handlers and in-process callers share it.
Errors are :class:`ApiError` with Toxiproxy's own messages and status codes, so the HTTP layer only
has to serialise them.
"""

from __future__ import annotations

import asyncio
import random
import socket
from typing import Any

from ..safejson import loads as strict_json
from .link import STREAMS, Connection, Side, ToxicSpec, join_host_port, split_host_port
from .toxics import TOXICS


class ApiError(Exception):
    """An error with Toxiproxy's message and HTTP status (``{"error": msg, "status": code}``)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def to_json(self) -> dict[str, Any]:
        return {"error": self.message, "status": self.status}


def bad_body(detail: str) -> ApiError:
    return ApiError(f"bad request body: {detail}", 400)


def missing_field(name: str) -> ApiError:
    return ApiError(f"missing required field: {name}", 400)


PROXY_NOT_FOUND = ("proxy not found", 404)
PROXY_EXISTS = ("proxy already exists", 409)
INVALID_STREAM = ("stream was invalid, can be either upstream or downstream", 400)
INVALID_TOXIC_TYPE = ("invalid toxic type", 400)
TOXIC_EXISTS = ("toxic already exists", 409)
TOXIC_NOT_FOUND = ("toxic not found", 404)


def decode_json(body: bytes, kind: type) -> Any:
    """Decode a request body the way Go's json.Decoder would complain about it."""
    if not body.strip():
        raise bad_body("EOF")
    try:
        # strict: NaN, Infinity and 1e999 are not JSON (Go refuses them too), nor are lone
        # surrogates; nesting is bounded (Python's parser would overflow its stack first)
        value = strict_json(body)
    except ValueError as exc:
        raise bad_body(f"invalid character: {exc}") from None
    if not isinstance(value, kind):
        raise bad_body(f"json: cannot unmarshal {type(value).__name__} into a {kind.__name__}")
    return value


FLOAT32_MAX = 3.4028234663852886e38


def _float32(value: Any) -> float:
    """A toxicity as Go decodes it into a float32: a number, and within float32's range."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad_body("json: cannot unmarshal toxicity into float32")
    if not abs(value) <= FLOAT32_MAX:
        raise bad_body(f"json: cannot unmarshal number {value} into Go struct field toxicity of type float32")
    return float(value)


def _string(obj: dict[str, Any], key: str, default: str = "") -> str:
    value = obj.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise bad_body(f"json: cannot unmarshal {type(value).__name__} into field {key} of type string")
    return value


def _bool(obj: dict[str, Any], key: str, default: bool) -> bool:
    value = obj.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise bad_body(f"json: cannot unmarshal {type(value).__name__} into field {key} of type bool")
    return value


class Proxy:
    """One listener forwarding to one upstream, with its toxic chains."""

    def __init__(self, name: str, listen: str, upstream: str, rng: random.Random) -> None:
        self.name = name
        self.listen = listen or "127.0.0.1:0"  # bind loopback unless told otherwise
        self.upstream = upstream
        self.enabled = False
        self.rng = rng
        self.toxics: dict[str, list[ToxicSpec]] = {stream: [] for stream in STREAMS}
        self.connections: set[Connection] = set()
        self._server: asyncio.AbstractServer | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": [spec.to_json() for spec in self.all_toxics()],
        }

    # -- listening ----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on ``listen``; port 0 picks a port, which ``listen`` then reports (and keeps)."""
        if self._server is not None:
            return
        try:
            host, port = split_host_port(self.listen)
        except ValueError as exc:
            raise ApiError(f"listen tcp: {exc}", 500) from None
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host or "0.0.0.0", port, type=socket.SOCK_STREAM)
            family, type_, proto, _, addr = infos[0]
            sock = socket.socket(family, type_, proto)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(addr)
                sock.listen(512)
                sock.setblocking(False)
            except OSError:
                sock.close()
                raise
        except OSError as exc:
            reason = (exc.strerror or str(exc)).lower()
            raise ApiError(f"listen tcp {self.listen}: bind: {reason}", 500) from None
        self._server = await loop.create_server(lambda: Connection(self).client, sock=sock)
        bound = sock.getsockname()
        self.listen = join_host_port(bound[0], bound[1])
        self.enabled = True

    def stop(self) -> None:
        """Close the listener (connections are refused) and drop every active connection."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for conn in list(self.connections):
            conn.abort()
        self.enabled = False

    # -- toxics ---------------------------------------------------------------------------------------

    def all_toxics(self) -> list[ToxicSpec]:
        return [spec for stream in STREAMS for spec in self.toxics[stream]]

    def find_toxic(self, name: str) -> ToxicSpec | None:
        return next((spec for spec in self.all_toxics() if spec.name == name), None)

    def get_toxic(self, name: str) -> ToxicSpec:
        spec = self.find_toxic(name)
        if spec is None:
            raise ApiError(*TOXIC_NOT_FOUND)
        return spec

    def add_toxic_json(self, obj: dict[str, Any]) -> ToxicSpec:
        """Create a toxic from its JSON object, in ToxicCollection.AddToxicJson's order of checks."""
        stream = _string(obj, "stream", "downstream").lower()
        if stream not in STREAMS:
            raise ApiError(*INVALID_STREAM)
        type_ = _string(obj, "type")
        name = _string(obj, "name") or f"{type_}_{stream}"
        toxicity = _float32(obj.get("toxicity", 1.0))
        cls = TOXICS.get(type_)
        if cls is None:
            raise ApiError(*INVALID_TOXIC_TYPE)
        if self.find_toxic(name) is not None:
            raise ApiError(*TOXIC_EXISTS)
        attrs = obj.get("attributes") or {}
        if not isinstance(attrs, dict):
            raise bad_body("json: cannot unmarshal attributes into an object")
        try:
            toxic = cls.from_attributes(attrs)
        except ValueError as exc:
            raise bad_body(str(exc)) from None
        spec = ToxicSpec(name, type_, stream, float(toxicity), toxic)
        self.add_toxic(spec)
        return spec

    def add_toxic(self, spec: ToxicSpec) -> None:
        self.toxics[spec.stream].append(spec)
        for conn in list(self.connections):
            (conn.up if spec.stream == "upstream" else conn.down).add_toxic(spec, self.rng)

    def update_toxic_json(self, name: str, obj: dict[str, Any]) -> ToxicSpec:
        """Only ``attributes`` and ``toxicity`` change; missing attributes keep their values."""
        spec = self.get_toxic(name)
        attrs = obj.get("attributes") or {}
        if not isinstance(attrs, dict):
            raise bad_body("json: cannot unmarshal attributes into an object")
        toxicity = _float32(obj.get("toxicity", spec.toxicity))
        try:
            toxic = type(spec.toxic).from_attributes(attrs, base=spec.toxic)
        except ValueError as exc:
            raise bad_body(str(exc)) from None
        spec.toxic = toxic
        spec.toxicity = float(toxicity)
        for conn in list(self.connections):
            (conn.up if spec.stream == "upstream" else conn.down).update_toxic(spec)
        return spec

    def remove_toxic(self, name: str) -> None:
        spec = self.get_toxic(name)
        self.toxics[spec.stream].remove(spec)
        for conn in list(self.connections):
            (conn.up if spec.stream == "upstream" else conn.down).remove_toxic(spec)

    def reset_toxics(self) -> None:
        for spec in self.all_toxics():
            self.remove_toxic(spec.name)


class ProxyCollection:
    """All proxies of one server, by name."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self.rng = rng or random.Random()
        self.proxies: dict[str, Proxy] = {}
        self.lock = asyncio.Lock()

    def get(self, name: str) -> Proxy:
        proxy = self.proxies.get(name)
        if proxy is None:
            raise ApiError(*PROXY_NOT_FOUND)
        return proxy

    @staticmethod
    def _fields(obj: dict[str, Any], where: str = "") -> tuple[str, str, str, bool]:
        name, listen, upstream = _string(obj, "name"), _string(obj, "listen"), _string(obj, "upstream")
        enabled = _bool(obj, "enabled", True)
        if not name:
            raise missing_field("name" + where)
        if not upstream:
            raise missing_field("upstream" + where)
        return name, listen, upstream, enabled

    async def create(self, obj: dict[str, Any]) -> Proxy:
        name, listen, upstream, enabled = self._fields(obj)
        async with self.lock:
            if name in self.proxies:
                raise ApiError(*PROXY_EXISTS)
            proxy = Proxy(name, listen, upstream, self.rng)
            if enabled:
                await proxy.start()
            self.proxies[name] = proxy
            return proxy

    async def populate(self, items: list[Any]) -> tuple[list[Proxy], ApiError | None]:
        """Create or replace many proxies. Returns what was applied and the error that stopped it."""
        checked = []
        for i, obj in enumerate(items):
            if not isinstance(obj, dict):
                return [], bad_body(f"json: cannot unmarshal proxy {i + 1}")
            try:
                checked.append(self._fields(obj, f" at proxy {i + 1}"))
            except ApiError as exc:
                return [], exc
        applied: list[Proxy] = []
        async with self.lock:
            for name, listen, upstream, enabled in checked:
                existing = self.proxies.get(name)
                if existing is not None:
                    if existing.listen == listen and existing.upstream == upstream:
                        applied.append(existing)
                        continue
                    existing.stop()
                    del self.proxies[name]
                proxy = Proxy(name, listen, upstream, self.rng)
                try:
                    if enabled:
                        await proxy.start()
                except ApiError as exc:
                    return applied, exc
                self.proxies[name] = proxy
                applied.append(proxy)
        return applied, None

    async def update(self, name: str, obj: dict[str, Any]) -> Proxy:
        """PATCH semantics: missing fields keep their values; a new listen/upstream restarts."""
        async with self.lock:
            proxy = self.get(name)
            listen = _string(obj, "listen", proxy.listen) or proxy.listen
            upstream = _string(obj, "upstream", proxy.upstream) or proxy.upstream
            enabled = _bool(obj, "enabled", proxy.enabled)
            if listen != proxy.listen or upstream != proxy.upstream:
                proxy.stop()
                proxy.listen, proxy.upstream = listen, upstream
            if enabled and not proxy.enabled:
                await proxy.start()
            elif not enabled and proxy.enabled:
                proxy.stop()
            return proxy

    async def delete(self, name: str) -> None:
        async with self.lock:
            proxy = self.get(name)
            proxy.stop()
            del self.proxies[name]

    async def reset(self) -> None:
        """Re-enable every proxy and remove every toxic (``POST /reset``)."""
        async with self.lock:
            for proxy in self.proxies.values():
                await proxy.start()
                proxy.reset_toxics()

    async def clear(self) -> None:
        async with self.lock:
            for proxy in self.proxies.values():
                proxy.stop()
            self.proxies.clear()


__all__ = ["ApiError", "Proxy", "ProxyCollection", "Side", "decode_json"]
