"""Scale out: many light agents through a lane run as 1 and 2 Ray replicas, one coordinator.

For each replica count, one Ray drill (a local Ray with ``--cpus``, started once): rounds of
``agents`` light asyncio clients (``harness.ray.agents.LightAgent``, an OpenAI Chat streaming
client, spread over ``--agent-actors`` processes) each making ``--calls`` calls to a simulated
1000 tokens/s lane whose every attempt is decided by the coordinator (a shared rate limiter with a
limit the drill never reaches, and an ``nth`` schedule that counts every attempt). Printed per
(replicas, agents), median and min–max over ``--rounds``:

* stream stretch: an attempt's time on the lane (request in -> last byte out) over what the
  simulator promises (time to first token + tokens / tokens per second), minus 1; median and p99
* attempts/s: the round's attempts over the span from its first attempt to its last
* coordination per attempt: the replica's wait for its decision (ask -> answer, under that load)
* lost: attempts the clients sent that the merged journal lacks, plus attempts journaled unknown
  (0 expected)

and, before the table, the round trip of one decision with nothing else running: in-process
(``FaultPlan.decide``, the single-process path; ``Coordinator.decide`` behind the same call) and
replica actor -> coordinator actor, one at a time and 64 at once.

    .venv/bin/python benchmarks/bench_scale.py                      # 100, 200, 400, 800 agents
    .venv/bin/python benchmarks/bench_scale.py --agents 100 --rounds 1 --quick

The machine is shared: the load average is printed with every table.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchlib.stats import loadavg, machine, pct, ratio, spread

TPS = 1000.0
TTFT = 0.02
TOKENS = 60


def _profile(replicas: int) -> Any:
    from harness.profile import profile_from_dict

    sim = {"tokens_per_second": TPS, "ttft": TTFT, "answer_tokens": TOKENS}
    return profile_from_dict(
        {
            "name": "bench-scale",
            "seed": 1,
            "lanes": {"primary": {"dialect": "openai-chat", "replicas": replicas, "simulator": sim}},
            "faults": [
                {"fault": "rate_limiter", "lane": "primary", "requests_per_minute": 10_000_000, "shared": "org"},
                {"fault": "http_error", "lane": "primary", "status": 503, "schedule": {"nth": [10**9]}},
            ],
        }
    )


def in_process_decide_us(n: int = 3000, rounds: int = 5) -> tuple[list[float], list[float]]:
    """Median µs per decision, per round: the single-process plan, and the coordinator's."""
    import asyncio

    from harness.dialects import dialects_for
    from harness.dialects.base import RequestInfo
    from harness.faults.plan import FaultPlan
    from harness.journal import Journal
    from harness.proxy.hooks import AttemptContext
    from harness.ray.coordinator import Ask, Coordinator

    async def run() -> tuple[list[float], list[float]]:
        plan_us, coord_us = [], []
        dialect = dialects_for("openai-chat")[0]
        for _ in range(rounds):
            j = Journal()
            plan = FaultPlan(_profile(1), j)
            t = time.perf_counter()
            for i in range(n):
                a = j.new_attempt("primary", call_id=f"c{i}")
                req = RequestInfo("openai-chat", "chat", "gpt-4o", True, f"fp{i}", 10)
                iv = plan.decide(AttemptContext("primary", a, dialect, req, {}))
                if iv is not None:
                    iv.finished(AttemptContext("primary", a, dialect, req, {}))
            plan_us.append((time.perf_counter() - t) / n * 1e6)
            c = Coordinator(_profile(1))
            t = time.perf_counter()
            for i in range(n):
                for _i, _k, handle, _d in c.decide(Ask("primary", "r", f"r:{i}", f"c{i}", f"fp{i}", "", "gpt-4o", 10)):
                    if handle:
                        c.finished(handle, 0)
            coord_us.append((time.perf_counter() - t) / n * 1e6)
        return plan_us, coord_us

    return asyncio.run(run())


def actor_round_trip_us(n: int, rounds: int) -> dict[str, list[float]]:
    """Median µs of one decision, replica actor -> coordinator actor, per round."""
    import ray

    from harness.ray.engine import RayDrill

    out: dict[str, list[float]] = {"sequential": [], "64 at once (per decision)": []}
    with RayDrill(_profile(1)) as drill:
        _, replica = drill.replicas["primary"][0]
        for _ in range(rounds):
            seq = ray.get(replica.bench_decide.remote(n, 1))
            out["sequential"].append(statistics.median(seq) * 1e6)
            t = time.perf_counter()
            ray.get(replica.bench_decide.remote(n, 64))
            out["64 at once (per decision)"].append((time.perf_counter() - t) / n * 1e6)
    return out


def scale_level(drill: Any, agents: int, calls: int, actors: int) -> dict[str, Any]:
    from harness.ray.agents import LightAgent

    first = drill._agent_n
    factory = functools.partial(LightAgent, attempts=4, backoff=0.05)
    res = drill.run_agents(
        factory, [f"prompt {i % 50}" for i in range(agents * calls)], actors=actors, concurrency=-(-agents // actors)
    )
    ids = {f"call-{first + i:05d}" for i in range(agents * calls)}
    sent = sum(drill._agent_results[n]["attempts_sent"] for n in list(drill._agent_results)[-actors:])
    return {"ids": ids, "sent": sent, "dead": res["dead"]}


def summarise(drill: Any, levels: list[tuple[int, int, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per (agents, round): figures from the merged journal."""
    ideal = TTFT + TOKENS / TPS
    by_call: dict[str, list[Any]] = {}
    for a in drill.journal.attempts():
        by_call.setdefault(a.call_id or "", []).append(a)
    decide = [s for src in drill.sources if src.records for s in src.records.get("decide_seconds", [])]
    rows = []
    for agents, rnd, lv in levels:
        atts = [a for cid in lv["ids"] for a in by_call.get(cid, [])]
        ok = [a for a in atts if a.status == 200 and a.end_reason == "complete" and a.t_end is not None]
        stretch = [(a.t_end - a.t_start) / ideal - 1 for a in ok]
        span = max(a.t_end for a in atts) - min(a.t_start for a in atts) if atts else float("nan")
        unknown = sum(1 for a in atts if a.outcome == "unknown")
        rows.append(
            {
                "agents": agents,
                "round": rnd,
                "stretch": statistics.median(stretch) if stretch else float("nan"),
                "stretch_p99": pct(stretch, 99),
                "rate": len(atts) / span if span else float("nan"),
                "lost": (lv["sent"] - len(atts)) + unknown,
                "attempts": len(atts),
            }
        )
    drill.decide_all = decide
    srcs = [src.records for src in drill.sources if src.records and "ray_calls" in src.records]
    drill.batching = (sum(r["ray_ops"] for r in srcs), sum(r["ray_calls"] for r in srcs))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--agents", type=int, nargs="+", default=[100, 200, 400, 800])
    ap.add_argument("--replicas", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--calls", type=int, default=3, help="calls per agent per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--agent-actors", type=int, default=2)
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="fewer decisions in the round-trip measurement")
    args = ap.parse_args()

    import ray

    from harness.ray.engine import RayDrill

    t_run = time.perf_counter()
    print(f"bench_scale: {machine()}; lane {TPS:g} tokens/s, {TOKENS} tokens, ttft {TTFT * 1000:g} ms")
    plan_us, coord_us = in_process_decide_us(1000 if args.quick else 3000)
    print("\none decision, nothing else running (µs, median over rounds (min–max)):")
    print(f"  single process, FaultPlan.decide + finished:    {spread(plan_us, fmt='{:.1f}')}")
    print(f"  Coordinator.decide + finished, in process:      {spread(coord_us, fmt='{:.1f}')}")
    ray.init(num_cpus=args.cpus, include_dashboard=False, logging_level="warning")
    try:
        rt = actor_round_trip_us(200 if args.quick else 1000, max(1, args.rounds))
        for k, v in rt.items():
            print(f"  replica actor -> coordinator actor, {k + ':':<27}{spread(v, fmt='{:.0f}')}")
        times = ratio(statistics.median(rt["sequential"]), statistics.median(plan_us))
        print(f"  actor round trip / single-process decision:     {times}")
        print(f"  (loadavg {loadavg()})")

        header = (
            f"\n{'replicas':>8} {'agents':>6} {'stretch p50':>20} {'stretch p99':>20} {'attempts/s':>18} {'lost':>5}"
        )
        print(header)
        for replicas in args.replicas:
            with RayDrill(_profile(replicas)) as drill:
                levels = []
                for agents in args.agents:
                    for rnd in range(args.rounds):
                        levels.append((agents, rnd, scale_level(drill, agents, args.calls, args.agent_actors)))
            rows = summarise(drill, levels)
            for agents in args.agents:
                mine = [r for r in rows if r["agents"] == agents]
                print(
                    f"{replicas:>8} {agents:>6} {spread([r['stretch'] for r in mine], 100, unit='%'):>20} "
                    f"{spread([r['stretch_p99'] for r in mine], 100, unit='%'):>20} "
                    f"{spread([r['rate'] for r in mine], fmt='{:.0f}'):>18} {sum(r['lost'] for r in mine):>5}"
                )
            dec = drill.decide_all
            print(
                f"{'':>8} coordination per attempt under this load (ask -> decision, all levels): "
                f"p50 {pct(dec, 50) * 1e6:.0f} µs, p99 {pct(dec, 99) * 1e6:.0f} µs over {len(dec)} attempts; "
                f"{drill.batching[0]} coordinator operations in {drill.batching[1]} Ray calls; "
                f"dead actors: {drill.deaths or 'none'}; loadavg {loadavg()}"
            )
    finally:
        ray.shutdown()
    print(f"\n(total run {time.perf_counter() - t_run:.0f} s; loadavg at the end {loadavg()})")


if __name__ == "__main__":
    main()
