# ruff: noqa: E501  (report lines are long f-strings)
"""What a path costs: the lane against direct, a TCP relay and Toxiproxy, measured in one run.

Paths (each hosted by a process of its own, so its CPU is read from that process alone):

* ``direct``       client -> simulator
* ``tcp-relay``    client -> a minimal asyncio byte relay -> simulator (the floor any proxy pays)
* ``toxiproxy``    client -> a real Toxiproxy at ``$TOXIPROXY_URL`` (no toxics) -> simulator;
                   skipped when the variable is not set. Its CPU is read from the process that
                   listens on the API port (or ``$TOXIPROXY_PID``).
* ``lane``         client -> lane (no fault: the path a stream no fault touches) -> simulator
* ``lane-full``    client -> lane with an intervention whose transform passes every event on
                   unchanged (the full event path a fault that acts on events takes) -> simulator
* ``lane-uvloop``  the lane on uvloop (``pip install -e '.[fast]'``); skipped when not installed
* ``emb-toxiproxy`` the embedded Toxiproxy-compatible server (only with ``--paths``)

Tables (``--tables``, default all), each run as rounds with every path inside every round, each
figure a median over rounds with its spread (min–max), each printed with the ratios to direct /
tcp-relay / toxiproxy and the load average before and after:

* ``streams``   stretch and CPU per streamed event, 64 and 128 streams started at once
* ``staggered`` the same with starts spread evenly over 1 s
* ``tool``      tool-call streams (simulator ``tool_steps``) against text streams, 64 at once
* ``small``     added latency p50/p99 of small requests, max requests/s, CPU per request
* ``sizes``     bodies of 1 KB, 100 KB, 1 MB, 8 MB: added latency and CPU per request
* ``conversation`` turn 50 of growing conversations against turn 1 and a fresh request as long
* ``percore``   the streams each path holds at <= 1 % stretch, and per core of the path's CPU
* ``rss``       the lane's RSS over a long load run (5 min; ``--quick``: 30 s)

    python benchmarks/bench_streams.py                 # everything (~25 min on 2 busy cores)
    python benchmarks/bench_streams.py --quick         # 1 s streams, 2 rounds, short sweeps (~6 min)
    python benchmarks/bench_streams.py --tables streams,small --paths direct,tcp-relay,lane
    TOXIPROXY_URL=http://127.0.0.1:8474 python benchmarks/bench_streams.py

Stretch is ``(request written -> last byte) / ideal - 1`` with ``ideal = answer tokens / tps``
(ttft 0); the simulator groups tokens into at most 200 events/s per stream, so at 1000 tokens/s
an event carries 5 tokens. Everything binds to 127.0.0.1; every child is killed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchlib import paths as pathmod
from benchlib import tables
from benchlib.stats import finite, loadavg, machine, median, ratio

TABLES = ["streams", "staggered", "tool", "small", "sizes", "conversation", "percore", "rss"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--streams", default="64,128", help="concurrent stream counts (default 64,128)")
    ap.add_argument("--seconds", type=float, default=2.0, help="ideal duration of one stream (default 2)")
    ap.add_argument("--tps", type=float, default=1000.0, help="tokens per second per stream (default 1000)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds per table (default 3)")
    ap.add_argument("--requests", type=int, default=1000, help="small requests per round (default 1000)")
    ap.add_argument(
        "--small-rate",
        type=float,
        default=200.0,
        help="paced small requests/s, all clients together (default 200: below every path's capacity on a busy 2-core machine)",
    )
    ap.add_argument("--ladder", default="16,32,64,128,256,512", help="stream counts the percore table climbs")
    ap.add_argument("--rss-seconds", type=float, default=300.0, help="length of the rss load run (default 300)")
    ap.add_argument("--paths", default="", help=f"subset of {','.join(pathmod.ALL_PATHS)}")
    ap.add_argument("--tables", default="", help=f"subset of {','.join(TABLES)}")
    ap.add_argument(
        "--journal", choices=["file", "memory"], default="file", help="the lanes' journal (default: a file, as a drill)"
    )
    ap.add_argument(
        "--quick", action="store_true", help="1 s streams, 2 rounds, 300 small requests, short sweeps, 30 s rss run"
    )
    ap.add_argument("--json", metavar="FILE", help="also write every per-round figure as JSON")
    args = ap.parse_args(argv)
    if args.quick:  # shorter defaults; what was given explicitly stays
        given = {a.split("=")[0] for a in (argv if argv is not None else sys.argv[1:]) if a.startswith("--")}
        quick = {"seconds": 1.0, "rounds": 2, "requests": 300, "ladder": "16,32,64,128,256", "rss_seconds": 30.0}
        for k, v in quick.items():
            if "--" + k.replace("_", "-") not in given:
                setattr(args, k, v)
    counts = [int(x) for x in args.streams.split(",") if x]
    wanted = [p for p in (args.paths.split(",") if args.paths else pathmod.DEFAULT_PATHS) if p]
    todo = [t for t in (args.tables.split(",") if args.tables else TABLES) if t]
    bad = (set(wanted) - set(pathmod.ALL_PATHS)) | (set(todo) - set(TABLES))
    if bad:
        ap.error(f"unknown path or table: {', '.join(sorted(bad))}")
    if (
        not counts
        or any(not 1 <= c <= 2048 for c in counts)
        or not 1 <= args.rounds <= 20
        or not 0.2 <= args.seconds <= 30
    ):
        ap.error("--streams 1..2048, --rounds 1..20, --seconds 0.2..30")
    return run(args, counts, wanted, todo)


def run(args: argparse.Namespace, counts: list[int], wanted: list[str], todo: list[str]) -> int:
    t_run = time.perf_counter()
    print(
        f"routechaos path benchmark: {machine()}, Python {sys.version.split()[0]}, lanes journal to {args.journal}; "
        f"the load generator, the simulator and every path share these CPUs"
    )
    bench = pathmod.start(wanted, args.tps, round(args.tps * args.seconds), args.journal)
    results: dict[str, object] = {}
    try:
        for name, why in bench.skipped.items():
            print(f"path {name} skipped: {why}")
        for p in bench.paths:
            if p.note:
                print(f"path {p.name}: {p.note}")
        ps = bench.paths
        if "streams" in todo:
            results["streams"] = asyncio.run(tables.streams_table(ps, counts, 0.0, args))
        if "staggered" in todo:
            results["staggered"] = asyncio.run(tables.streams_table(ps, counts, 1.0, args))
        if "tool" in todo:
            text = results.get("streams") or asyncio.run(tables.streams_table(ps, counts[:1], 0.0, args))
            tool = asyncio.run(tables.streams_table(ps, counts[:1], 0.0, args, tools=True))
            results["tool"] = tool
            n = counts[0]
            print(f"  tool-call / text stream stretch at {n} streams (target: within 10 %, i.e. <= 1.10x):")
            for p in ps:
                a, b = tool[f"{p.name}@{n}"]["stretch"], text[f"{p.name}@{n}"]["stretch"]  # type: ignore[index]
                print(f"    {p.name:<13} {ratio(median(finite(a)), median(finite(b)))}")
        if "small" in todo:
            results["small"] = asyncio.run(tables.small_table(ps, args))
        if "sizes" in todo:
            results["sizes"] = asyncio.run(tables.sizes_table(ps, args))
        if "conversation" in todo:
            results["conversation"] = asyncio.run(tables.conversation_table(ps, args))
        if "percore" in todo:
            ladder = [int(x) for x in args.ladder.split(",") if x]
            results["percore"] = asyncio.run(tables.per_core_table(ps, ladder, args))
        if "rss" in todo:
            from bench_load import rss_table

            lanes = [p for p in ps if p.name.startswith("lane")][:1]
            if lanes:
                results["rss"] = asyncio.run(rss_table(lanes[0], args.rss_seconds, args))
    finally:
        bench.close()
    print(f"\n(total run {time.perf_counter() - t_run:.0f} s; loadavg at the end {loadavg()})")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1, default=str)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
