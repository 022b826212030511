"""Time to judge a long drill: every registered check over one journal of ``--attempts`` attempts.

The journal is built in this process (no lanes, no sockets): calls of an agent that falls back
from ``primary`` to ``stable``, some rate limited and retried, some cut mid-stream, some agent
loops of a few steps with tool calls, each call recorded as a workload reports it. Past the
journal's hot window (4,096 attempts) the older attempts are read back from their lines, as in a
real long drill. Each round evaluates every check in the catalogue once (``evaluate_all``), and
also times the episodes grouping alone, in CPU seconds of this process (a shared machine steals
wall time); medians and the spread over rounds are printed with the
load average (the machine is shared).

    python benchmarks/bench_checks.py                        # 16,000 attempts, 5 rounds
    python benchmarks/bench_checks.py --attempts 4000 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchlib.stats import machine, spread

from harness.checks import evaluate_all, make_check
from harness.checks.base import CHECKS
from harness.clock import VirtualClock
from harness.episodes import episodes
from harness.journal import Call, Journal

#: parameters for the checks that need some; the rest run with their defaults
PARAMS: dict[str, dict[str, Any]] = {
    "fallback_within": {"primary": "primary", "fallback": "stable", "within": 5},
    "circuit_opens": {"lane": "primary"},
    "recovers_within": {"lane": "primary", "within": 10},
}


def build(n: int, path: str | None) -> Journal:
    """A journal of about ``n`` attempts (and their calls) on a virtual clock."""
    clock = VirtualClock()
    j = Journal(path, clock=clock)
    j.mark("drill_start", lanes=["primary", "stable"])
    i = call_no = 0
    while i < n:
        call_no += 1
        loop = call_no % 7 == 0  # an agent loop: a few steps, each a call, tool calls between
        steps = 3 if loop else 1
        for step in range(steps):
            call = Call(id=f"c{call_no}.{step}", t_start=j.now(), source="drill")
            j.call_started(call)
            fp = f"fp{call_no}.{step}"
            parent = f"fp{call_no}.{step - 1}" if loop and step else None
            tries = [("primary", 429)] if call_no % 5 == 0 else []
            tries += [("primary", -1)] if call_no % 11 == 0 else []  # a stream cut
            tries += [("stable" if tries else "primary", 200)]
            for lane, status in tries:
                a = j.new_attempt(
                    lane,
                    path="/v1/chat/completions",
                    dialect="openai-chat",
                    model="gpt-4o",
                    stream=True,
                    fingerprint=fp,
                    parent_fingerprint=parent,
                    headers={"content-type": "application/json", "user-agent": "OpenAI/Python 1.54.4"},
                    expected_tokens=40,
                )
                clock.advance(0.05)
                a.t_headers = a.t_first_token = j.now()
                if status == 429:
                    a.status, a.end_reason = 429, "error_response"
                    a.fault = {"name": "rate_limit", "type": "rate_limit_429"}
                    a.retry_after = 0.5
                    clock.advance(0.5)
                elif status < 0:
                    a.status, a.end_reason, a.tokens = 200, "cut", 12
                    a.fault = {"name": "cut", "type": "stream_cut"}
                else:
                    clock.advance(0.2)
                    a.status, a.end_reason, a.tokens, a.text_chars = 200, "complete", 40, 160
                    a.usage = {"input_tokens": 120, "output_tokens": 40}
                    if loop and step < steps - 1:
                        a.tool_calls = [{"id": f"t{call_no}.{step}", "name": "search", "arguments_complete": True}]
                a.t_last_token = j.now()
                j.record(a)
                i += 1
            call.t_end, call.outcome, call.lane, call.complete = j.now(), "ok", tries[-1][0], True
            j.record_call(call)
            clock.advance(0.1)
    j.mark("drill_stop")
    return j


def checks() -> list[Any]:
    return [make_check(name, PARAMS.get(name, {})) for name in sorted(CHECKS)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--attempts", type=int, default=16_000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        j = build(args.attempts, os.path.join(tmp, "journal.jsonl"))
        built = checks()
        evaluate_s, episodes_s, attempts_ms = [], [], []
        for _ in range(args.rounds):
            # a fresh read of the same journal each round: what ``routechaos report`` sees
            fresh = Journal.load(j.path) if j.path is not None else j
            fresh.attempts()  # the first read decodes the cold attempts; the checks' later reads:
            t = time.process_time()
            fresh.attempts()
            attempts_ms.append(time.process_time() - t)
            t = time.process_time()
            episodes(fresh)
            episodes_s.append(time.process_time() - t)
            fresh = Journal.load(j.path) if j.path is not None else j
            t = time.process_time()
            report = evaluate_all(fresh, built)
            evaluate_s.append(time.process_time() - t)
        j.close()
    print(f"{len(j)} attempts, {len(j.calls())} calls, {len(built)} checks, {args.rounds} rounds; {machine()}")
    print(f"  journal.attempts(), a later read:   {spread(attempts_ms, 1e3, unit=' ms')}")
    print(f"  episodes(journal):                   {spread(episodes_s, 1e3, '{:.0f}', ' ms')}")
    print(f"  evaluate_all, every check:           {spread(evaluate_s, 1e3, '{:.0f}', ' ms')}")
    print(f"  verdict {report.verdict.value}: " + ", ".join(f"{r.name} {r.verdict.value}" for r in report.results))


if __name__ == "__main__":
    main()
