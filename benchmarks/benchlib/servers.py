"""The processes that host each path of a benchmark (``python -m benchlib.servers KIND ...``).

Each prints one JSON line, ``{"ports": [...]}`` (or ``{"url": ...}``), when it is ready, then serves
until its stdin closes (the benchmark exited or closed it) or SIGTERM. A line ``count`` on stdin
is answered with ``{"attempts": N}``, the attempts its journal holds: the load benchmark counts
attempts on both sides with it.

* ``sim``: the simulator, as lanes answering directly: a stream lane (``--tps``,
  ``--answer-tokens``, ttft 0), a small lane (answers at once), a tool-call stream lane (one tool
  call whose arguments take as many tokens as the text answer).
* ``tcp-relay``: the floor any proxy pays, a minimal asyncio Protocol byte relay.
* ``lane``: the lane proxy forwarding to the simulator, no fault: the path a stream no fault
  touches takes (the pass-through path, where the lane has one).
* ``lane-full``: the same lane with an intervention on every attempt whose stream transform
  passes every event on unchanged: the full event path a fault that acts on events takes.
* ``emb-toxiproxy``: the embedded Toxiproxy-compatible server (proxies made through its API).

``--loop uvloop`` runs the child on uvloop (the ``fast`` extra), when it is installed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

HOST = "127.0.0.1"
Closer = Callable[[], Awaitable[None]]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("kind", choices=sorted(SERVERS))
    ap.add_argument("--targets", default="")
    ap.add_argument("--tps", type=float, default=1000.0)
    ap.add_argument("--answer-tokens", type=int, default=2000)
    ap.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    ap.add_argument("--journal", choices=["file", "memory"], default="file")
    ns = ap.parse_args(argv)
    ns.targets = [int(p) for p in ns.targets.split(",") if p]
    if ns.loop == "uvloop":
        _use_uvloop()
    asyncio.run(_run(ns))


def _use_uvloop() -> None:
    """uvloop as the event loop (the lane's upstream client passes asyncio-only keywords to
    asyncio's own loop alone)."""
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


async def _run(ns: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    state: dict[str, Any] = {}
    fd = sys.stdin.fileno()
    os.set_blocking(fd, False)
    pending = bytearray()

    def on_stdin() -> None:  # parent gone -> stdin EOF -> stop; "count" -> the journal's size
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(fd)
            stop.set()
            return
        pending.extend(data)
        while b"\n" in pending:
            line, _, rest = bytes(pending).partition(b"\n")
            pending[:] = rest
            if line.strip() == b"count":
                journals = state.get("journals", [])
                print(json.dumps({"attempts": sum(len(j) for j in journals)}), flush=True)

    loop.add_reader(fd, on_stdin)
    info, closer = await SERVERS[ns.kind](ns, state)
    print(json.dumps(info), flush=True)
    try:
        await stop.wait()
    finally:
        await closer()


def _journal(ns: argparse.Namespace, state: dict[str, Any]) -> Any:
    """A journal as a drill keeps one: mirrored to a JSONL file (in a temporary directory removed
    at exit), unless ``--journal memory``."""
    from harness.journal import Journal

    path = None
    if ns.journal == "file":
        if "tmp" not in state:
            state["tmp"] = tempfile.mkdtemp(prefix="routechaos-bench-")
        path = os.path.join(state["tmp"], f"journal{len(state.get('journals', []))}.jsonl")
    j = Journal(path)
    state.setdefault("journals", []).append(j)
    return j


def _closer(lanes: list[Any], state: dict[str, Any]) -> Closer:
    async def close() -> None:
        for lane in lanes:
            await lane.stop()
        for j in state.get("journals", []):
            j.close()
        if "tmp" in state:
            shutil.rmtree(state["tmp"], ignore_errors=True)

    return close


async def _serve_sim(ns: argparse.Namespace, state: dict[str, Any]) -> tuple[dict[str, Any], Closer]:
    from harness.journal import Journal
    from harness.proxy import Lane, SimulatorUpstream
    from harness.simulator import SimSettings, Simulator

    settings = {
        "stream": SimSettings(tokens_per_second=ns.tps, answer_tokens=ns.answer_tokens, ttft=0.0),
        "small": SimSettings(tokens_per_second=1e9, answer_tokens=16, ttft=0.0),
        # one tool call whose arguments are as many tokens (4 characters each) as the text answer
        "tool": SimSettings(
            tokens_per_second=ns.tps,
            answer_tokens=16,
            ttft=0.0,
            tool_steps=1,
            tool_arguments_chars=4 * ns.answer_tokens,
        ),
    }
    lanes = [
        Lane(f"sim-{name}", "openai-chat", SimulatorUpstream(Simulator(s)), Journal()) for name, s in settings.items()
    ]
    for lane in lanes:
        await lane.start()
    return {"ports": [lane.port for lane in lanes]}, _closer(lanes, {})


class _RelaySide(asyncio.Protocol):
    """One side of a byte relay: what it reads goes to its peer; backpressure pauses the reader."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: _RelaySide | None = None
        self.pending: list[bytes] = []
        self.eof = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def link(self, peer: _RelaySide) -> None:
        self.peer = peer
        if self.pending and peer.transport is not None:
            peer.transport.write(b"".join(self.pending))
        self.pending.clear()
        if self.eof and peer.transport is not None and peer.transport.can_write_eof():
            peer.transport.write_eof()

    def data_received(self, data: bytes) -> None:
        peer = self.peer
        if peer is not None and peer.transport is not None:
            peer.transport.write(data)
        else:
            self.pending.append(data)

    def eof_received(self) -> bool:
        self.eof = True
        peer = self.peer
        if peer is not None and peer.transport is not None and peer.transport.can_write_eof():
            peer.transport.write_eof()
        return True  # keep our write side open until the peer is done too

    def connection_lost(self, exc: Exception | None) -> None:
        peer = self.peer
        if peer is not None and peer.transport is not None:
            peer.transport.close()
        elif peer is None:
            self.peer = _RelaySide()  # a closed sentinel: a late link closes at once

    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()


async def _serve_relay(ns: argparse.Namespace, state: dict[str, Any]) -> tuple[dict[str, Any], Closer]:
    loop = asyncio.get_running_loop()
    servers = []
    tasks: set[asyncio.Task[Any]] = set()

    def factory_for(port: int) -> Any:
        def factory() -> _RelaySide:
            client = _RelaySide()

            async def connect() -> None:
                try:
                    _, upstream = await loop.create_connection(_RelaySide, HOST, port)
                except OSError:
                    if client.transport is not None:
                        client.transport.close()
                    return
                if client.transport is None or client.transport.is_closing():
                    upstream.transport.close()  # type: ignore[union-attr]
                    return
                upstream.peer = client
                client.link(upstream)

            t = loop.create_task(connect())
            tasks.add(t)
            t.add_done_callback(tasks.discard)
            return client

        return factory

    for port in ns.targets:
        servers.append(await loop.create_server(factory_for(port), HOST, 0, backlog=4096))

    async def close() -> None:
        for s in servers:
            s.close()

    return {"ports": [s.sockets[0].getsockname()[1] for s in servers]}, close


class _Touch:
    """An intervention on every attempt that passes each event batch on unchanged: the lane
    must take its full event path (decode, classify, re-frame) as it does under a fault that
    acts on events, without changing a byte."""

    def __new__(cls) -> Any:
        from harness.proxy.hooks import Intervention

        class Touch(Intervention):
            name = "bench_touch"

            async def transform(self, ctx: Any, events: AsyncIterator[Any]) -> AsyncIterator[Any]:  # type: ignore[override]
                async for batch in events:
                    yield batch

        class Hook:
            def decide(self, ctx: Any) -> Any:
                return Touch()

        return Hook()


async def _serve_lane(
    ns: argparse.Namespace, state: dict[str, Any], faults: Any = None
) -> tuple[dict[str, Any], Closer]:
    from harness.proxy import HttpUpstream, Lane

    journal = _journal(ns, state)  # one journal for the lane's ports, as one drill has one
    lanes = [
        Lane(f"proxy{i}", "openai-chat", HttpUpstream(f"http://{HOST}:{p}"), journal, faults=faults)
        for i, p in enumerate(ns.targets)
    ]
    for lane in lanes:
        await lane.start()
    state["journals"] = [journal]
    return {"ports": [lane.port for lane in lanes]}, _closer(lanes, state)


async def _serve_lane_full(ns: argparse.Namespace, state: dict[str, Any]) -> tuple[dict[str, Any], Closer]:
    return await _serve_lane(ns, state, faults=_Touch())


async def _serve_embedded_toxiproxy(ns: argparse.Namespace, state: dict[str, Any]) -> tuple[dict[str, Any], Closer]:
    from harness.toxiproxy.server import ToxiproxyServer

    server = ToxiproxyServer(seed=1)
    url = await server.start(HOST, 0)
    return {"url": url}, server.stop


SERVERS = {
    "sim": _serve_sim,
    "tcp-relay": _serve_relay,
    "lane": _serve_lane,
    "lane-full": _serve_lane_full,
    "emb-toxiproxy": _serve_embedded_toxiproxy,
}

if __name__ == "__main__":
    main()
