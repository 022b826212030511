"""Fuzz the harness's outside surfaces with ten thousand examples or more per target.

    python -m benchmarks.fuzz                      # every target, 10,000 examples each
    python -m benchmarks.fuzz -n 20000 lane_http   # one target, more examples
    python -m benchmarks.fuzz --list

The targets (``tests/hypothesis/targets.py``) are the ones the normal suite runs a few hundred
examples of: profile YAML text, profile files as bytes, profile data built in code, control API
requests and embedded Toxiproxy API requests over real HTTP on loopback, raw HTTP bytes to a lane
on a real socket, and journal.jsonl lines. Each example is checked against the target's property;
a failing example does not stop the run (Hypothesis would stop at the first and shrink it), so the
count of failures over all examples is printed, with the first failing example as it was drawn
and what it raised. 0 failures is the expected result; the exit status is 1 otherwise.

Examples are drawn from a fixed seed (``--seed``), so a run can be repeated; the machine's load
average is printed before and after, since the HTTP targets share the CPU with everything else.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.hypothesis.targets import BY_NAME, TARGETS, Target

DEFAULT_EXAMPLES = 10_000


@dataclass
class Result:
    name: str
    examples: int = 0
    failures: int = 0
    seconds: float = 0.0
    #: the first failing example of each distinct failure (exception type and where it was raised)
    firsts: dict[str, str] = field(default_factory=dict)
    kinds: dict[str, int] = field(default_factory=dict)


def _signature(exc: BaseException) -> str:
    where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    at = f" at {Path(where.filename).name}:{where.lineno}" if where else ""
    return f"{type(exc).__name__}{at}"


def _describe(example: Any, exc: BaseException, limit: int = 600) -> str:
    shown = repr(example)
    if len(shown) > limit:
        shown = shown[:limit] + f"... ({len(shown)} characters)"
    return f"example: {shown}\n      raised {_signature(exc)}: {str(exc)[:limit]}"


def run_target(target: Target, examples: int, seed: int = 0) -> Result:
    """Draw ``examples`` examples of ``target`` and check each; count (do not stop at) failures."""
    result = Result(target.name)
    t0 = time.perf_counter()
    with target.open() as check:

        @hypothesis_seed(seed)
        @settings(
            max_examples=examples,
            database=None,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(target.strategy)
        def run(example: Any) -> None:
            result.examples += 1
            try:
                check(example)
            except Exception as exc:
                result.failures += 1
                kind = _signature(exc)
                result.kinds[kind] = result.kinds.get(kind, 0) + 1
                if kind not in result.firsts and len(result.firsts) < 5:
                    result.firsts[kind] = _describe(example, exc)

        run()
    result.seconds = time.perf_counter() - t0
    return result


def _run_named(name: str, examples: int, seed: int) -> Result:
    logging.getLogger("harness").setLevel(logging.CRITICAL)
    return run_target(BY_NAME[name], examples, seed)


def _run_all(names: list[str], examples: int, seed: int, jobs: int) -> Iterator[Result]:
    """Results in the order of ``names``; with ``jobs`` > 1 the targets run in worker processes."""
    if jobs <= 1:
        for name in names:
            yield _run_named(name, examples, seed)
        return
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(_run_named, name, examples, seed) for name in names]
        for fut in futures:
            yield fut.result()


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.fuzz", description=__doc__.split("\n\n")[0])
    ap.add_argument("targets", nargs="*", help=f"targets to run (default: all): {', '.join(BY_NAME)}")
    ap.add_argument("-n", "--examples", type=int, default=DEFAULT_EXAMPLES, help="examples per target (10000)")
    ap.add_argument("--seed", type=int, default=0, help="Hypothesis seed (0)")
    ap.add_argument("-j", "--jobs", type=int, default=1, help="targets run at once, each in its own process (1)")
    ap.add_argument("--list", action="store_true", help="list the targets and what each holds to")
    args = ap.parse_args(argv)
    if args.list:
        for t in TARGETS:
            print(f"{t.name:15} {t.what}")
        return 0
    unknown = [n for n in args.targets if n not in BY_NAME]
    if unknown:
        ap.error(f"unknown target {unknown[0]!r}; targets: {', '.join(BY_NAME)}")
    chosen = [BY_NAME[n] for n in args.targets] if args.targets else TARGETS
    logging.getLogger("harness").setLevel(logging.CRITICAL)  # one line per malformed request, by design
    cpus = len(os.sched_getaffinity(0))
    print(
        f"fuzz: {args.examples} examples per target, seed {args.seed}, {args.jobs} at once; "
        f"load average {_loadavg()} on {cpus} CPUs"
    )
    print(f"{'target':15} {'examples':>9} {'failures':>9} {'seconds':>8}  per example")
    results = []
    for r in _run_all([t.name for t in chosen], args.examples, args.seed, args.jobs):
        results.append(r)
        per = f"{1000 * r.seconds / r.examples:.2f} ms" if r.examples else "-"
        print(f"{r.name:15} {r.examples:>9} {r.failures:>9} {r.seconds:>8.1f}  {per}", flush=True)
        for kind, first in r.firsts.items():
            print(f"    {r.kinds[kind]} x {kind}; the first:\n      {first}", flush=True)
    total = sum(r.failures for r in results)
    examples = sum(r.examples for r in results)
    short = [r.name for r in results if r.examples < args.examples]
    print(f"total: {examples} examples, {total} failures; load average {_loadavg()}")
    if short:
        print(f"note: fewer examples than asked for {', '.join(short)} (Hypothesis ran out of distinct ones)")
    return 1 if total else 0


if __name__ == "__main__":
    raise SystemExit(main())
