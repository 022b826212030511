"""Measurements over one path: concurrent streams, small requests (paced and closed-loop), and
sequences of requests of a given body; each returns what the client saw, and the CPU the path's
process spent meanwhile when its pid is known (``/proc/<pid>/stat``)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from .client import ClientConn, ToolConn, chat_request, open_conn
from .procs import cpu_seconds


@dataclass
class StreamRound:
    streams: int
    stretches: list[float] = field(default_factory=list)  # (request written -> last byte)/ideal - 1
    ttfb: list[float] = field(default_factory=list)
    gaps: list[float] = field(default_factory=list)  # inter-event arrival gaps
    events: int = 0  # content events the client counted
    errors: int = 0
    incomplete: int = 0  # streams whose last event was not the terminator
    cpu: float | None = None  # path process CPU seconds during the round

    @property
    def cpu_per_event(self) -> float | None:
        return self.cpu / self.events if self.cpu is not None and self.events else None


async def run_streams(
    port: int, n: int, seconds: float, *, stagger: float = 0.0, tools: bool = False, pid: int | None = None
) -> StreamRound:
    """``n`` streams of ``seconds`` each on ``n`` warm keep-alive connections, started at once
    (``stagger`` 0) or spread evenly over ``stagger`` seconds."""
    result = StreamRound(n)
    cls = ToolConn if tools else ClientConn
    conns = await asyncio.gather(*(open_conn(port, cls) for _ in range(n)))
    try:
        # warm each connection (and the path's upstream pool) with a 1-token stream
        for i, c in enumerate(conns):
            c.request(chat_request(port, i, stream=True, max_tokens=1))
        await asyncio.wait_for(asyncio.gather(*(c.done for c in conns)), 30.0)  # type: ignore[misc]
        await asyncio.sleep(0.2)
        cpu0 = cpu_seconds(pid)
        starts = []
        t_base = time.perf_counter()
        for i, c in enumerate(conns):
            if stagger > 0:
                delay = t_base + stagger * i / n - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            starts.append(c.request(chat_request(port, 1000 + i, stream=True, tools=tools)))
        done = await asyncio.wait_for(
            asyncio.gather(*(c.done for c in conns), return_exceptions=True),  # type: ignore[misc]
            seconds * 5 + stagger + 20,
        )
        cpu1 = cpu_seconds(pid)
        if cpu0 is not None and cpu1 is not None:
            result.cpu = cpu1 - cpu0
        for c, t0, d in zip(conns, starts, done, strict=True):
            if isinstance(d, BaseException) or c.status != 200:
                result.errors += 1
                continue
            if not c.tail.rstrip().endswith(b"data: [DONE]"):
                result.incomplete += 1
            result.stretches.append((c.t_last - t0) / seconds - 1.0)
            result.ttfb.append(c.t_first - t0)
            result.events += c.content_events
            et = c.event_times
            result.gaps.extend(et[k] - et[k - 1] for k in range(1, len(et)))
    finally:
        for c in conns:
            if c.transport is not None:
                c.transport.close()
    return result


@dataclass
class SmallResult:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    wall: float = 0.0
    cpu: float | None = None
    count: int = 0

    @property
    def cpu_per_request(self) -> float | None:
        return self.cpu / self.count if self.cpu is not None and self.count else None


async def run_small(
    port: int,
    total: int,
    rate: float | None,
    *,
    clients: int = 32,
    pid: int | None = None,
    payload: bytes | None = None,
) -> SmallResult:
    """``total`` requests from ``clients`` keep-alive connections: paced at ``rate`` requests/s
    in all (open loop: latency is not queueing behind our own load) or as fast as the path
    answers (``rate`` None: closed loop, for throughput)."""
    res = SmallResult()
    conns = await asyncio.gather(*(open_conn(port) for _ in range(clients)))
    payload = payload or chat_request(port, 7, stream=False)
    loop = asyncio.get_running_loop()

    async def worker(idx: int, c: ClientConn, n: int, count: bool, t_base: float) -> None:
        for k in range(n):
            if rate:
                delay = t_base + (k * clients + idx) / rate - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            t0 = c.request(payload)
            try:
                await asyncio.wait_for(asyncio.shield(c.done), 30.0)  # type: ignore[arg-type]
            except (TimeoutError, ConnectionError):
                res.errors += 1
                return
            if c.status != 200:
                res.errors += 1
            elif count:
                res.latencies.append(c.t_last - t0)

    def share(n: int, i: int) -> int:
        return n // clients + (1 if i < n % clients else 0)

    try:
        await asyncio.wait_for(asyncio.gather(*(worker(i, c, 3, False, loop.time()) for i, c in enumerate(conns))), 60)
        cpu0 = cpu_seconds(pid)
        t0 = time.perf_counter()
        t_base = loop.time() + 0.01
        await asyncio.wait_for(
            asyncio.gather(*(worker(i, c, share(total, i), True, t_base) for i, c in enumerate(conns))),
            (total / rate if rate else 0) + 180,
        )
        res.wall = time.perf_counter() - t0
        cpu1 = cpu_seconds(pid)
        res.count = total
        if cpu0 is not None and cpu1 is not None:
            res.cpu = cpu1 - cpu0
    finally:
        for c in conns:
            if c.transport is not None:
                c.transport.close()
    return res


async def run_sequence(port: int, payloads: list[bytes], *, pid: int | None = None) -> SmallResult:
    """``payloads`` one after another on one warm keep-alive connection: latency per request
    and the path's CPU over them all."""
    res = SmallResult()
    c = await open_conn(port)
    try:
        c.request(chat_request(port, 0, stream=False))
        await asyncio.wait_for(c.done, 30.0)  # type: ignore[arg-type]
        cpu0 = cpu_seconds(pid)
        t_all = time.perf_counter()
        for p in payloads:
            t0 = c.request(p)
            try:
                await asyncio.wait_for(asyncio.shield(c.done), 60.0)  # type: ignore[arg-type]
            except (TimeoutError, ConnectionError):
                res.errors += 1
                break
            if c.status != 200:
                res.errors += 1
            res.latencies.append(c.t_last - t0)
        res.wall = time.perf_counter() - t_all
        cpu1 = cpu_seconds(pid)
        res.count = len(res.latencies)
        if cpu0 is not None and cpu1 is not None:
            res.cpu = cpu1 - cpu0
    finally:
        if c.transport is not None:
            c.transport.close()
    return res
