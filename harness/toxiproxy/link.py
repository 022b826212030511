"""One proxied TCP connection: two directions, each a chain of toxic stubs.

Design (Toxiproxy's link.go, reshaped for asyncio):

* Each socket side is a plain :class:`asyncio.Protocol`; ``data_received`` stamps the chunk with
  its arrival time and hands it to the :class:`Direction` that reads from that side.
* With no toxics and nothing queued, a chunk is written straight to the other side from the
  callback: no task hop, no copy, so a pass-through proxy costs microseconds.
* Otherwise chunks queue up and one task per direction feeds each chunk through the chain (a
  snapshot of the stubs, so a toxic added mid-chunk applies from the next chunk). Latency counts
  from the arrival stamp, so a sequential chain still shifts the stream without adding gaps.
* Toxics are added to, updated on and removed from live links (``ToxicStub`` per link); removal
  interrupts a toxic's sleep so it lets its chunk through at once.
* Closing follows Toxiproxy: the end of one direction closes its destination socket; the other
  direction then sees EOF and closes in turn. A reset sets SO_LINGER 0 on both sockets and aborts.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from .toxics import Chunk, Toxic

log = logging.getLogger(__name__)

HIGH_WATER = 4 * 1024 * 1024  # queued bytes before we stop reading the source socket
LOW_WATER = 1024 * 1024
STREAMS = ("upstream", "downstream")


@dataclass
class ToxicSpec:
    """A toxic as the API sees it: the JSON object of ``/proxies/{p}/toxics``."""

    name: str
    type: str
    stream: str
    toxicity: float
    toxic: Toxic

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": self.toxicity,
            "attributes": self.toxic.attributes(),
        }


@dataclass
class _Eof:
    chain: tuple[ToxicStub, ...] | None  # None: the current chain
    start: int = 0


class ToxicStub:
    """One toxic running on one link. Implements the :class:`~.toxics.Stub` protocol."""

    def __init__(self, spec: ToxicSpec, direction: Direction, rng: random.Random) -> None:
        self.spec = spec
        self.direction = direction
        self.rng = rng
        self.state: Any = spec.toxic.new_state()
        self.active = False
        self.removed = False
        self._sleepers: set[asyncio.Future[bool]] = set()
        self._timers: list[asyncio.TimerHandle] = []

    @property
    def toxic(self) -> Toxic:
        return self.spec.toxic

    def start(self) -> None:
        """Roll toxicity (once per link, as Toxiproxy does) and start the toxic if it hit."""
        self.active = self.rng.random() < self.spec.toxicity
        if self.active:
            self.toxic.start(self)

    def stop(self) -> None:
        """Cancel timers and interrupt sleeps (used on update, removal and link end)."""
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        for fut in self._sleepers:
            if not fut.done():
                fut.set_result(False)

    # -- Stub protocol -----------------------------------------------------------------------------

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep(self, seconds: float) -> bool:
        if seconds <= 0:
            return True
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[bool] = loop.create_future()
        handle = loop.call_later(seconds, _resolve, fut, True)
        self._sleepers.add(fut)
        try:
            return await fut
        finally:
            handle.cancel()
            self._sleepers.discard(fut)

    def close(self) -> None:
        self.direction.close_from(self)

    def reset(self) -> None:
        self.direction.conn.reset()

    def call_later(self, seconds: float, callback: Callable[[], None]) -> None:
        self._timers.append(asyncio.get_running_loop().call_later(seconds, callback))


def _resolve(fut: asyncio.Future[bool], value: bool) -> None:
    if not fut.done():
        fut.set_result(value)


class Side(asyncio.Protocol):
    """One socket of a connection (the client's or the upstream's)."""

    def __init__(self, conn: Connection, is_client: bool) -> None:
        self.conn = conn
        self.is_client = is_client
        self.transport: asyncio.Transport | None = None
        self.writable = True
        self.lost = False
        self._drain: asyncio.Future[None] | None = None

    @property
    def reading_dir(self) -> Direction:
        return self.conn.up if self.is_client else self.conn.down

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if self.is_client:
            self.conn.accepted()

    def data_received(self, data: bytes) -> None:
        self.reading_dir.push_data(data)

    def eof_received(self) -> bool:
        self.reading_dir.push_eof()
        return True  # keep our write half open; the other direction closes it

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._wake()
        self.conn.side_lost(self)

    def pause_writing(self) -> None:
        self.writable = False

    def resume_writing(self) -> None:
        self.writable = True
        self._wake()

    def _wake(self) -> None:
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    async def wait_writable(self) -> None:
        while not self.writable and not self.lost:
            self._drain = asyncio.get_running_loop().create_future()
            await self._drain

    def set_linger_zero(self) -> None:
        sock = self.transport.get_extra_info("socket") if self.transport else None
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass


class Direction:
    """Bytes flowing one way (``upstream``: client→server, ``downstream``: server→client)."""

    def __init__(self, conn: Connection, stream: str) -> None:
        self.conn = conn
        self.stream = stream
        self.stubs: list[ToxicStub] = []
        self.queue: deque[Chunk | _Eof] = deque()
        self.queued_bytes = 0
        self.busy = False
        self.closing = False
        self.done = False
        self.task: asyncio.Task[None] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._src_paused = False

    @property
    def src(self) -> Side:
        return self.conn.client if self.stream == "upstream" else self.conn.upstream  # type: ignore[return-value]

    @property
    def dst(self) -> Side:
        return self.conn.upstream if self.stream == "upstream" else self.conn.client  # type: ignore[return-value]

    # -- input (from protocol callbacks) ----------------------------------------------------------

    def push_data(self, data: bytes) -> None:
        if self.done or self.closing:
            return
        if not self.stubs and not self.queue and not self.busy:
            dst = self.dst
            if dst.writable and not dst.lost and dst.transport is not None:
                dst.transport.write(data)  # fast path: a plain proxy
                return
        self._enqueue(Chunk(data, asyncio.get_running_loop().time()))
        self.queued_bytes += len(data)
        if self.queued_bytes > HIGH_WATER and not self._src_paused and self.src.transport:
            self._src_paused = True
            self.src.transport.pause_reading()

    def push_eof(self) -> None:
        if not self.done and not self.closing:
            self._enqueue(_Eof(None))

    def close_from(self, stub: ToxicStub) -> None:
        """A toxic closed the stream: drop pending input, send EOF through the rest of the chain."""
        if self.done or self.closing:
            return
        self.closing = True
        chain = tuple(self.stubs)
        start = chain.index(stub) + 1 if stub in chain else 0
        self.queue.clear()
        self.queued_bytes = 0
        self._resume_src()
        self._enqueue(_Eof(chain, start))

    def _enqueue(self, item: Chunk | _Eof) -> None:
        self.queue.append(item)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _resume_src(self) -> None:
        if self._src_paused and self.src.transport is not None:
            self._src_paused = False
            self.src.transport.resume_reading()

    # -- toxics on a live link --------------------------------------------------------------------

    def add_toxic(self, spec: ToxicSpec, rng: random.Random) -> None:
        stub = ToxicStub(spec, self, rng)
        self.stubs.append(stub)
        if not self.done:
            stub.start()

    def update_toxic(self, spec: ToxicSpec) -> None:
        for stub in self.stubs:
            if stub.spec is spec:
                stub.stop()
                if not self.done:
                    stub.start()

    def remove_toxic(self, spec: ToxicSpec) -> None:
        for stub in list(self.stubs):
            if stub.spec is spec:
                stub.stop()
                if stub.active and not self.done:
                    stub.toxic.cleanup(stub)  # may close_from(stub), so it must still be in the chain
                stub.removed = True
                self.stubs.remove(stub)

    # -- the pump -----------------------------------------------------------------------------------

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while not self.done:
                if not self.queue:
                    self._waiter = loop.create_future()
                    await self._waiter
                    continue
                item = self.queue.popleft()
                if isinstance(item, _Eof):
                    await self._finish(item)
                    return
                self.queued_bytes -= len(item.data)
                if self.queued_bytes <= LOW_WATER:
                    self._resume_src()
                if self.closing:
                    continue
                self.busy = True
                try:
                    await self._feed(tuple(self.stubs), 0, item)
                finally:
                    self.busy = False
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug in a toxic must not leave a hung connection behind
            log.exception("toxiproxy: %s direction failed", self.stream)
            self.conn.abort()

    async def _feed(self, chain: tuple[ToxicStub, ...], i: int, chunk: Chunk) -> None:
        n = len(chain)
        while i < n:
            stub = chain[i]
            if stub.active and not stub.removed:
                await stub.toxic.pipe(stub, chunk, partial(self._feed, chain, i + 1))
                return
            i += 1
        await self._write(chunk.data)

    async def _write(self, data: bytes) -> None:
        dst = self.dst
        if self.done or dst.lost or dst.transport is None or not data:
            return
        dst.transport.write(data)
        if not dst.writable:
            await dst.wait_writable()

    async def _finish(self, eof: _Eof) -> None:
        chain = eof.chain if eof.chain is not None else tuple(self.stubs)
        for stub in chain[eof.start :]:
            if stub.active and not stub.removed:
                await stub.toxic.on_eof(stub)
            if self.done:
                return
        self.end()
        dst = self.dst
        if dst.transport is not None:
            dst.transport.close()  # flushes what is buffered, then FIN

    def end(self) -> None:
        self.done = True
        for stub in self.stubs:
            stub.stop()


class Listener(Protocol):
    """What a connection reads from the proxy that accepted it (``proxy.Proxy`` is one).

    Named here, not imported, so this module never imports the proxy that imports it.
    """

    name: str
    upstream: str
    rng: random.Random
    toxics: dict[str, list[ToxicSpec]]
    connections: set[Connection]


class Connection:
    """A client connection accepted by a proxy, and its upstream connection."""

    def __init__(self, proxy: Listener) -> None:
        self.proxy = proxy
        self.client = Side(self, is_client=True)
        self.upstream: Side | None = None
        self.up = Direction(self, "upstream")
        self.down = Direction(self, "downstream")
        self._connect_task: asyncio.Task[None] | None = None
        self._closed = False

    def accepted(self) -> None:
        assert self.client.transport is not None
        self.client.transport.pause_reading()
        self.proxy.connections.add(self)
        for direction in (self.up, self.down):
            for spec in self.proxy.toxics[direction.stream]:
                direction.add_toxic(spec, self.proxy.rng)
        self._connect_task = asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        host, port = split_host_port(self.proxy.upstream)
        loop = asyncio.get_running_loop()
        try:
            self.upstream = Side(self, is_client=False)
            await loop.create_connection(lambda: self.upstream, host, port)  # type: ignore[arg-type,return-value]
        except (OSError, ValueError) as exc:
            log.info("toxiproxy %s: upstream %s unreachable: %s", self.proxy.name, self.proxy.upstream, exc)
            self.upstream = None
            self.abort()
            return
        if self._closed:
            self.abort()
            return
        self.up.start()
        self.down.start()
        if self.client.transport is not None and not self.client.lost:
            self.client.transport.resume_reading()

    def side_lost(self, side: Side) -> None:
        # Nothing more can be written to this side, and nothing more will be read from it.
        writer = self.down if side.is_client else self.up
        writer.end()
        if writer.task is not None and writer.task is not asyncio.current_task():
            writer.task.cancel()
        if side.is_client or self.upstream is not None:
            side.reading_dir.push_eof()
        if self.client.lost and (self.upstream is None or self.upstream.lost):
            self._forget()
        elif side.is_client and self.upstream is None:
            self.abort()

    def reset(self) -> None:
        """Abort both sockets with SO_LINGER 0 so each peer sees a TCP RST."""
        for side in (self.client, self.upstream):
            if side is not None:
                side.set_linger_zero()
        self.abort()

    def abort(self) -> None:
        """Drop the connection now (proxy disabled, deleted or server stopping)."""
        self._closed = True
        for direction in (self.up, self.down):
            direction.end()
            if direction.task is not None and direction.task is not asyncio.current_task():
                direction.task.cancel()
        if self._connect_task is not None and self._connect_task is not asyncio.current_task():
            self._connect_task.cancel()
        for side in (self.client, self.upstream):
            if side is not None and side.transport is not None:
                side.transport.abort()
        self._forget()

    def _forget(self) -> None:
        self._closed = True
        self.proxy.connections.discard(self)


def split_host_port(address: str) -> tuple[str, int]:
    """Split ``host:port`` / ``[v6]:port`` like Go's net.SplitHostPort."""
    host, sep, port = address.rpartition(":")
    if not sep:
        raise ValueError(f"address {address}: missing port in address")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"address {address}: invalid port") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"address {address}: invalid port")
    return host, number


def join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


__all__ = ["STREAMS", "Connection", "Direction", "ToxicSpec", "ToxicStub"]
