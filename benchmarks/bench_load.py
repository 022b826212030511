# ruff: noqa: E501  (report lines are long f-strings)
"""Load without loss: one lane under many connections and streams, attempts counted on both sides.

One lane (its own process, journal mirrored to a file as a drill keeps it) forwarding to the
simulator (another process) carries, for ``--seconds`` (default 30):

* ``--connections`` (default 1000) keep-alive connections, each sending a small request every
  ``--interval`` seconds (default 5, starts spread evenly);
* ``--streams`` (default 256) concurrent streams at ``--tps`` (default 1000) tokens/s, each
  ``--stream-seconds`` long (default 5) and started again as soon as it ends;
* a probe: one small request every 100 ms from a process of its own, whose latency p50/p99/max
  is the lane's event-loop stall figure (target: max < 50 ms).

Every request the client sent is counted, and after the run the lane's journal is asked how many
attempts it holds: ``lost = sent - journaled`` (0 expected). The lane's RSS is sampled every
second. The load generator, the simulator, the probe and the lane share the machine's CPUs; the
load average before and after is printed.

    python benchmarks/bench_load.py                         # the issue-10 load, 30 s
    python benchmarks/bench_load.py --seconds 300 --connections 200 --streams 64   # 5 min RSS run
    python benchmarks/bench_load.py --quick                 # 10 s, 200 connections, 64 streams
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchlib.client import ClientConn, chat_request, open_conn
from benchlib.procs import Child, rss_mib, spawn
from benchlib.stats import loadavg, machine, median, pct

PROBE_EVERY = 0.1


@dataclass
class LoadResult:
    sent: int = 0
    ok: int = 0
    failed: int = 0
    stream_stretch: list[float] = field(default_factory=list)
    rss: list[tuple[float, float]] = field(default_factory=list)  # (seconds, MiB)
    probe: list[float] = field(default_factory=list)
    probe_errors: int = 0
    journaled: int | None = None
    wall: float = 0.0
    why: Counter[str] = field(default_factory=Counter)  # failures by kind: status, timeout, connection


async def _request(c: ClientConn, payload: bytes, res: LoadResult, timeout: float) -> bool:
    res.sent += 1
    c.request(payload)
    try:
        await asyncio.wait_for(asyncio.shield(c.done), timeout)  # type: ignore[arg-type]
    except (TimeoutError, ConnectionError) as exc:
        res.failed += 1
        res.why["timeout" if isinstance(exc, TimeoutError) else "connection lost"] += 1
        return False
    if c.status == 200:
        res.ok += 1
        return True
    res.failed += 1
    res.why[f"status {c.status}"] += 1
    return True


async def load_run(
    stream_port: int,
    small_port: int,
    lane: Child,
    *,
    seconds: float,
    connections: int,
    interval: float,
    streams: int,
    stream_seconds: float,
) -> LoadResult:
    """The load above against one lane; returns counts, RSS samples and probe latencies."""
    res = LoadResult()
    loop = asyncio.get_running_loop()
    probe = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--probe", str(small_port), "--seconds", str(seconds)],
        stdout=subprocess.PIPE,
    )
    t0 = loop.time()
    deadline = t0 + seconds
    small = chat_request(small_port, 1, stream=False)

    async def keepalive(i: int) -> None:
        try:
            c = await open_conn(small_port, timeout=30)
        except (OSError, TimeoutError):
            res.why["connect failed"] += 1
            return
        try:
            await asyncio.sleep(interval * i / connections)
            while loop.time() < deadline:
                t = loop.time()
                if not await _request(c, small, res, 30):
                    return
                await asyncio.sleep(max(0.0, interval - (loop.time() - t)))
        finally:
            if c.transport is not None:
                c.transport.close()

    async def streamer(i: int) -> None:
        try:
            c = await open_conn(stream_port, timeout=30)
        except (OSError, TimeoutError):
            res.why["connect failed"] += 1
            return
        try:
            await asyncio.sleep(stream_seconds * i / streams)
            k = 0
            while loop.time() < deadline:
                t = time.perf_counter()
                if not await _request(
                    c, chat_request(stream_port, i * 100000 + k, stream=True), res, stream_seconds * 10 + 30
                ):
                    return
                res.stream_stretch.append((c.t_last - t) / stream_seconds - 1.0)
                k += 1
        finally:
            if c.transport is not None:
                c.transport.close()

    async def sample() -> None:
        while loop.time() < deadline + stream_seconds:
            r = rss_mib(lane.pid)
            if r is not None:
                res.rss.append((loop.time() - t0, r))
            await asyncio.sleep(1.0)

    sampler = asyncio.ensure_future(sample())
    await asyncio.gather(*(keepalive(i) for i in range(connections)), *(streamer(i) for i in range(streams)))
    res.wall = loop.time() - t0
    sampler.cancel()
    out, _ = await loop.run_in_executor(None, probe.communicate)
    got = json.loads(out or b"{}")
    res.probe, res.probe_errors = got.get("latencies", []), got.get("errors", 0)
    res.sent += got.get("sent", 0)
    res.ok += len(res.probe)
    res.failed += res.probe_errors
    await asyncio.sleep(1.0)  # the lane journals an attempt when it ends: let the last ones end
    res.journaled = ask_count(lane)
    return res


def ask_count(child: Child) -> int | None:
    assert child.proc.stdin is not None and child.proc.stdout is not None
    child.proc.stdin.write(b"count\n")
    child.proc.stdin.flush()
    line = child.proc.stdout.readline()
    try:
        return int(json.loads(line)["attempts"])
    except (ValueError, KeyError):
        return None


def probe_main(port: int, seconds: float) -> None:
    """A small request every 100 ms on one keep-alive connection; prints the latencies as JSON."""

    async def run() -> dict[str, Any]:
        lat: list[float] = []
        errors = sent = 0
        c = await open_conn(port, timeout=30)
        loop = asyncio.get_running_loop()
        t_next = loop.time()
        end = t_next + seconds
        payload = chat_request(port, 9, stream=False)
        while loop.time() < end:
            t_next += PROBE_EVERY
            sent += 1
            t0 = c.request(payload)
            try:
                await asyncio.wait_for(asyncio.shield(c.done), 30)  # type: ignore[arg-type]
                lat.append(c.t_last - t0)
            except (TimeoutError, ConnectionError):
                errors += 1
                break
            await asyncio.sleep(max(0.0, t_next - loop.time()))
        if c.transport is not None:
            c.transport.close()
        return {"latencies": lat, "errors": errors, "sent": sent}

    print(json.dumps(asyncio.run(run())), flush=True)


def rss_line(res: LoadResult, warmup: float) -> str:
    if not res.rss:
        return "RSS: not readable"
    after = [m for t, m in res.rss if t >= warmup]
    at_warm = after[0] if after else res.rss[-1][1]
    peak = max(m for _, m in res.rss)
    end = res.rss[-1][1]
    return (
        f"lane RSS: start {res.rss[0][1]:.1f} MiB, after warm-up ({warmup:.0f} s) {at_warm:.1f}, end {end:.1f}, peak {peak:.1f} MiB; "
        f"growth after warm-up {max(after, default=at_warm) - at_warm:+.1f} MiB (target: flat within 20 MiB)"
    )


def rss_series(res: LoadResult, points: int = 12) -> str:
    step = max(1, len(res.rss) // points)
    return "  RSS over time (s: MiB): " + ", ".join(f"{t:.0f}: {m:.1f}" for t, m in res.rss[::step])


def report(res: LoadResult, args: argparse.Namespace, load0: str, warmup: float) -> None:
    lost = None if res.journaled is None else res.sent - res.journaled
    print()
    print(
        f"load: 1 lane, {args.connections} keep-alive connections (a small request every {args.interval:g} s each), "
        f"{args.streams} concurrent {args.tps:g} tokens/s streams of {args.stream_seconds:g} s (restarted as they end), "
        f"a probe every {PROBE_EVERY * 1000:.0f} ms, for {args.seconds:g} s"
    )
    print(
        f"attempts: client sent {res.sent}, lane journaled {res.journaled}, lost {lost}"
        f" (0 expected); answered 200 {res.ok}, not ok {res.failed}"
        + (f" ({', '.join(f'{k}: {v}' for k, v in res.why.most_common())})" if res.why else "")
    )
    st = res.stream_stretch
    print(f"streams completed {len(st)}: stretch p50 {median(st) * 100:.2f} %, p99 {pct(st, 99) * 100:.2f} %")
    pr = res.probe
    print(
        f"probe ({len(pr)} requests, {res.probe_errors} errors): latency p50 {median(pr) * 1000:.2f} ms, "
        f"p99 {pct(pr, 99) * 1000:.2f} ms, max {max(pr, default=float('nan')) * 1000:.2f} ms (target: max < 50 ms)"
    )
    print(rss_line(res, warmup))
    print(rss_series(res))
    print(f"{machine()}; loadavg before {load0}, after {loadavg()}")


async def rss_table(path: Any, seconds: float, args: argparse.Namespace) -> dict[str, Any]:
    """bench_streams' ``rss`` table: a long load run through an already started lane path."""
    load0 = loadavg()
    before = ask_count(path.child) or 0
    res = await load_run(
        path.stream,
        path.small,
        path.child,
        seconds=seconds,
        connections=64,
        interval=0.5,
        streams=32,
        stream_seconds=2.0,
    )
    warmup = min(30.0, seconds / 5)
    print()
    print(
        f"lane RSS over a {seconds:g} s load run ({path.name}: 64 connections with a small request every 0.5 s, 32 streams of 2 s restarted as they end)"
    )
    journaled = None if res.journaled is None else res.journaled - before
    print(
        f"attempts: client sent {res.sent}, lane journaled {journaled}, lost {None if journaled is None else res.sent - journaled}"
    )
    print(rss_line(res, warmup))
    print(rss_series(res))
    print(f"loadavg before {load0}, after {loadavg()}")
    return {"rss": res.rss, "sent": res.sent, "journaled": journaled}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--connections", type=int, default=1000)
    ap.add_argument("--interval", type=float, default=5.0, help="seconds between one connection's small requests")
    ap.add_argument("--streams", type=int, default=256)
    ap.add_argument("--stream-seconds", type=float, default=5.0)
    ap.add_argument("--tps", type=float, default=1000.0)
    ap.add_argument("--journal", choices=["file", "memory"], default="file")
    ap.add_argument("--quick", action="store_true", help="10 s, 200 connections, 64 streams")
    ap.add_argument("--probe", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.probe:
        probe_main(args.probe, args.seconds)
        return 0
    if args.quick:
        args.seconds, args.connections, args.streams = 10.0, 200, 64
    if not (1 <= args.seconds <= 3600 and 0 <= args.connections <= 5000 and 0 <= args.streams <= 2048):
        ap.error("--seconds 1..3600, --connections 0..5000, --streams 0..2048")
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 2 * (args.connections + args.streams) + 256
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(need, soft)), hard))
    load0 = loadavg()
    sim = spawn("sim", "--tps", str(args.tps), "--answer-tokens", str(round(args.tps * args.stream_seconds)))
    lane = None
    try:
        lane = spawn("lane", "--targets", ",".join(map(str, sim.info["ports"])), "--journal", args.journal)
        stream_port, small_port = lane.info["ports"][:2]
        res = asyncio.run(
            load_run(
                stream_port,
                small_port,
                lane,
                seconds=args.seconds,
                connections=args.connections,
                interval=args.interval,
                streams=args.streams,
                stream_seconds=args.stream_seconds,
            )
        )
    finally:
        if lane is not None:
            lane.stop()
        sim.stop()
    report(res, args, load0, warmup=min(30.0, args.seconds / 5))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
