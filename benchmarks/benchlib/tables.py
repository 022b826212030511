# ruff: noqa: E501  (report lines are long f-strings)
"""The tables of ``bench_streams.py``: each runs its rounds with every path inside a round (so a
change in the machine's load falls on every path alike), then prints medians over rounds with
their spread (min–max), the ratios to direct / tcp-relay / toxiproxy, and the load average
before and after."""

from __future__ import annotations

import asyncio
import sys
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from .client import chat_request, conversation_request
from .measure import run_sequence, run_small, run_streams
from .paths import Path
from .stats import finite, loadavg, median, pct, ratio, spread

Per = dict[str, dict[str, list[float]]]  # path -> figure -> one value per round
REFS = ("direct", "tcp-relay", "toxiproxy")
US = 1e6


def progress(msg: str) -> None:
    print("  " + msg, file=sys.stderr, flush=True)


def _table(title: str, load0: str, header: str, rows: list[str], notes: list[str]) -> None:
    print()
    print(title)
    print(header)
    print("-" * len(header))
    for r in rows:
        print(r)
    for n in notes:
        print(n)
    print(f"loadavg before {load0}, after {loadavg()}")


def _ref_ratios(per: Per, key: str, paths: list[Path], label: str, refs: tuple[str, ...] = REFS) -> list[str]:
    out = []
    for p in paths:
        if p.name in refs or p.name == "direct" or key not in per.get(p.name, {}):
            continue
        parts = []
        for ref in refs:
            if ref in per and key in per[ref] and finite(per[ref][key]):
                parts.append(f"/{ref} {ratio(median(finite(per[p.name][key])), median(finite(per[ref][key])))}")
        if parts:
            out.append(f"  {label} {p.name}: " + ", ".join(parts))
    return out


# -- streams -------------------------------------------------------------------------------------


async def streams_table(paths: list[Path], counts: list[int], stagger: float, args: Any, *, tools: bool = False) -> Per:
    load0 = loadavg()
    per: Per = defaultdict(lambda: defaultdict(list))
    for n in counts:
        for r in range(args.rounds):
            for p in paths:
                port = p.tool if tools else p.stream
                res = await run_streams(port, n, args.seconds, stagger=stagger, tools=tools, pid=p.pid)
                d = per[f"{p.name}@{n}"]
                d["stretch"].append(median(res.stretches))
                d["stretch_p99"].append(pct(res.stretches, 99))
                d["gap_p99"].append(pct(res.gaps, 99))
                d["ttfb_max"].append(max(res.ttfb, default=float("nan")))
                d["cpu_event"].append(res.cpu_per_event if res.cpu_per_event is not None else float("nan"))
                d["errors"].append(res.errors + res.incomplete)
                progress(
                    f"{'tool ' if tools else ''}streams {n:>4} {'staggered' if stagger else 'at once  '} round {r + 1} "
                    f"{p.name:<13} stretch {median(res.stretches) * 100:6.2f}%  errors {res.errors} cut {res.incomplete}"
                )
    what = "tool-call streams (one call, arguments as long as the text answer)" if tools else "text streams"
    start = f"starts spread evenly over {stagger:g} s" if stagger else "all started at once"
    header = f"{'path':<13} {'streams':>7} {'stretch p50':>22} {'stretch p99':>20} {'gap p99 ms':>18} {'ttfb max ms':>20} {'CPU/event µs':>20} {'err':>4}"
    rows = []
    notes = []
    for n in counts:
        for p in paths:
            d = per[f"{p.name}@{n}"]
            rows.append(
                f"{p.name:<13} {n:>7} {spread(d['stretch'], 100, unit='%'):>22} {spread(d['stretch_p99'], 100, unit='%'):>20} "
                f"{spread(d['gap_p99'], 1000, '{:.1f}'):>18} {spread(d['ttfb_max'], 1000, '{:.1f}'):>20} "
                f"{spread(d['cpu_event'], US, '{:.1f}') if p.pid else '-':>20} {int(sum(d['errors'])):>4}"
            )
        flat = {p.name: per[f"{p.name}@{n}"] for p in paths}
        notes += [f"  ratios at {n} streams:"]
        notes += _ref_ratios(flat, "stretch", paths, "stretch")
        notes += _ref_ratios(flat, "cpu_event", paths, "CPU/event", ("tcp-relay", "toxiproxy"))
        for p in paths:
            if p.name != "direct" and "direct" in flat:
                diff = median(finite(flat[p.name]["stretch"])) - median(finite(flat["direct"]["stretch"]))
                notes.append(f"  stretch {p.name} - direct: {diff * 100:+.2f} pp")
    _table(
        f"{what} at {args.tps:g} tokens/s, {args.seconds:g} s each, {start}; {args.rounds} round(s), median (min–max) over rounds"
        f"\nstretch = (request written -> last byte)/ideal - 1 per stream, its median/p99 over the streams of a round;"
        f" CPU/event = the path process's CPU / content events delivered",
        load0,
        header,
        rows,
        notes,
    )
    return per


# -- small requests ------------------------------------------------------------------------------


async def small_table(paths: list[Path], args: Any) -> Per:
    load0 = loadavg()
    per: Per = defaultdict(lambda: defaultdict(list))
    for r in range(args.rounds):
        direct_p50 = direct_p99 = None
        for p in paths:
            paced = await run_small(p.small, args.requests, args.small_rate, pid=p.pid)
            burst = await run_small(p.small, args.requests, None, pid=p.pid)
            d = per[p.name]
            p50, p99 = median(paced.latencies), pct(paced.latencies, 99)
            d["p50"].append(p50)
            d["p99"].append(p99)
            if p.name == "direct":
                direct_p50, direct_p99 = p50, p99
            if direct_p50 is not None and p.name != "direct":
                d["added_p50"].append(p50 - direct_p50)
                d["added_p99"].append(p99 - direct_p99)
            d["rps"].append(len(burst.latencies) / burst.wall if burst.wall else float("nan"))
            if paced.cpu is not None and burst.cpu is not None:
                d["cpu_req"].append((paced.cpu + burst.cpu) / (paced.count + burst.count))
            d["errors"].append(paced.errors + burst.errors)
            progress(f"small round {r + 1} {p.name:<13} p50 {p50 * 1000:.3f} ms  {d['rps'][-1]:.0f} req/s")
    header = f"{'path':<13} {'p50 ms':>20} {'p99 ms':>20} {'added p50 ms':>20} {'added p99 ms':>20} {'max req/s':>18} {'CPU/request µs':>20} {'err':>4}"
    rows = []
    for p in paths:
        d = per[p.name]
        rows.append(
            f"{p.name:<13} {spread(d['p50'], 1000, '{:.3f}'):>20} {spread(d['p99'], 1000, '{:.3f}'):>20} "
            f"{spread(d['added_p50'], 1000, '{:.3f}'):>20} {spread(d['added_p99'], 1000, '{:.3f}'):>20} "
            f"{spread(d['rps'], 1, '{:.0f}'):>18} {spread(d['cpu_req'], US, '{:.0f}') if p.pid else '-':>20} {int(sum(d['errors'])):>4}"
        )
    notes = ["  ratios:"]
    notes += _ref_ratios(per, "added_p50", paths, "added p50", ("tcp-relay", "toxiproxy"))
    notes += _ref_ratios(per, "cpu_req", paths, "CPU/request", ("tcp-relay", "toxiproxy"))
    notes += _ref_ratios(per, "rps", paths, "max req/s", REFS)
    _table(
        f"small non-streaming requests: {args.requests} per round from 32 keep-alive clients paced at {args.small_rate:g} req/s "
        f"(latency), then {args.requests} closed-loop (max req/s); CPU/request over both; {args.rounds} round(s)",
        load0,
        header,
        rows,
        notes,
    )
    return per


# -- body sizes and conversations ----------------------------------------------------------------

SIZES = {"1 KB": 1_000, "100 KB": 100_000, "1 MB": 1_000_000, "8 MB": 8_000_000}


async def sizes_table(paths: list[Path], args: Any) -> Per:
    load0 = loadavg()
    counts = {"1 KB": 1000, "100 KB": 300, "1 MB": 40, "8 MB": 8}
    if args.quick:
        counts = {"1 KB": 300, "100 KB": 100, "1 MB": 15, "8 MB": 4}
    per: Per = defaultdict(lambda: defaultdict(list))
    for r in range(args.rounds):
        for label, size in SIZES.items():
            direct = None
            for p in paths:
                payload = chat_request(p.small, 3, stream=False, pad=size)
                res = await run_sequence(p.small, [payload] * counts[label], pid=p.pid)
                d = per[f"{p.name}@{label}"]
                p50 = median(res.latencies)
                d["p50"].append(p50)
                if p.name == "direct":
                    direct = p50
                elif direct is not None:
                    d["added_p50"].append(p50 - direct)
                if res.cpu_per_request is not None:
                    d["cpu_req"].append(res.cpu_per_request)
                d["errors"].append(res.errors)
            progress(f"sizes round {r + 1} {label} done")
    header = f"{'path':<13} {'body':>7} {'p50 ms':>22} {'added p50 ms':>22} {'CPU/request µs':>24} {'err':>4}"
    rows, notes = [], []
    for p in paths:
        for label in SIZES:
            d = per[f"{p.name}@{label}"]
            rows.append(
                f"{p.name:<13} {label:>7} {spread(d['p50'], 1000, '{:.3f}'):>22} {spread(d['added_p50'], 1000, '{:.3f}'):>22} "
                f"{spread(d['cpu_req'], US, '{:.0f}') if p.pid else '-':>24} {int(sum(d['errors'])):>4}"
            )
        if p.pid:
            c1k, c1m = per[f"{p.name}@1 KB"]["cpu_req"], per[f"{p.name}@1 MB"]["cpu_req"]
            a1k, a1m = per[f"{p.name}@1 KB"]["added_p50"], per[f"{p.name}@1 MB"]["added_p50"]
            notes.append(
                f"  {p.name}: CPU/request 1 MB / 1 KB {ratio(median(finite(c1m)), median(finite(c1k)))}, "
                f"added p50 1 MB / 1 KB {ratio(median(finite(a1m)), median(finite(a1k)))} (target <= 10x)"
            )
    _table(
        f"body-size sweep: requests of one user message padded to each size, one after another on one keep-alive "
        f"connection ({', '.join(f'{k}: {v}' for k, v in counts.items())} per round), non-streaming answer of 16 tokens; {args.rounds} round(s)",
        load0,
        header,
        rows,
        notes,
    )
    return per


async def conversation_table(paths: list[Path], args: Any) -> Per:
    """Turn 1 and turn 50 of growing conversations (each turn adds a ~1 KB user message and a
    ~1 KB answer), against a fresh conversation whose one message is as long as turn 50's body:
    a cost that grows with earlier requests shows as turn 50 above the fresh request."""
    load0 = loadavg()
    convs, turns = (10, 50) if args.quick else (30, 50)
    per: Per = defaultdict(lambda: defaultdict(list))
    for r in range(args.rounds):
        base = r * 1000
        for p in paths:
            d = per[p.name]
            early, late = [], []
            for t in range(1, turns + 1):
                batch = [conversation_request(p.small, base + c, t) for c in range(convs)]
                if t <= 5:
                    early.append(await run_sequence(p.small, batch, pid=p.pid))
                elif t > turns - 5:
                    late.append(await run_sequence(p.small, batch, pid=p.pid))
                else:
                    await run_sequence(p.small, batch)
            size = len(conversation_request(p.small, base, turns))
            fresh = [
                await run_sequence(
                    p.small,
                    [chat_request(p.small, base + 500 + c, stream=False, pad=size) for c in range(convs)],
                    pid=p.pid,
                )
                for _ in range(5)
            ]
            for key, group in (("early", early), ("late", late), ("fresh", fresh)):
                d[f"{key}_p50"].append(median([x for g in group for x in g.latencies]))
                cpus = [g.cpu for g in group if g.cpu is not None]
                if cpus and len(cpus) == len(group):
                    d[f"{key}_cpu"].append(sum(cpus) / sum(g.count for g in group))
            progress(f"conversation round {r + 1} {p.name:<13} turn {turns} p50 {d['late_p50'][-1] * 1000:.3f} ms")
    header = f"{'path':<13} {'turns 1-5 p50 ms':>22} {'turns 46-50 p50 ms':>22} {'fresh same size ms':>22} {'CPU µs 1-5':>18} {'CPU µs 46-50':>18} {'CPU µs fresh':>18}"
    rows, notes = [], []
    for p in paths:
        d = per[p.name]
        rows.append(
            f"{p.name:<13} {spread(d['early_p50'], 1000, '{:.3f}'):>22} {spread(d['late_p50'], 1000, '{:.3f}'):>22} {spread(d['fresh_p50'], 1000, '{:.3f}'):>22} "
            + " ".join(
                f"{spread(d[k], US, '{:.0f}') if p.pid else '-':>18}" for k in ("early_cpu", "late_cpu", "fresh_cpu")
            )
        )
    direct = per.get("direct")
    for p in paths:
        if p.name == "direct" or direct is None:
            continue
        d = per[p.name]

        def added(k: str, d: dict[str, list[float]] = d, ref: dict[str, list[float]] = direct) -> float:
            return median(finite(d[k])) - median(finite(ref[k]))

        notes.append(
            f"  {p.name}: added p50 turn 50 {added('late_p50') * 1000:.3f} ms vs fresh same size {added('fresh_p50') * 1000:.3f} ms "
            f"vs turn 1 {added('early_p50') * 1000:.3f} ms; CPU turn 50 / fresh same size "
            f"{ratio(median(finite(d['late_cpu'])), median(finite(d['fresh_cpu'])))} (1.00x: no growth with earlier requests)"
        )
    _table(
        f"growing conversations: {convs} conversations x {turns} turns, one after another on one connection "
        f"(turn 50 body {size / 1000:.0f} KB); {args.rounds} round(s)",
        load0,
        header,
        rows,
        notes,
    )
    return per


async def per_core_table(paths: list[Path], ladder: list[int], args: Any, limit: float = 0.01) -> dict[str, Any]:
    """The most concurrent streams (starts spread over 1 s) each path holds with median stretch
    <= 1 %, climbing ``ladder`` until a step fails; per core = that count / the path process's
    CPU cores used at it (its CPU seconds / the round's wall time)."""
    load0 = loadavg()
    out: dict[str, Any] = {}
    for p in paths:
        held, cores, per_event = 0, None, None
        for n in ladder:
            res = await run_streams(p.stream, n, args.seconds, stagger=1.0, pid=p.pid)
            st = median(res.stretches)
            progress(f"per-core {p.name:<13} {n:>4} streams stretch {st * 100:.2f}%")
            if res.errors or res.incomplete or not st <= limit:
                break
            held = n
            if res.cpu is not None:
                cores = res.cpu / (args.seconds + 1.0)
                per_event = res.cpu_per_event
        out[p.name] = (held, cores, per_event)
    header = f"{'path':<13} {'held streams':>12} {'path CPU cores':>15} {'CPU/event µs':>13} {'streams per core':>17}"
    rows = []
    for p in paths:
        held, cores, per_event = out[p.name]
        rows.append(
            f"{p.name:<13} {held:>12} {f'{cores:.2f}' if cores else '-':>15} {f'{per_event * US:.1f}' if per_event else '-':>13} "
            f"{f'{held / cores:.0f}' if cores else '-':>17}"
        )
    notes = [
        f"  (ladder {ladder}; one round per step; the load generator and the simulator share the same cores,"
        " so the direct path's count is the ceiling this machine can measure)"
    ]
    _table(
        f"streams each path holds at <= {limit * 100:g} % median stretch (starts spread over 1 s, {args.seconds:g} s streams)",
        load0,
        header,
        rows,
        notes,
    )
    return out


def run(coro_fn: Callable[..., Any], *a: Any) -> Any:
    return asyncio.run(coro_fn(*a))
