"""Bytes the lane keeps per attempt, measured with tracemalloc (not a timing: an allocation count).

Runs one lane in this process (simulator upstream, journal in memory or mirrored to a file as a
drill keeps it), sends ``--attempts`` requests shaped like the OpenAI SDK's (its ~17 headers, a
distinct prompt each, streamed and whole answers alternating, some asking for the same prompt
again as a retry would), and prints the traced memory the process holds afterwards, per
attempt, with the allocation sites that grew most. A warm-up round runs first and is not counted.

    python benchmarks/journal_memory.py                    # 3000 attempts, journal in memory
    python benchmarks/journal_memory.py --journal file --attempts 10000
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import tempfile
import tracemalloc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchlib.client import ClientConn, open_conn
from benchlib.stats import machine

SDK_HEADERS = {
    "Accept": "application/json",
    "Accept-Encoding": "gzip, deflate",
    "Authorization": "Bearer sk-bench-0000000000000000000000000000",
    "Connection": "keep-alive",
    "Content-Type": "application/json",
    "User-Agent": "OpenAI/Python 1.54.4",
    "X-Stainless-Arch": "x64",
    "X-Stainless-Async": "async:asyncio",
    "X-Stainless-Lang": "python",
    "X-Stainless-Os": "Linux",
    "X-Stainless-Package-Version": "1.54.4",
    "X-Stainless-Raw-Response": "true",
    "X-Stainless-Runtime": "CPython",
    "X-Stainless-Runtime-Version": "3.11.7",
    "X-Stainless-Read-Timeout": "600",
}


def request(port: int, i: int) -> bytes:
    import json

    prompt = f"task {i // 2}: summarise the benchmark run"  # every prompt twice: a retry's attempt
    body = json.dumps(
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}], "stream": bool(i % 2)}
    ).encode()
    head = f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in SDK_HEADERS.items())
    head += f"X-Stainless-Retry-Count: {i % 2}\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


async def drive(port: int, start: int, n: int, clients: int = 8) -> None:
    conns: list[ClientConn] = [await open_conn(port) for _ in range(clients)]

    async def worker(k: int) -> None:
        c = conns[k]
        for i in range(start + k, start + n, clients):
            c.request(request(port, i))
            await asyncio.wait_for(c.done, 30)  # type: ignore[arg-type]

    await asyncio.gather(*(worker(k) for k in range(clients)))
    for c in conns:
        if c.transport is not None:
            c.transport.close()


async def main(args: argparse.Namespace) -> None:
    from harness.journal import Journal
    from harness.proxy import Lane, SimulatorUpstream
    from harness.simulator import SimSettings, Simulator

    tmp = tempfile.mkdtemp(prefix="routechaos-mem-")
    journal = Journal(os.path.join(tmp, "journal.jsonl") if args.journal == "file" else None)
    sim = Simulator(SimSettings(tokens_per_second=1e6, answer_tokens=64, ttft=0.0, max_events_per_second=0))
    lane = Lane("ultraspeed", "openai-chat", SimulatorUpstream(sim), journal)
    await lane.start()
    try:
        await drive(lane.port, 0, 400)  # warm-up: pools, caches, interned names
        gc.collect()
        tracemalloc.start(1)
        before = tracemalloc.take_snapshot()
        base = tracemalloc.get_traced_memory()[0]
        await drive(lane.port, 400, args.attempts)
        await asyncio.sleep(0.2)
        gc.collect()
        after = tracemalloc.take_snapshot()
        grown = tracemalloc.get_traced_memory()[0] - base
        tracemalloc.stop()
        n = len(journal) - 400
    finally:
        await lane.stop()
        journal.close()
    print(f"journal_memory: {machine()}, journal {args.journal}, {n} attempts counted (after a 400-attempt warm-up)")
    print(f"traced memory held after them: {grown / 1024:.0f} KiB = {grown / max(n, 1):.0f} bytes per attempt")
    print("allocation sites that grew most (bytes per attempt):")
    for stat in after.compare_to(before, "lineno")[: args.top]:
        frame = stat.traceback[0]
        where = f"{os.path.relpath(frame.filename)}:{frame.lineno}"
        print(f"  {stat.size_diff / max(n, 1):8.0f}  {where}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--attempts", type=int, default=3000)
    ap.add_argument("--journal", choices=["memory", "file"], default="memory")
    ap.add_argument("--top", type=int, default=15)
    asyncio.run(main(ap.parse_args()))
