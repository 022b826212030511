# ruff: noqa: E501  (report lines are long f-strings)
"""Stream-stretch and added-latency benchmark for the lane proxy.

What it measures, in one run, on the machine it runs on:

* **Concurrent streams** at ``--tps`` tokens/s (default 1000; 16, 64 and 128 streams of
  ``--seconds`` each, default 2 s) through each *path*:

  - ``direct``        client -> simulator server
  - ``tcp-relay``     client -> minimal asyncio Protocol byte relay -> simulator (the floor any proxy pays)
  - ``lane-proxy``    client -> ``Lane`` with ``HttpUpstream`` -> simulator
  - ``emb-toxiproxy`` client -> embedded Toxiproxy (``harness.toxiproxy``, no toxics) -> simulator,
                      when that module is importable
  - ``toxiproxy``     client -> a real Toxiproxy at ``$TOXIPROXY_URL`` -> simulator, when set

  For every stream: the duration from writing the request to the last byte of the response, and
  the arrival gaps between reads that carry content events. ``stretch`` is
  ``duration / ideal - 1`` with ``ideal = answer_tokens / tps`` (ttft is 0); the table shows its
  median, p99 and max over the streams of a round. The simulator groups tokens into at most
  ``max_events_per_second`` (200) events per stream, so at 1000 tokens/s an event carries 5
  tokens and the ideal **inter-event** gap is 5.0 ms; the gap columns are inter-event gaps
  (divide by 5 for a per-token figure).

* **Small non-streaming requests**: ``--requests`` (default 2000) requests from 32 concurrent
  keep-alive clients against a simulator lane that answers at once; the latency p50/p99 per path
  and the *added* latency over ``direct``.

* **Resident memory** (VmRSS after the run, VmHWM peak) and CPU seconds of the proxy process.

Every server is its own process (simulator, then one proxy process per path), the load generator
is this process: the two cores are shared as they are in a real drill. Everything binds to
127.0.0.1, every wait is bounded, and every child is killed at the end (and exits by itself when
this process goes away: its stdin closes).

Targets (checked at 64 streams): lane-proxy stretch p50 <= 1.0 %, lane-proxy stretch <= 1.5x the
TCP relay's, added latency p50 < 1 ms.

    python benchmarks/bench_streams.py                       # full run (~1.5 min)
    python benchmarks/bench_streams.py --quick               # 16 and 64 streams, 1 s, 500 requests
    python benchmarks/bench_streams.py --streams 64 --seconds 2 --rounds 3 --paths direct,tcp-relay,lane-proxy
    TOXIPROXY_URL=http://127.0.0.1:8474 python benchmarks/bench_streams.py

Adding a column: write ``_serve_<kind>`` (a child that prints ``{"ports": [...]}`` and serves until
stdin closes) and register it in ``PATHS``/``_start_path``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Any

HOST = "127.0.0.1"
CHAT_PATH = "/v1/chat/completions"
CONTENT_MARK = b'"delta":{"content":'  # every content event of the openai-chat simulator carries this
SMALL_CLIENTS = 32
TARGET_STREAMS = 64
TARGET_STRETCH = 0.010  # lane-proxy stretch p50 at 64 streams
TARGET_RATIO = 1.5  # lane-proxy stretch / tcp-relay stretch at 64 streams
TARGET_ADDED_P50 = 0.001  # seconds
STARTUP_TIMEOUT = 20.0


# =============================================================================================
# child processes: each prints one JSON line {"ports": [...]} (or {"url": ...}) then serves
# until its stdin reaches EOF (the parent exited or closed it) or it gets SIGTERM.
# =============================================================================================


def _child_main(kind: str, argv: list[str]) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--targets", default="")
    ap.add_argument("--tps", type=float, default=1000.0)
    ap.add_argument("--answer-tokens", type=int, default=2000)
    ns = ap.parse_args(argv)
    targets = [int(p) for p in ns.targets.split(",") if p]

    async def run() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)

        fd = sys.stdin.fileno()
        os.set_blocking(fd, False)

        def on_stdin() -> None:  # parent gone -> stdin EOF -> stop
            try:
                data = os.read(fd, 4096)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                loop.remove_reader(fd)
                stop.set()

        loop.add_reader(fd, on_stdin)
        server = SERVERS[kind]
        info, closer = await server(targets, ns)
        print(json.dumps(info), flush=True)
        try:
            await stop.wait()
        finally:
            await closer()

    asyncio.run(run())


async def _serve_sim(targets: list[int], ns: argparse.Namespace) -> tuple[dict[str, Any], Any]:
    """Two simulator lanes: one for streams (tps, answer_tokens, ttft 0), one answering at once."""
    from harness.journal import Journal
    from harness.proxy import Lane, SimulatorUpstream
    from harness.simulator import SimSettings, Simulator

    stream = Lane(
        "sim-stream",
        "openai-chat",
        SimulatorUpstream(Simulator(SimSettings(tokens_per_second=ns.tps, answer_tokens=ns.answer_tokens, ttft=0.0))),
        Journal(),
    )
    small = Lane(
        "sim-small",
        "openai-chat",
        SimulatorUpstream(Simulator(SimSettings(tokens_per_second=1e9, answer_tokens=16, ttft=0.0))),
        Journal(),
    )
    await stream.start()
    await small.start()

    async def close() -> None:
        await stream.stop()
        await small.stop()

    return {"ports": [stream.port, small.port]}, close


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


async def _serve_relay(targets: list[int], ns: argparse.Namespace) -> tuple[dict[str, Any], Any]:
    """The floor: a minimal asyncio Protocol relay, one listener per target port."""
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

    for port in targets:
        servers.append(await loop.create_server(factory_for(port), HOST, 0, backlog=512))

    async def close() -> None:
        for s in servers:
            s.close()

    return {"ports": [s.sockets[0].getsockname()[1] for s in servers]}, close


async def _serve_lane(targets: list[int], ns: argparse.Namespace) -> tuple[dict[str, Any], Any]:
    """The lane proxy, no faults, forwarding over HTTP to each target."""
    from harness.journal import Journal
    from harness.proxy import HttpUpstream, Lane

    lanes = [
        Lane(f"proxy{i}", "openai-chat", HttpUpstream(f"http://{HOST}:{p}"), Journal()) for i, p in enumerate(targets)
    ]
    for lane in lanes:
        await lane.start()

    async def close() -> None:
        for lane in lanes:
            await lane.stop()

    return {"ports": [lane.port for lane in lanes]}, close


async def _serve_embedded_toxiproxy(targets: list[int], ns: argparse.Namespace) -> tuple[dict[str, Any], Any]:
    """The embedded Toxiproxy API server; proxies are created through its HTTP API by the parent."""
    from harness.toxiproxy.server import ToxiproxyServer

    server = ToxiproxyServer(seed=1)
    url = await server.start(HOST, 0)
    return {"url": url}, server.stop


SERVERS = {
    "sim": _serve_sim,
    "tcp-relay": _serve_relay,
    "lane-proxy": _serve_lane,
    "emb-toxiproxy": _serve_embedded_toxiproxy,
}


# =============================================================================================
# parent side: child processes
# =============================================================================================


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    info: dict[str, Any]

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                if self.proc.stdin is not None:
                    self.proc.stdin.close()
            except OSError:
                pass
            self.proc.terminate()
            try:
                self.proc.wait(3.0)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(3.0)


def spawn(kind: str, *args: str) -> Child:
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    proc = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--serve", kind, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    )
    try:
        line = _readline_with_timeout(proc, STARTUP_TIMEOUT)
        if not line:
            raise RuntimeError(f"{kind} server exited before it was ready (rc={proc.poll()})")
        info = json.loads(line)
    except BaseException:
        proc.kill()
        proc.wait(3.0)
        raise
    return Child(kind, proc, info)


def _readline_with_timeout(proc: subprocess.Popen[bytes], timeout: float) -> bytes:
    box: list[bytes] = []
    t = threading.Thread(target=lambda: box.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    t.start()
    t.join(timeout)
    if not box:
        raise TimeoutError("server did not start in time")
    return box[0]


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM in KiB, and CPU seconds (user+system) of a process, from /proc."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    out[line.split(":")[0]] = int(line.split()[1])
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        out["cpu_ms"] = int((int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        pass
    return out


def toxiproxy_api(url: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url.rstrip("/") + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


def toxiproxy_create(url: str, targets: list[int]) -> tuple[list[int], list[str]]:
    names, ports = [], []
    tag = uuid.uuid4().hex[:8]
    try:
        for i, port in enumerate(targets):
            name = f"routechaos_bench_{tag}_{i}"
            obj = toxiproxy_api(
                url, "POST", "/proxies", {"name": name, "listen": f"{HOST}:0", "upstream": f"{HOST}:{port}"}
            )
            names.append(name)
            ports.append(int(str(obj["listen"]).rsplit(":", 1)[1]))
    except BaseException:
        toxiproxy_delete(url, names)
        raise
    return ports, names


def toxiproxy_delete(url: str, names: list[str]) -> None:
    for name in names:
        try:
            toxiproxy_api(url, "DELETE", f"/proxies/{name}")
        except OSError:
            pass


# =============================================================================================
# the client: a raw asyncio HTTP/1.1 keep-alive connection that timestamps reads
# =============================================================================================


class ClientConn(asyncio.Protocol):
    """One keep-alive connection; one request at a time. Minimal HTTP/1.1 response parsing
    (Content-Length or chunked), so the load generator costs as little as possible."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.done: asyncio.Future[None] | None = None
        self.closed = asyncio.get_running_loop().create_future()
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers_done = False
        self.chunked = False
        self.length = -1
        self.chunk_left = 0  # bytes left in the current chunk (data + CRLF handled separately)
        self.in_chunk_crlf = False
        self.body_got = 0
        self.content_events = 0
        self.event_times: list[float] = []
        self.t_last = 0.0
        self.t_first = 0.0
        self.carry = b""
        self.tail = b""
        self._complete = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        if self.done is not None and not self.done.done():
            self.done.set_exception(ConnectionError(f"connection lost: {exc}"))

    async def request(self, payload: bytes, timeout: float) -> float:
        """Send ``payload`` (a full request); returns the send time. Await :attr:`done` after."""
        assert self.transport is not None
        self._reset()
        self.done = asyncio.get_running_loop().create_future()
        t0 = time.perf_counter()
        self.transport.write(payload)
        return t0

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        if not self.t_first:
            self.t_first = now
        self.t_last = now
        self.buf += data
        if not self.headers_done:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
            del self.buf[: end + 4]
            self.status = int(head[0].split()[1])
            for line in head[1:]:
                k, _, v = line.partition(":")
                k = k.strip().lower()
                if k == "content-length":
                    self.length = int(v)
                elif k == "transfer-encoding" and "chunked" in v.lower():
                    self.chunked = True
            self.headers_done = True
        body = self._consume()
        if body is None:
            return
        if body:
            marks = (self.carry + body).count(CONTENT_MARK)
            self.carry = body[-(len(CONTENT_MARK) - 1) :]
            self.tail = (self.tail + body)[-32:]
            if marks:
                self.content_events += marks
                self.event_times.append(now)
        if self._complete and self.done is not None and not self.done.done():
            self.done.set_result(None)

    _complete = False

    def _consume(self) -> bytes | None:
        """Decode what is buffered; returns the body bytes decoded now."""
        buf = self.buf
        if not self.chunked:
            if self.length < 0:
                return None
            take = bytes(buf[: self.length - self.body_got])
            del buf[: len(take)]
            self.body_got += len(take)
            self._complete = self.body_got >= self.length
            return take
        out = bytearray()
        self._complete = False
        while True:
            if self.chunk_left > 0:
                take = min(self.chunk_left, len(buf))
                if take == 0:
                    break
                out += buf[:take]
                del buf[:take]
                self.chunk_left -= take
                if self.chunk_left == 0:
                    self.in_chunk_crlf = True
                continue
            if self.in_chunk_crlf:
                if len(buf) < 2:
                    break
                del buf[:2]
                self.in_chunk_crlf = False
                continue
            nl = buf.find(b"\r\n")
            if nl < 0:
                break
            size = int(bytes(buf[:nl]).split(b";")[0], 16)
            if size == 0:
                if len(buf) < nl + 4:  # the last chunk and its empty trailer
                    break
                del buf[: nl + 4]
                self._complete = True
                break
            del buf[: nl + 2]
            self.chunk_left = size
        return bytes(out)


async def open_conn(port: int) -> ClientConn:
    loop = asyncio.get_running_loop()
    _, conn = await asyncio.wait_for(loop.create_connection(ClientConn, HOST, port), 10.0)
    return conn  # type: ignore[return-value]


def chat_request(port: int, i: int, *, stream: bool, max_tokens: int | None = None) -> bytes:
    body: dict[str, Any] = {
        "model": "bench",
        "messages": [{"role": "user", "content": f"benchmark stream {i}"}],
        "stream": stream,
    }
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    raw = json.dumps(body).encode()
    head = (
        f"POST {CHAT_PATH} HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(raw)}\r\nAccept: text/event-stream\r\n\r\n"
    ).encode()
    return head + raw


# =============================================================================================
# measurements
# =============================================================================================


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, round(q / 100 * (len(s) - 1))))
    return s[k]


def median(values: list[float]) -> float:
    return pct(values, 50)


@dataclass
class StreamRound:
    path: str
    streams: int
    stretches: list[float] = field(default_factory=list)
    ttfb: list[float] = field(default_factory=list)  # request written -> first response byte
    gen: list[float] = field(default_factory=list)  # (first -> last byte)/ideal - 1: streaming only
    gaps: list[float] = field(default_factory=list)
    errors: int = 0
    incomplete: int = 0  # streams whose last event was not the terminator (data: [DONE])


async def run_streams(
    path: str, port: int, n: int, seconds: float, tps: float, events_expected: int, stagger: float = 0.0
) -> StreamRound:
    ideal = seconds
    result = StreamRound(path, n)
    conns = await asyncio.gather(*(open_conn(port) for _ in range(n)))
    try:
        # warm each keep-alive connection (and the proxy's upstream pool) with a 1-token stream
        for i, c in enumerate(conns):
            await c.request(chat_request(port, i, stream=True, max_tokens=1), 10)
        await asyncio.wait_for(asyncio.gather(*(c.done for c in conns)), 15.0)  # type: ignore[misc]
        await asyncio.sleep(0.2)
        starts = []
        for i, c in enumerate(conns):
            starts.append(await c.request(chat_request(port, 1000 + i, stream=True), ideal * 3 + 10))
            if stagger > 0:
                await asyncio.sleep(stagger / n)
        done = await asyncio.wait_for(
            asyncio.gather(*(c.done for c in conns), return_exceptions=True),  # type: ignore[misc]
            ideal * 3 + 10,
        )
        for c, t0, d in zip(conns, starts, done, strict=True):
            if isinstance(d, BaseException) or c.status != 200:
                result.errors += 1
                continue
            if not c.tail.rstrip().endswith(b"data: [DONE]"):
                result.incomplete += 1
            result.stretches.append((c.t_last - t0) / ideal - 1.0)
            result.ttfb.append(c.t_first - t0)
            result.gen.append((c.t_last - c.t_first) / ideal - 1.0)
            et = c.event_times
            result.gaps.extend(et[k] - et[k - 1] for k in range(1, len(et)))
    finally:
        for c in conns:
            if c.transport is not None:
                c.transport.close()
    return result


@dataclass
class SmallResult:
    path: str
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    wall: float = 0.0


async def run_small(path: str, port: int, total: int, rate: float | None, clients: int = SMALL_CLIENTS) -> SmallResult:
    """``total`` requests from ``clients`` keep-alive connections: paced at ``rate`` requests/s in
    all (an open-loop schedule, so latency is not queueing behind our own load), or as fast as
    the path answers (``rate`` None: a closed loop, which measures throughput)."""
    res = SmallResult(path)
    conns = await asyncio.gather(*(open_conn(port) for _ in range(clients)))
    payload = chat_request(port, 7, stream=False)
    loop = asyncio.get_running_loop()

    async def worker(idx: int, c: ClientConn, n: int, count: bool, t_base: float) -> None:
        for k in range(n):
            if rate:
                due = t_base + (k * clients + idx) / rate
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            t0 = await c.request(payload, 10)
            try:
                await asyncio.wait_for(asyncio.shield(c.done), 10.0)  # type: ignore[arg-type]
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
        # warm-up, not counted
        await asyncio.wait_for(asyncio.gather(*(worker(i, c, 3, False, loop.time()) for i, c in enumerate(conns))), 60)
        t0 = time.perf_counter()
        t_base = loop.time() + 0.01
        await asyncio.wait_for(
            asyncio.gather(*(worker(i, c, share(total, i), True, t_base) for i, c in enumerate(conns))),
            (total / rate if rate else 0) + 120,
        )
        res.wall = time.perf_counter() - t0
    finally:
        for c in conns:
            if c.transport is not None:
                c.transport.close()
    return res


# =============================================================================================
# orchestration and report
# =============================================================================================


@dataclass
class PathResult:
    path: str
    rounds: dict[int, list[StreamRound]] = field(default_factory=dict)
    small: SmallResult | None = None  # paced: latency
    burst: SmallResult | None = None  # closed loop: throughput
    mem: dict[str, int] = field(default_factory=dict)
    cpu_ms: int | None = None
    skipped: str | None = None


def path_stretch(pr: PathResult, n: int) -> float:
    """Median over rounds of each round's median stretch."""
    rs = pr.rounds.get(n) or []
    return median([median(r.stretches) for r in rs if r.stretches])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--streams", default="16,64,128", help="comma-separated concurrent stream counts (default 16,64,128)"
    )
    ap.add_argument("--seconds", type=float, default=2.0, help="ideal duration of one stream (default 2)")
    ap.add_argument("--tps", type=float, default=1000.0, help="tokens per second per stream (default 1000)")
    ap.add_argument(
        "--stagger",
        type=float,
        default=0.0,
        help="spread stream starts over this many seconds (default 0: all at once)",
    )
    ap.add_argument("--rounds", type=int, default=1, help="rounds per stream count and path; medians are reported")
    ap.add_argument("--requests", type=int, default=2000, help="small non-streaming requests per path (default 2000)")
    ap.add_argument(
        "--small-rate",
        type=float,
        default=640.0,
        help="paced small requests per second, all clients together (default 640)",
    )
    ap.add_argument("--paths", default="", help="subset of paths, comma-separated (default: all available)")
    ap.add_argument("--quick", action="store_true", help="16,64 streams of 1 s, 500 small requests")
    ap.add_argument("--json", metavar="FILE", help="also write the raw summary as JSON")
    ap.add_argument("--serve", help=argparse.SUPPRESS)
    args, rest = ap.parse_known_args(argv)
    if args.serve:
        _child_main(args.serve, rest)
        return 0
    if rest:
        ap.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.quick:
        args.streams, args.seconds, args.requests = "16,64", 1.0, 500
    counts = [int(x) for x in args.streams.split(",") if x]
    if not counts or any(c < 1 or c > 1024 for c in counts):
        ap.error("--streams: counts between 1 and 1024")
    if not (0 <= args.stagger <= 5):
        ap.error("--stagger 0..5")
    if not (1 <= args.small_rate <= 20_000):
        ap.error("--small-rate 1..20000")
    if not (0.1 <= args.seconds <= 30) or not (1 <= args.rounds <= 10) or not (1 <= args.requests <= 100_000):
        ap.error("--seconds 0.1..30, --rounds 1..10, --requests 1..100000")
    return asyncio.run(amain(args, counts))


def _embedded_available() -> str | None:
    try:
        from harness.toxiproxy.server import ToxiproxyServer  # noqa: F401
    except Exception as exc:
        return f"harness.toxiproxy not importable ({type(exc).__name__})"
    return None


async def amain(args: argparse.Namespace, counts: list[int]) -> int:
    tps, seconds = args.tps, args.seconds
    answer_tokens = round(tps * seconds)
    group = max(1, round(tps / 200.0))
    events_expected = 1 + (answer_tokens - 1 + group - 1) // group  # first token alone, then groups
    all_paths = ["direct", "tcp-relay", "lane-proxy", "emb-toxiproxy", "toxiproxy"]
    wanted = [p for p in (args.paths.split(",") if args.paths else all_paths) if p]
    unknown = set(wanted) - set(all_paths)
    if unknown:
        print(f"unknown path(s): {', '.join(sorted(unknown))}; choose from {', '.join(all_paths)}", file=sys.stderr)
        return 2
    results: list[PathResult] = []
    t_run = time.perf_counter()
    sim = spawn("sim", "--tps", str(tps), "--answer-tokens", str(answer_tokens))
    try:
        sim_stream, sim_small = sim.info["ports"]
        for path in wanted:
            pr = PathResult(path)
            results.append(pr)
            child: Child | None = None
            tox_names: list[str] = []
            tox_url = None
            try:
                if path == "direct":
                    ports = [sim_stream, sim_small]
                elif path in ("tcp-relay", "lane-proxy"):
                    child = spawn(path, "--targets", f"{sim_stream},{sim_small}")
                    ports = child.info["ports"]
                elif path == "emb-toxiproxy":
                    why = _embedded_available()
                    if why:
                        pr.skipped = why
                        continue
                    child = spawn(path)
                    tox_url = child.info["url"]
                    ports, tox_names = toxiproxy_create(tox_url, [sim_stream, sim_small])
                else:
                    tox_url = os.environ.get("TOXIPROXY_URL")
                    if not tox_url:
                        pr.skipped = "TOXIPROXY_URL not set"
                        continue
                    ports, tox_names = toxiproxy_create(tox_url, [sim_stream, sim_small])
                cpu0 = proc_status(child.pid).get("cpu_ms", 0) if child else 0
                for n in counts:
                    for _ in range(args.rounds):
                        r = await run_streams(path, ports[0], n, seconds, tps, events_expected, args.stagger)
                        pr.rounds.setdefault(n, []).append(r)
                        print(
                            f"  {path:<14} {n:>4} streams: stretch p50 {median(r.stretches) * 100:6.2f}%  "
                            f"gap p99 {pct(r.gaps, 99) * 1000:5.1f} ms  errors {r.errors}",
                            file=sys.stderr,
                            flush=True,
                        )
                pr.small = await run_small(path, ports[1], args.requests, args.small_rate)
                pr.burst = await run_small(path, ports[1], args.requests, None)
                print(
                    f"  {path:<14} small requests: p50 {median(pr.small.latencies) * 1000:.2f} ms",
                    file=sys.stderr,
                    flush=True,
                )
                if child is not None:
                    st = proc_status(child.pid)
                    pr.mem = {k: v for k, v in st.items() if k.startswith("Vm")}
                    pr.cpu_ms = st.get("cpu_ms", 0) - cpu0
            except Exception as exc:
                pr.skipped = f"failed: {type(exc).__name__}: {exc}"
            finally:
                if tox_url and tox_names:
                    toxiproxy_delete(tox_url, tox_names)
                if child is not None:
                    child.stop()
        sim_stat = proc_status(sim.pid)
    finally:
        sim.stop()
    report(results, counts, args, events_expected, sim_stat, time.perf_counter() - t_run)
    return 0


def report(
    results: list[PathResult],
    counts: list[int],
    args: argparse.Namespace,
    events_expected: int,
    sim_stat: dict[str, int],
    wall: float,
) -> None:
    tps, seconds = args.tps, args.seconds
    group = max(1, round(tps / 200.0))
    ideal_gap = group / tps * 1000
    p = print
    p()
    p(
        f"routechaos stream benchmark: {tps:g} tokens/s, ideal {seconds:g} s per stream (ttft 0, "
        f"{round(tps * seconds)} tokens in ~{events_expected} events of ~{group} tokens), "
        f"{args.rounds} round(s), {os.cpu_count()} CPUs, Python {sys.version.split()[0]}"
    )
    start = "all streams start at once" if not args.stagger else f"stream starts spread over {args.stagger:g} s"
    p(f"stretch = (request written -> last byte)/ideal - 1 per stream (p50/p99/max over streams); {start},")
    p(
        "so stretch includes the start-up burst: ttfb = request written -> first response byte; gap = inter-EVENT arrival gap,"
    )
    p(
        f"ideal {ideal_gap:.1f} ms (an event carries ~{group} tokens: per-token gap = gap/{group}); gen = (first -> last byte)/ideal - 1"
    )
    p()
    hdr = f"{'path':<14} {'streams':>7} {'stretch p50':>11} {'p99':>7} {'max':>7} {'gap p50':>8} {'gap p99':>8} {'ttfb p50':>9} {'ttfb max':>9} {'gen p50':>8} {'err':>4} {'cut':>4}"
    p(hdr)
    p("-" * len(hdr))
    for pr in results:
        if pr.skipped:
            p(f"{pr.path:<14} skipped: {pr.skipped}")
            continue
        for n in counts:
            rs = pr.rounds.get(n, [])
            st = [x for r in rs for x in r.stretches]
            gaps = [x for r in rs for x in r.gaps]
            ttfb = [x for r in rs for x in r.ttfb]
            gen = [x for r in rs for x in r.gen]
            p(
                f"{pr.path:<14} {n:>7} {path_stretch(pr, n) * 100:>10.2f}% {pct(st, 99) * 100:>6.2f}% {max(st, default=float('nan')) * 100:>6.2f}% "
                f"{median(gaps) * 1000:>6.2f}ms {pct(gaps, 99) * 1000:>6.2f}ms {median(ttfb) * 1000:>7.1f}ms {max(ttfb, default=float('nan')) * 1000:>7.1f}ms {median(gen) * 100:>7.2f}% {sum(r.errors for r in rs):>4} {sum(r.incomplete for r in rs):>4}"
            )
    p()
    by = {pr.path: pr for pr in results if not pr.skipped}
    direct = by.get("direct")
    hdr2 = f"{'path':<14} {'small p50':>9} {'p99':>8} {'added p50':>10} {'added p99':>10} {'max req/s':>9} {'(p50)':>8} {'err':>4} {'RSS':>8} {'peak RSS':>9} {'CPU s':>6}"
    p(
        f"small non-streaming requests: {args.requests} per path from {SMALL_CLIENTS} concurrent keep-alive clients, paced at "
        f"{args.small_rate:g} req/s in all (latency); then {args.requests} as fast as possible (max req/s, and its p50 latency);"
    )
    p("RSS after the run, peak RSS and CPU seconds of the proxy process (streams + small requests)")
    p(hdr2)
    p("-" * len(hdr2))
    for pr in results:
        if pr.skipped or pr.small is None:
            continue
        lat = pr.small.latencies
        d50 = median(direct.small.latencies) if direct and direct.small else float("nan")
        d99 = pct(direct.small.latencies, 99) if direct and direct.small else float("nan")
        rss = f"{pr.mem['VmRSS'] / 1024:.1f}MiB" if "VmRSS" in pr.mem else "-"
        hwm = f"{pr.mem['VmHWM'] / 1024:.1f}MiB" if "VmHWM" in pr.mem else "-"
        cpu = f"{pr.cpu_ms / 1000:.1f}" if pr.cpu_ms is not None else "-"
        added50 = "-" if pr.path == "direct" else f"{(median(lat) - d50) * 1000:.3f}ms"
        added99 = "-" if pr.path == "direct" else f"{(pct(lat, 99) - d99) * 1000:.3f}ms"
        b = pr.burst
        rps = len(b.latencies) / b.wall if b and b.wall else float("nan")
        bp50 = f"{median(b.latencies) * 1000:.1f}ms" if b else "-"
        errs = pr.small.errors + (b.errors if b else 0)
        p(
            f"{pr.path:<14} {median(lat) * 1000:>7.3f}ms {pct(lat, 99) * 1000:>6.3f}ms {added50:>10} {added99:>10} {rps:>9.0f} {bp50:>8} {errs:>4} {rss:>8} {hwm:>9} {cpu:>6}"
        )
    if sim_stat:
        p(
            f"(simulator process: RSS {sim_stat.get('VmRSS', 0) / 1024:.1f}MiB, peak {sim_stat.get('VmHWM', 0) / 1024:.1f}MiB, CPU {sim_stat.get('cpu_ms', 0) / 1000:.1f}s over the run)"
        )
    p()
    relay, lane = by.get("tcp-relay"), by.get("lane-proxy")
    p("ratios (same run):")
    for n in counts:
        parts = []
        if lane and relay:
            ls, rs_ = path_stretch(lane, n), path_stretch(relay, n)
            parts.append(
                f"lane-proxy/tcp-relay stretch {ls / rs_:.2f}x"
                if rs_ > 0
                else "lane-proxy/tcp-relay stretch n/a (relay stretch <= 0)"
            )
            parts.append(f"lane-proxy - tcp-relay {(ls - rs_) * 100:+.2f} pp")
        if lane and direct:
            parts.append(f"lane-proxy - direct {(path_stretch(lane, n) - path_stretch(direct, n)) * 100:+.2f} pp")
        if parts:
            p(f"  {n:>4} streams: " + ", ".join(parts))
    p()
    p(f"targets at {TARGET_STREAMS} streams (2-core machine):")
    if lane is None or TARGET_STREAMS not in counts:
        p(f"  n/a (needs lane-proxy and {TARGET_STREAMS} in --streams)")
    else:
        ls = path_stretch(lane, TARGET_STREAMS)
        p(
            f"  {'PASS' if ls <= TARGET_STRETCH else 'MISS'}  lane-proxy stretch p50 {ls * 100:.2f}% <= {TARGET_STRETCH * 100:.1f}%"
        )
        if relay is not None:
            rs_ = path_stretch(relay, TARGET_STREAMS)
            ok = ls <= TARGET_RATIO * rs_
            ratio = f"{ls / rs_:.2f}x" if rs_ > 0 else "n/a"
            p(
                f"  {'PASS' if ok else 'MISS'}  lane-proxy stretch {ratio} the tcp-relay's ({rs_ * 100:.2f}%) <= {TARGET_RATIO}x"
            )
        if direct and direct.small and lane.small:
            added = median(lane.small.latencies) - median(direct.small.latencies)
            p(
                f"  {'PASS' if added < TARGET_ADDED_P50 else 'MISS'}  lane-proxy added latency p50 {added * 1000:.3f} ms < {TARGET_ADDED_P50 * 1000:.0f} ms"
            )
    p(f"\n(total run {wall:.0f} s)")
    if args.json:
        summary = {
            "settings": {
                "tps": tps,
                "seconds": seconds,
                "rounds": args.rounds,
                "requests": args.requests,
                "streams": counts,
            },
            "paths": {
                pr.path: {
                    "skipped": pr.skipped,
                    "stretch_p50": {n: path_stretch(pr, n) for n in pr.rounds},
                    "gap_p99_ms": {n: pct([g for r in pr.rounds[n] for g in r.gaps], 99) * 1000 for n in pr.rounds},
                    "small_p50_ms": median(pr.small.latencies) * 1000 if pr.small else None,
                    "small_p99_ms": pct(pr.small.latencies, 99) * 1000 if pr.small else None,
                    "mem_kib": pr.mem,
                    "cpu_ms": pr.cpu_ms,
                }
                for pr in results
            },
        }
        with open(args.json, "w") as fh:
            json.dump(summary, fh, indent=2)


if __name__ == "__main__":
    raise SystemExit(main())
