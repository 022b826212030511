"""Run an example agent as a subprocess, for CLI drills::

    routechaos drill f05-overloaded-529 -- python -m examples.agents.run --agent router --calls 20

The lanes come from the environment a drill provides: ``ROUTECHAOS_LANES=primary,stable`` (in
order: the first is the primary), ``ROUTECHAOS_LANE_<NAME>_URL``, ``ROUTECHAOS_LANE_<NAME>_DIALECT``
and ``ROUTECHAOS_TIME_SCALE``; the traffic the profile needs from ``ROUTECHAOS_CALLS``,
``ROUTECHAOS_CONCURRENCY`` and ``ROUTECHAOS_SPREAD`` (its ``workload:``), unless the flags say
otherwise. One line is printed per call; the exit code is 0 whatever the answers were: the drill
judges the journal, not the agent.

Each call's outcome is reported to the drill's control API (``ROUTECHAOS_CONTROL_URL``), as an
agent in any language can do, and the drill ties the attempts to those calls by itself; the router
also sends the reported id as ``x-routechaos-call-id``, which only makes that cheaper
(``--no-call-id`` leaves it out).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from harness.drill import call_scope

from .flawed import AGENTS as CALL_AGENTS
from .loops import LOOP_AGENTS, run_subprocess

AGENTS = {**CALL_AGENTS, **LOOP_AGENTS}  # loop agents run episodes: one "call" of the workload each


def lanes_from_env(env: Mapping[str, str]) -> list[tuple[str, str, str]]:
    names = [n.strip() for n in env.get("ROUTECHAOS_LANES", "").split(",") if n.strip()]
    if not names:
        raise SystemExit("ROUTECHAOS_LANES is not set: run this under a drill (routechaos drill ... -- <command>)")
    lanes = []
    for name in names:
        key = re.sub(r"[^A-Z0-9]", "_", name.upper())
        url = env.get(f"ROUTECHAOS_LANE_{key}_URL")
        dialect = env.get(f"ROUTECHAOS_LANE_{key}_DIALECT")
        if not url or not dialect:
            raise SystemExit(f"lane {name!r}: ROUTECHAOS_LANE_{key}_URL and _DIALECT must be set")
        lanes.append((name, url, dialect))
    return lanes


def report_call(outcome: Mapping[str, object]) -> None:
    """Tell the drill what this call ended with (``POST $ROUTECHAOS_CONTROL_URL/calls``), so its
    checks can judge what the agent accepted, not only what the lanes sent. Best effort: a drill
    without a control API just judges the attempts."""
    url = os.environ.get("ROUTECHAOS_CONTROL_URL")
    if not url:
        return
    import httpx

    try:
        httpx.post(url.rstrip("/") + "/calls", json=dict(outcome), timeout=2.0)
    except httpx.HTTPError:
        pass


def _env_int(name: str, default: int) -> int:
    try:
        return max(1, int(os.environ.get(name, default)))
    except ValueError:
        return default


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.agents.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--agent", choices=sorted(AGENTS), default="router")
    parser.add_argument(
        "--calls", type=int, default=None, help="calls to make (default: the profile's, ROUTECHAOS_CALLS, else 10)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=None, help="calls at once (default: ROUTECHAOS_CONCURRENCY, else 1)"
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=None,
        help="profile seconds between call starts (default: ROUTECHAOS_SPREAD spread over the calls, else 0.5)",
    )
    parser.add_argument("--prompt", default="question {i}", help="prompt template; {i} is the call number")
    parser.add_argument(
        "--no-call-id",
        action="store_true",
        help="send no x-routechaos-call-id: the drill ties attempts to calls by itself, as for any agent",
    )
    args = parser.parse_args(argv)
    time_scale = float(os.environ.get("ROUTECHAOS_TIME_SCALE", "1.0"))
    calls = args.calls if args.calls is not None else _env_int("ROUTECHAOS_CALLS", 10)
    concurrency = args.concurrency if args.concurrency is not None else _env_int("ROUTECHAOS_CONCURRENCY", 1)
    groups = -(-calls // concurrency)
    interval = args.interval
    if interval is None:
        spread = os.environ.get("ROUTECHAOS_SPREAD")
        interval = float(spread) / groups if spread else 0.5
    agent = AGENTS[args.agent](lanes_from_env(os.environ), time_scale=time_scale)
    if args.agent in LOOP_AGENTS:
        return run_subprocess(agent, calls, interval, os.environ.get("ROUTECHAOS_CONTROL_URL"))  # type: ignore[arg-type]
    t0 = time.monotonic()
    lock = threading.Lock()

    def one(i: int) -> None:
        wait = t0 + (i // concurrency) * interval * time_scale - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        started = time.monotonic()
        outcome: dict[str, object] = {"id": f"call-{i:04d}", "started_at": time.time()}
        try:
            if args.no_call_id:
                r = agent.complete(args.prompt.format(i=i), headers={})
            else:
                with call_scope(f"call-{i:04d}"):  # the router sends it as x-routechaos-call-id
                    r = agent.complete(args.prompt.format(i=i))
            if r.error:
                line = f"call {i}: error {r.error_type}: {r.error}"
                outcome.update(outcome="error", error=str(r.error), error_type=r.error_type or "error")
            else:
                line = f"call {i}: ok lane={r.lane} model={r.model} chars={len(r.text or '')} usage={r.usage}"
                outcome.update(outcome="ok", text=r.text, lane=r.lane, complete=r.complete)
        except Exception as exc:  # the drill judges; the agent reports and goes on
            line = f"call {i}: crashed {type(exc).__name__}: {exc}"
            outcome.update(outcome="error", error=str(exc), error_type=type(exc).__name__)
        outcome["ended_at"] = time.time()
        report_call(outcome)
        with lock:
            print(f"{line} ({(time.monotonic() - started) / time_scale:.3f}s)", flush=True)

    if concurrency == 1:
        for i in range(calls):
            one(i)
    else:
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(one, range(calls)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
