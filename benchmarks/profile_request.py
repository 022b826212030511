# ruff: noqa: E501  (report lines are long f-strings)
"""Lane CPU per small request and per streamed event, measured inside the lane's own process.

Every server is its own process: a simulator process (one lane answering small requests at once,
one streaming at ``--tps``), and a forwarding lane process in front of it (``HttpUpstream``, no
faults), started once on the pass-through path and once with ``ROUTECHAOS_FULL_PATH=1`` (the full
event path). Each lane process reports its own CPU time (``getrusage``: user + system, to the
microsecond) and the events its journal counted, on request over its stdin; this process is the
load generator (raw keep-alive sockets, no HTTP library).

* **per request**: ``--requests`` small non-streaming chat requests per round from ``--clients``
  concurrent keep-alive connections, each with its own prompt; lane CPU per request, for the
  forwarding lane (the ``lane-proxy`` path of ``bench_streams.py``) and for the simulator's lane
  (a lane answering from the simulator, no upstream socket).
* **per event** (``--streams`` > 0): that many concurrent streams through each forwarding lane;
  lane CPU over the events its journal counted (stream set-up included).

Medians over ``--rounds`` rounds, with min-max spread; ``/proc/loadavg`` before and after. This
script is for finding and checking the lane's per-request and per-event costs; the benchmark
tables with Toxiproxy beside the lane are ``bench_streams.py``'s.

    python benchmarks/profile_request.py                        # 5 rounds of 2000 requests, 32 streams
    python benchmarks/profile_request.py --requests 5000 --rounds 7 --streams 0
    python benchmarks/profile_request.py --profile lane          # cProfile of the forwarding lane, top 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

HOST = "127.0.0.1"
PATH = "/v1/chat/completions"


# -- child processes ------------------------------------------------------------------------------


def _cpu() -> tuple[float, float]:
    """User and system CPU seconds of this process."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime


async def _serve(kind: str, ns: argparse.Namespace) -> None:
    from harness.journal import Journal
    from harness.proxy import HttpUpstream, Lane, SimulatorUpstream
    from harness.simulator import SimSettings, Simulator

    journal = Journal()
    if kind == "sim":
        lanes = [
            Lane("small", "openai-chat", SimulatorUpstream(Simulator(SimSettings(tokens_per_second=1e9, answer_tokens=16, ttft=0.0))), journal),
            Lane("stream", "openai-chat", SimulatorUpstream(Simulator(SimSettings(tokens_per_second=ns.tps, answer_tokens=ns.answer_tokens, ttft=0.0))), journal),
        ]
    else:
        lanes = [Lane(f"proxy{p}", "openai-chat", HttpUpstream(f"http://{HOST}:{p}"), journal) for p in ns.targets]
    for lane in lanes:
        await lane.start()
    prof = None
    if ns.cprofile:
        import cProfile

        prof = cProfile.Profile()
    print(json.dumps({"ports": [lane.port for lane in lanes]}), flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        cmd = line.decode().strip()
        if cmd == "cpu":  # nothing else in this answer: its own cost must stay out of the window
            user, system = _cpu()
            print(json.dumps({"cpu": user + system, "user": user}), flush=True)
        elif cmd == "events":  # counting reads every attempt: asked outside the measured window
            print(json.dumps({"events": sum(a.events for a in journal.attempts())}), flush=True)
        elif cmd == "prof-on" and prof is not None:
            prof.enable()
            print("{}", flush=True)
        elif cmd == "prof-off" and prof is not None:
            prof.disable()
            import pstats

            st = pstats.Stats(prof, stream=sys.stderr)
            st.sort_stats("tottime").print_stats(30)
            st.sort_stats("cumulative").print_stats("harness", 40)
            print("{}", flush=True)
    for lane in lanes:
        await lane.stop()


class Child:
    """A server process; ``ask("cpu")`` returns its CPU seconds, ``ask("events")`` the events
    its journal counted."""

    def __init__(self, kind: str, *args: str, env: dict[str, str] | None = None, profile: bool = False) -> None:
        cmd = [sys.executable, __file__, "--serve", kind, *args] + (["--cprofile"] if profile else [])
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env={**os.environ, **(env or {})}, text=True
        )
        assert self.proc.stdout is not None
        self.ports: list[int] = json.loads(self.proc.stdout.readline())["ports"]

    def ask(self, cmd: str) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# -- load ------------------------------------------------------------------------------------------


def _request(i: int, stream: bool) -> bytes:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"Tell me about lane {i}."}]}
    if stream:
        body["stream"] = True
    data = json.dumps(body).encode()
    conn = "close" if stream else "keep-alive"
    head = f"POST {PATH} HTTP/1.1\r\nHost: lane\r\nContent-Type: application/json\r\nAuthorization: Bearer sk-test\r\nConnection: {conn}\r\nContent-Length: {len(data)}\r\n\r\n"
    return head.encode() + data


async def _small(port: int, n: int, clients: int, start: int) -> None:
    """``n`` requests over ``clients`` keep-alive connections (Content-Length responses)."""
    counter = iter(range(start, start + n))

    async def one_client() -> None:
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            for i in counter:
                writer.write(_request(i, False))
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(h.split(b":")[1]) for h in head.lower().split(b"\r\n") if h.startswith(b"content-length"))
                await reader.readexactly(length)
        finally:
            writer.close()

    await asyncio.wait_for(asyncio.gather(*(one_client() for _ in range(clients))), 300)


async def _streams(port: int, n: int, start: int) -> None:
    async def one(i: int) -> None:
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(_request(i, True))
        while await reader.read(65536):
            pass
        writer.close()

    await asyncio.wait_for(asyncio.gather(*(one(start + i) for i in range(n))), 300)


def _spread(xs: list[float]) -> str:
    return f"{statistics.median(xs):7.1f} µs  (min {min(xs):.1f}, max {max(xs):.1f}, {len(xs)} rounds)"


def _loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "n/a"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=2000, help="small requests per round (default 2000)")
    ap.add_argument("--clients", type=int, default=8, help="concurrent keep-alive connections (default 8)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--streams", type=int, default=32, help="concurrent streams per round (0: skip the per-event part)")
    ap.add_argument("--tps", type=float, default=1000.0)
    ap.add_argument("--answer-tokens", type=int, default=1000)
    ap.add_argument("--profile", choices=["lane", "sim", "lane-stream"], help="print a cProfile of one round of small requests")
    ap.add_argument("--serve", help=argparse.SUPPRESS)
    ap.add_argument("--targets", default="", help=argparse.SUPPRESS)
    ap.add_argument("--cprofile", action="store_true", help=argparse.SUPPRESS)
    ns = ap.parse_args(argv)
    if ns.serve:
        ns.targets = [int(p) for p in ns.targets.split(",") if p]
        asyncio.run(_serve(ns.serve, ns))
        return 0

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    load0 = _loadavg()
    sim = Child("sim", "--tps", str(ns.tps), "--answer-tokens", str(ns.answer_tokens), profile=ns.profile == "sim")
    small_port, stream_port = sim.ports
    targets = f"{small_port},{stream_port}"
    fast = Child("lane", "--targets", targets, profile=ns.profile in ("lane", "lane-stream"))
    full = Child("lane", "--targets", targets, env={"ROUTECHAOS_FULL_PATH": "1"}) if ns.streams else None
    t0 = time.monotonic()
    try:
        if ns.profile == "lane-stream":
            fast.ask("prof-on")
            asyncio.run(_streams(fast.ports[1], ns.streams, 0))
            fast.ask("prof-off")
            return 0
        if ns.profile:
            who = fast if ns.profile == "lane" else sim
            port = fast.ports[0] if ns.profile == "lane" else small_port
            asyncio.run(_small(port, 200, ns.clients, 0))  # warm-up
            who.ask("prof-on")
            asyncio.run(_small(port, ns.requests, ns.clients, 1000))
            who.ask("prof-off")
            return 0
        per_req: dict[str, list[float]] = {"forwarding lane": [], "simulator lane": []}
        per_event: dict[str, list[float]] = {"pass-through": [], "full path": []}
        user_req: dict[str, list[float]] = {k: [] for k in per_req}
        user_event: dict[str, list[float]] = {k: [] for k in per_event}
        k = 0
        for port in (fast.ports[0], small_port):
            asyncio.run(_small(port, 300, ns.clients, k))  # warm-up: connections, caches, first templates
            k += 300
        for _ in range(ns.rounds):
            for name, child, port in (("forwarding lane", fast, fast.ports[0]), ("simulator lane", sim, small_port)):
                a = child.ask("cpu")
                asyncio.run(_small(port, ns.requests, ns.clients, k))
                k += ns.requests
                b = child.ask("cpu")
                per_req[name].append((b["cpu"] - a["cpu"]) / ns.requests * 1e6)
                user_req[name].append((b["user"] - a["user"]) / ns.requests * 1e6)
            if full is not None:
                for name, child in (("pass-through", fast), ("full path", full)):
                    e0 = child.ask("events")["events"]
                    a = child.ask("cpu")
                    asyncio.run(_streams(child.ports[1], ns.streams, k))
                    k += ns.streams
                    b = child.ask("cpu")
                    events = child.ask("events")["events"] - e0
                    per_event[name].append((b["cpu"] - a["cpu"]) / max(1, events) * 1e6)
                    user_event[name].append((b["user"] - a["user"]) / max(1, events) * 1e6)
    finally:
        for c in (fast, full, sim):
            if c is not None:
                c.close()
    print(f"lane CPU (getrusage of the lane's process: user + system; user alone is the Python side), {ns.rounds} rounds, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    print(f"loadavg before {load0}, after {_loadavg()}; run {time.monotonic() - t0:.0f} s")
    print(f"per small request ({ns.requests} per round, {ns.clients} keep-alive clients, 16-token answers):")
    for name, xs in per_req.items():
        print(f"  {name:16s} {_spread(xs)}   user only {statistics.median(user_req[name]):.1f} µs")
        print(f"  {'':16s} by round: {' '.join(f'{x:.0f}' for x in xs)}")
    if full is not None:
        print(f"per streamed event ({ns.streams} concurrent streams of {ns.answer_tokens} tokens at {ns.tps:g} tokens/s, set-up included):")
        for name, xs in per_event.items():
            print(f"  {name:16s} {_spread(xs)}   user only {statistics.median(user_event[name]):.1f} µs")
        med = {k: statistics.median(v) for k, v in per_event.items()}
        umed = {k: statistics.median(v) for k, v in user_event.items()}
        print(
            f"  full path / pass-through: {med['full path'] / med['pass-through']:.2f}x "
            f"(user CPU {umed['full path'] / umed['pass-through']:.2f}x), same run"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
