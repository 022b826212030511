"""``routechaos demo``: stream through two simulated lanes, then drill the example router."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from rich.console import Console

from ..agentproc import GRACE
from ..journal import Journal
from ..lanes import LaneSet
from .common import EXIT_OK, load_profile_arg
from .drill import cmd_drill


def cmd_demo(args: argparse.Namespace, out: Console) -> int:
    """Start the default lanes, stream one completion through each, show what the journal saw."""
    from ..clientkit import stream
    from ..lanes import BackgroundLanes

    profile = load_profile_arg(args.profile, None, None)
    prompt = args.prompt
    with BackgroundLanes(LaneSet(profile, Journal(args.journal))) as bg:
        for name, lane in bg.lanes.lanes.items():
            out.print(f"[bold]lane {name}[/bold] {lane.dialect_name} {lane.url}")
            t0 = time.perf_counter()
            first = None
            sys.stdout.write("  ")
            for kind, text in stream(lane.url, lane.dialect_name, prompt):
                if kind == "content":
                    first = first or time.perf_counter()
                    sys.stdout.write(text)
                    sys.stdout.flush()
                elif kind == "error":
                    sys.stdout.write(f"[error] {text}")
            elapsed = time.perf_counter() - t0
            ttft = (first - t0) if first else float("nan")
            sys.stdout.write("\n")
            out.print(f"  [dim]time to first token {ttft * 1000:.0f} ms, total {elapsed * 1000:.0f} ms[/dim]")
        out.print()
        out.print("[bold]journal[/bold]")
        for a in bg.journal.attempts():
            gen = a.generation_time or 0.0
            rate = (a.tokens / gen) if gen > 0 else float("nan")
            out.print(
                f"  {a.id} lane={a.lane} {a.dialect} status={a.status} end={a.end_reason} tokens={a.tokens} "
                f"ttft={_ms(a.ttft)} gen={_ms(a.generation_time)} ({rate:.0f} tok/s) fingerprint={a.fingerprint}"
            )
    if args.no_drill:
        return EXIT_OK
    return _demo_drill(args, out)


def _demo_drill(args: argparse.Namespace, out: Console) -> int:
    """The reference router agent (examples/) through ultraspeed-capacity-loss, ten times faster."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "examples" / "agents" / "run.py").is_file():
        out.print("[dim](the example agents live in a clone of the repository: no drill here)[/dim]")
        return EXIT_OK
    out.print()
    out.print(
        "[bold]demo drill[/bold]: the reference router in examples/ while its premium lane throttles, "
        "then loses its capacity for 20 s (profile time), beside a stable lane"
    )
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH", "")) if p)
    drill_args = argparse.Namespace(
        profile="ultraspeed-capacity-loss",
        seed=None,
        time_scale=0.1,
        out=args.out,
        timeout=120.0,
        grace=GRACE,
        progress_every=1.0,
        expect_calls=40,
        quiet=False,
        command=[
            sys.executable,
            "-m",
            "examples.agents.run",
            "--agent",
            "router",
            "--calls",
            "40",
            "--interval",
            "1.5",
        ],
    )
    return cmd_drill(drill_args, out)


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v * 1000:.0f}ms"
