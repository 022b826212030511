"""The ``routechaos`` command: serve lanes, run the demo, and (as they land) drills and reports.

Exit codes: 0 success, 1 a check failed, 2 usage or profile error, 3 a port could not be bound.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from . import __version__
from .journal import Journal
from .lanes import LaneSet
from .profile import Profile, ProfileError, default_profile, load_profile

__all__ = ["main"]

EXIT_OK, EXIT_CHECK_FAILED, EXIT_USAGE, EXIT_PORT = 0, 1, 2, 3


class UsageError(Exception):
    """A mistake on the command line: printed without a traceback, exit code 2."""


def _load(name: str | None, seed: int | None, time_scale: float | None) -> Profile:
    overrides: dict[str, object] = {}
    if seed is not None:
        overrides["seed"] = seed
    if time_scale is not None:
        overrides["time_scale"] = time_scale
    if name is None:
        p = default_profile()
        if seed is not None:
            p.seed = seed
        if time_scale is not None:
            p.time_scale = time_scale
        return p
    return load_profile(name, overrides)


# -- serve --------------------------------------------------------------------------------------
STATE_FILE = Path(".routechaos") / "serve.json"


async def _serve(
    profile: Profile,
    journal_path: str | None,
    out: Console,
    ready_file: str | None,
    control_port: int | None = 0,
) -> None:
    from .control import ControlServer

    journal = Journal(journal_path)
    lanes = LaneSet(profile, journal)
    await lanes.start()
    control = ControlServer(lanes, port=control_port) if control_port is not None else None
    try:
        for name, lane in lanes.lanes.items():
            print(f"lane {name} {lane.dialect_name} {lane.url}", flush=True)
        state = {"lanes": lanes.urls, "pid": os.getpid()}
        if control is not None:
            state["control"] = await control.start()
            print(f"control {control.url}", flush=True)
            with contextlib.suppress(OSError):
                STATE_FILE.parent.mkdir(exist_ok=True)
                STATE_FILE.write_text(json.dumps(state))
        if ready_file:
            with open(ready_file, "w", encoding="utf-8") as fh:
                fh.write("\n".join(f"{n} {lane.url}" for n, lane in lanes.lanes.items()) + "\n")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        if control is not None:
            await control.stop()
            with contextlib.suppress(OSError, ValueError):
                if json.loads(STATE_FILE.read_text()).get("pid") == os.getpid():
                    STATE_FILE.unlink()
        await lanes.stop()
        journal.close()
        out.print(f"[dim]{len(journal)} attempt(s) recorded{' in ' + journal_path if journal_path else ''}[/dim]")


def cmd_serve(args: argparse.Namespace, out: Console) -> int:
    profile = _load(args.profile, args.seed, args.time_scale)
    asyncio.run(_serve(profile, args.journal, out, args.ready_file, args.control_port))
    return EXIT_OK


# -- fault (live changes through the control API) ------------------------------------------------
def _control_url(args: argparse.Namespace) -> str:
    if args.control:
        return args.control.rstrip("/")
    env = os.environ.get("ROUTECHAOS_CONTROL_URL")
    if env:
        return env.rstrip("/")
    try:
        return json.loads(STATE_FILE.read_text())["control"]
    except (OSError, ValueError, KeyError):
        raise UsageError("no running 'routechaos serve' found here; pass --control URL") from None


def _parse_value(text: str) -> object:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def cmd_fault(args: argparse.Namespace, out: Console) -> int:
    import httpx

    url = _control_url(args)
    try:
        if args.action == "list":
            faults = httpx.get(url + "/faults", timeout=5).json()
            if not faults:
                out.print("no faults")
            for f in faults:
                out.print(f"{f['name']}  {f['fault']} on {f['lane']}  schedule={f['schedule']}  applied={f['applied']}")
            return EXIT_OK
        if args.action == "remove":
            r = httpx.delete(url + ("/faults" if args.name == "all" else f"/faults/{args.name}"), timeout=5)
            if r.status_code >= 400:
                raise UsageError(r.json().get("error", r.text))
            out.print(f"removed {args.name}")
            return EXIT_OK
        body: dict[str, object] = {"fault": args.fault, "lane": args.lane}
        if args.name:
            body["name"] = args.name
        if args.schedule:
            body["schedule"] = _parse_value(args.schedule)
        for item in args.attrs:
            key, sep, value = item.partition("=")
            if not sep:
                raise UsageError(f"attribute {item!r} must be key=value")
            body[key] = _parse_value(value)
        r = httpx.post(url + "/faults", json=body, timeout=5)
        if r.status_code >= 400:
            err = r.json()
            raise UsageError(f"{err.get('field', 'fault')}: {err.get('error')}")
        out.print(f"added {r.json()['name']}")
        return EXIT_OK
    except httpx.HTTPError as exc:
        raise UsageError(f"cannot reach the control API at {url}: {exc}") from None


# -- demo ---------------------------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace, out: Console) -> int:
    """Start the default lanes, stream one completion through each, show what the journal saw."""
    from .clientkit import stream
    from .lanes import BackgroundLanes

    profile = _load(args.profile, None, None)
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
    return EXIT_OK


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v * 1000:.0f}ms"


# -- sim ----------------------------------------------------------------------------------------
def cmd_sim(args: argparse.Namespace, out: Console) -> int:
    """One simulated provider on a fixed port (a lane with no faults)."""
    from .profile import LaneSpec
    from .simulator import SimSettings

    spec = LaneSpec(
        name=args.name,
        dialect=args.dialect,
        host=args.host,
        port=args.port,
        simulator=SimSettings(
            tokens_per_second=args.tps,
            ttft=args.ttft,
            answer_tokens=args.answer_tokens,
            slots=args.slots,
            queue=args.queue,
        ),
    )
    profile = Profile(name="sim", lanes={spec.name: spec})
    asyncio.run(_serve(profile, args.journal, out, args.ready_file, None))
    return EXIT_OK


# -- toxiproxy ----------------------------------------------------------------------------------
def cmd_toxiproxy(args: argparse.Namespace, out: Console) -> int:
    from .toxiproxy.server import main as toxiproxy_main

    return toxiproxy_main(["--host", args.host, "--port", str(args.port)])


# -- parser -------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="routechaos",
        description="Chaos test harness for LLM routes: lanes that misbehave like real providers.",
    )
    p.add_argument("--version", action="version", version=f"routechaos {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("serve", help="start a profile's lanes and keep them up until interrupted")
    s.add_argument("profile", nargs="?", help="profile name or path (default: two simulated lanes)")
    s.add_argument("--seed", type=int)
    s.add_argument("--time-scale", type=float, help="multiply every time in the profile (0.1 = ten times faster)")
    s.add_argument("--journal", help="write the journal (JSON Lines) to this file")
    s.add_argument("--control-port", type=int, default=0, help="control API port (default: any free port)")
    s.add_argument("--ready-file", help=argparse.SUPPRESS)
    s.set_defaults(func=cmd_serve)

    f = sub.add_parser("fault", help="add, list or remove faults on a running 'routechaos serve'")
    f.add_argument("--control", help="control API URL (default: the serve started in this directory)")
    fsub = f.add_subparsers(dest="action", metavar="ACTION", required=True)
    fa = fsub.add_parser("add", help="add a fault: routechaos fault add overloaded --lane ultraspeed retry_after=2")
    fa.add_argument("fault", help="fault name (rate_limit, overloaded, stream_cut, refuse, ...)")
    fa.add_argument("--lane", default="*", help="lane name, or * for every lane")
    fa.add_argument("--name", help="a name to remove it by later")
    fa.add_argument("--schedule", help="YAML/JSON schedule, e.g. '{first: 3}' (default: always)")
    fa.add_argument("attrs", nargs="*", metavar="KEY=VALUE", help="fault attributes")
    fsub.add_parser("list", help="list the running faults")
    fr = fsub.add_parser("remove", help="remove a fault by name ('all' for every fault)")
    fr.add_argument("name")
    f.set_defaults(func=cmd_fault)

    d = sub.add_parser("demo", help="start two simulated lanes and stream one completion through each")
    d.add_argument("profile", nargs="?", help="profile name or path (default: two simulated lanes)")
    d.add_argument("--prompt", default="Say hello from the premium lane.")
    d.add_argument("--journal", help="write the journal (JSON Lines) to this file")
    d.set_defaults(func=cmd_demo)

    m = sub.add_parser("sim", help="run one simulated provider on a port")
    m.add_argument(
        "--dialect", default="openai", help="openai, openai-chat, openai-responses, anthropic, gemini, vllm, ollama"
    )
    m.add_argument("--name", default="sim")
    m.add_argument("--host", default="127.0.0.1")
    m.add_argument("--port", type=int, default=0)
    m.add_argument("--tps", type=float, default=1000.0, help="tokens per second per stream")
    m.add_argument("--ttft", type=float, default=0.05, help="time to first token, seconds")
    m.add_argument("--answer-tokens", type=int, default=32)
    m.add_argument("--slots", type=int, default=None, help="concurrent generations (default unlimited)")
    m.add_argument("--queue", type=int, default=0, help="calls allowed to wait for a slot")
    m.add_argument("--journal")
    m.add_argument("--ready-file", help=argparse.SUPPRESS)
    m.set_defaults(func=cmd_sim)

    t = sub.add_parser("toxiproxy", help="run the embedded Toxiproxy-compatible server")
    t.add_argument("--host", default="127.0.0.1")
    t.add_argument("--port", type=int, default=8474)
    t.set_defaults(func=cmd_toxiproxy)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    out = Console(stderr=False, highlight=False, soft_wrap=True)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args, out) or 0)
    except (ProfileError, UsageError) as exc:
        err.print(f"[red]error:[/red] {exc}", markup=True, soft_wrap=True)
        return EXIT_USAGE
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            err.print(f"[red]error:[/red] port already in use: {exc.strerror}", soft_wrap=True)
            return EXIT_PORT
        raise
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
