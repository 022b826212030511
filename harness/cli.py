"""The ``routechaos`` command: serve lanes, run the demo, and (as they land) drills and reports.

Exit codes: 0 success, 1 a check failed, 2 usage or profile error, 3 a port could not be bound.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import re
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from . import __version__
from .journal import Journal
from .lanemap import UnknownLane, parse_lane_args, rename_profile
from .lanes import LaneSet
from .profile import Profile, ProfileError, check_time_scale, default_profile, load_profile
from .redact import redact_text

__all__ = ["main"]

EXIT_OK, EXIT_CHECK_FAILED, EXIT_USAGE, EXIT_PORT = 0, 1, 2, 3


class UsageError(Exception):
    """A mistake on the command line: printed without a traceback, exit code 2."""


def _load(name: str | None, seed: int | None, time_scale: float | None, lanes: Sequence[str] = ()) -> Profile:
    """The profile to run; ``lanes`` are ``--lane PROFILE_LANE=YOUR_LANE`` renamings."""
    overrides: dict[str, object] = {}
    if seed is not None:
        overrides["seed"] = seed
    if time_scale is not None:
        overrides["time_scale"] = time_scale
    try:
        mapping = parse_lane_args(lanes)
        if name is not None:
            return load_profile(name, overrides, lanes=mapping)
        p = rename_profile(default_profile(), mapping)
    except UnknownLane as exc:
        raise UsageError(f"--lane {exc.name}=...: {exc}") from None
    except ValueError as exc:
        if isinstance(exc, ProfileError):
            raise
        raise UsageError(str(exc)) from None
    if seed is not None:
        p.seed = seed
    if time_scale is not None:
        p.time_scale = time_scale
    return p


# -- serve --------------------------------------------------------------------------------------
STATE_FILE = Path(".routechaos") / "serve.json"


def _serve(
    profile: Profile,
    journal_path: str | None,
    out: Console,
    ready_file: str | None,
    control_port: int | None = 0,
    toxiproxy: bool = False,
) -> None:
    """Run a drill with no workload until SIGINT/SIGTERM: the lanes of a hand-driven drill."""
    import threading

    from .drill import Drill

    drill = Drill(
        profile,
        journal_path=journal_path,
        control=control_port is not None,
        control_port=control_port or 0,
        network_layer=toxiproxy,
    )
    drill.start()
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for name, spec in profile.lanes.items():
            print(f"lane {name} {spec.dialect} {drill.url(name)}", flush=True)
        state: dict[str, object] = {"lanes": drill.urls, "pid": os.getpid()}
        if drill.control_url:
            state["control"] = drill.control_url
            print(f"control {drill.control_url}", flush=True)
        if drill.toxiproxy_api:
            state["toxiproxy"] = drill.toxiproxy_api
            print(f"toxiproxy {drill.toxiproxy_api}", flush=True)
        if drill.control_url:
            with contextlib.suppress(OSError):  # holds the control token: readable by this user only
                STATE_FILE.parent.mkdir(exist_ok=True)
                fd = os.open(STATE_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as fh:
                    fh.write(json.dumps(state))
        if ready_file:
            with open(ready_file, "w", encoding="utf-8") as fh:
                fh.write("\n".join(f"{n} {u}" for n, u in drill.urls.items()) + "\n")
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if drill.control_url:
            with contextlib.suppress(OSError, ValueError):
                if json.loads(STATE_FILE.read_text()).get("pid") == os.getpid():
                    STATE_FILE.unlink()
        drill.stop()
        where = f" in {journal_path}" if journal_path else ""
        out.print(f"[dim]{len(drill.journal)} attempt(s) recorded{where}[/dim]")


def cmd_serve(args: argparse.Namespace, out: Console) -> int:
    profile = _load(args.profile, args.seed, args.time_scale, args.lane or ())
    _serve(profile, args.journal, out, args.ready_file, args.control_port, args.toxiproxy)
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


def _refused(r: object) -> str:
    """The control API's error message (its body is JSON ``{"error", "field"?}``)."""
    try:
        err = r.json()  # type: ignore[attr-defined]
    except ValueError:
        return str(getattr(r, "text", ""))[:200]
    if not isinstance(err, dict):
        return str(err)[:200]
    return f"{err['field']}: {err.get('error')}" if err.get("field") else str(err.get("error"))


def cmd_fault(args: argparse.Namespace, out: Console) -> int:
    import httpx

    url = _control_url(args)
    try:
        if args.action == "list":
            r = httpx.get(url + "/faults", timeout=5)
            if r.status_code >= 400:
                raise UsageError(_refused(r))
            faults = r.json()
            if not faults:
                out.print("no faults")
            for f in faults:
                out.print(f"{f['name']}  {f['fault']} on {f['lane']}  schedule={f['schedule']}  applied={f['applied']}")
            return EXIT_OK
        if args.action == "remove":
            r = httpx.delete(url + ("/faults" if args.name == "all" else f"/faults/{args.name}"), timeout=5)
            if r.status_code >= 400:
                raise UsageError(_refused(r))
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
            raise UsageError(_refused(r))
        out.print(f"added {r.json()['name']}")
        return EXIT_OK
    except httpx.HTTPError as exc:
        raise UsageError(f"cannot reach the control API at {url}: {exc}") from None


# -- drill --------------------------------------------------------------------------------------
def _run_dir(base: str | None, profile: Profile) -> Path:
    if base:
        return Path(base)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("routechaos-runs") / f"{profile.name}-{stamp}"


def cmd_drill(args: argparse.Namespace, out: Console) -> int:
    """Start the lanes, run the agent with their URLs in its environment, judge, report."""
    import shutil
    import subprocess

    from .drill import Drill
    from .report import print_summary, write_html_report
    from .report.live import LiveView, log_tail

    command = list(args.command)
    if not command:
        raise UsageError("give the agent command after --, e.g. routechaos drill PROFILE -- python agent.py")
    if shutil.which(command[0]) is None and not Path(command[0]).exists():
        raise UsageError(f"agent command not found: {command[0]}")
    profile = _load(args.profile, args.seed, args.time_scale, getattr(args, "lane", None) or ())
    run_dir = _run_dir(args.out, profile)
    run_dir.mkdir(parents=True, exist_ok=True)
    journal_path = run_dir / "journal.jsonl"
    log_path = run_dir / "agent.log"
    drill = Drill(profile, journal_path=journal_path, control=True)
    drill.start()
    rc: int | None = None
    try:
        out.print(f"[bold]drill[/bold] {profile.name} (seed {profile.seed}, time scale {profile.time_scale:g})")
        for name, url in drill.urls.items():
            out.print(f"  lane {name} {profile.lanes[name].dialect} {url}")
        out.print(f"  control {drill.control_url}")
        out.print(f"  agent: {redact_text(' '.join(command))}  (output: {log_path})")
        env = {**os.environ, **drill.env()}
        t0 = time.monotonic()
        live = LiveView(
            out, drill.journal, profile, expected_calls=args.expect_calls, quiet=args.quiet, every=args.progress_every
        )
        with open(log_path, "wb") as log, live:
            try:
                proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
            except OSError as exc:
                raise UsageError(f"cannot start agent command {command[0]}: {exc.strerror}") from None
            deadline = t0 + args.timeout
            while proc.poll() is None:
                now = time.monotonic()
                if now > deadline:
                    proc.kill()
                    proc.wait()
                    out.print(f"[red]agent did not finish within {args.timeout:g}s: stopped[/red]")
                    break
                time.sleep(0.05)
            rc = proc.returncode
    finally:
        drill.stop()
    report = drill.evaluate()
    journal = drill.profile_time_journal()
    out.print()
    print_summary(out, journal, report, profile=profile)
    html_path = write_html_report(journal, report, run_dir / "report.html", profile=profile)
    (run_dir / "checks.json").write_text(json.dumps(report.to_json(), indent=2, default=str))
    out.print(f"journal {journal_path}")
    out.print(f"report  {html_path}")
    if rc not in (0, None):
        out.print(f"[red]agent exited with status {rc}[/red]; the end of its output ({log_path}):")
        for line in log_tail(log_path) or ["(no output)"]:
            out.print("  " + line, markup=False, highlight=False)
        return EXIT_CHECK_FAILED
    return EXIT_CHECK_FAILED if report.failed() else EXIT_OK


# -- profiles -----------------------------------------------------------------------------------
def cmd_profiles(args: argparse.Namespace, out: Console) -> int:
    from .profile import find_profile, profile_dirs

    if args.action == "list":
        seen: set[str] = set()
        width = max(60, out.width) if out.is_terminal else None  # piped: whole descriptions
        for d in profile_dirs():
            for path in sorted(d.glob("*.yaml")) if d.is_dir() else []:
                if path.stem in seen:
                    continue
                seen.add(path.stem)
                try:
                    p = load_profile(path)
                    desc = " ".join(p.description.split())
                    line = f"{path.stem:32} {len(p.faults):2} fault(s) {len(p.checks):2} check(s)  {desc}"
                    if width is not None and len(line) > width:
                        line = line[: width - 1] + "…"
                    out.print(line, highlight=False, markup=False, soft_wrap=True)
                except ProfileError as exc:
                    out.print(f"{path.stem:32} [red]invalid: {exc}[/red]", highlight=False)
        return EXIT_OK
    if args.action == "show":
        path = find_profile(args.name)
        p = load_profile(path)
        out.print(f"[bold]{p.name}[/bold]  ({path})")
        for base in _extends_chain(path):
            out.print(f"  extends {base}", highlight=False)
        if p.description:
            out.print(_cite_existing(p.description.strip(), path), markup=False)
        if p.incident:
            out.print("[dim]incident:[/dim] " + _escape(_cite_existing(p.incident.strip(), path)))
        out.print(f"seed {p.seed}, time scale {p.time_scale:g}")
        for lane in p.lanes.values():
            sim = lane.simulator
            where = lane.upstream or (
                f"simulator {sim.tokens_per_second:g} tokens/s, ttft {sim.ttft:g}s, {sim.answer_tokens} tokens"
                + (f", {sim.slots} slots, queue {sim.queue}" if sim and sim.slots else "")
                if sim
                else "simulator"
            )
            out.print(f"  lane {lane.name}: {lane.dialect} -> {where}", highlight=False)
        for f in p.faults:
            attrs = " ".join(f"{k}={v}" for k, v in f.attrs.items())
            out.print(f"  fault {f.name}: {f.fault} on {f.lane} schedule={f.schedule} {attrs}", highlight=False)
        for t in p.toxics:
            out.print(f"  toxic {t.name}: {t.type} {t.stream} on {t.lane} {t.attributes} schedule={t.schedule}")
        for c in p.checks:
            out.print(f"  check {c.name} {c.params or ''}", highlight=False)
        return EXIT_OK
    bad = 0
    for name in args.names:
        try:
            load_profile(name)
            out.print(f"[green]ok[/green]      {name}")
        except ProfileError as exc:
            bad += 1
            out.print(f"[red]invalid[/red] {exc}", highlight=False)
    return EXIT_USAGE if bad else EXIT_OK


_DOC_REF = re.compile(r"(?<![\w/.-])((?:[\w-]+/)*[\w-]+\.md)\b")


def _doc_roots(profile_path: Path) -> list[Path]:
    from .profile import profile_dirs

    root = Path(__file__).resolve().parent.parent
    return [profile_path.parent, root, *profile_dirs(), Path(sys.prefix) / "share" / "routechaos"]


def _cite_existing(text: str, profile_path: Path) -> str:
    """A profile's text with every document it cites (``NAME.md``) that is not in this install
    marked as such: ``profiles show`` points only at files a reader can open."""
    roots = _doc_roots(profile_path)

    def mark(m: re.Match[str]) -> str:
        name = m.group(1)
        return name if any((r / name).is_file() for r in roots) else f"{name} (not in this install)"

    return _DOC_REF.sub(mark, text)


def _extends_chain(path: Path) -> list[Path]:
    """The files a profile extends, nearest first, as found on disk."""
    import yaml

    from .profile import find_profile

    chain: list[Path] = []
    here = path
    while len(chain) < 16:
        try:
            ref = (yaml.safe_load(here.read_text(encoding="utf-8")) or {}).get("extends")
        except (OSError, yaml.YAMLError, AttributeError):
            break
        if isinstance(ref, dict):  # extends: {profile: NAME, lanes: {...}}
            ref = ref.get("profile")
        if not isinstance(ref, str):
            break
        try:
            here = find_profile(ref, relative_to=here.parent)
        except ProfileError:
            break
        chain.append(here)
    return chain


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


# -- report -------------------------------------------------------------------------------------
def cmd_report(args: argparse.Namespace, out: Console) -> int:
    """Re-judge a saved journal, write its HTML report, print a summary (text, JSON or Markdown)."""
    from .checks import evaluate_all, make_check
    from .report import print_summary, write_html_report
    from .report.model import build_model
    from .report.summary import to_json, to_markdown

    path = Path(args.journal)
    if not path.is_file():
        raise UsageError(f"no journal at {path}")
    try:
        journal = Journal.load(path)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    start = next(iter(journal.marks("drill_start")), None)
    time_scale = float(start.detail.get("time_scale", 1.0)) if start else 1.0
    profile = None
    if args.profile:
        profile = load_profile(args.profile)
        checks = [make_check(c.name, c.params) for c in profile.checks]
    elif start and start.detail.get("checks"):
        checks = [make_check(k, v) for item in start.detail["checks"] for k, v in item.items()]
    else:
        checks = []
    judged = journal.rescaled(1 / time_scale) if time_scale != 1.0 else journal
    report = evaluate_all(judged, checks) if checks else None
    target = Path(args.out) if args.out else path.with_name("report.html")
    write_html_report(judged, report, target, profile=profile)
    fmt = getattr(args, "format", "text")
    if fmt == "text":
        print_summary(out, judged, report, profile=profile)
        out.print(f"report  {target}")
    else:
        model = build_model(judged, report, profile)
        if fmt == "json":
            text = json.dumps(to_json(model, journal=str(path), report=str(target)), indent=2, default=str)
        else:
            text = to_markdown(model, report=str(target))
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()
    return EXIT_CHECK_FAILED if report is not None and report.failed() else EXIT_OK


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
    if args.no_drill:
        return EXIT_OK
    return _demo_drill(args, out)


def _demo_drill(args: argparse.Namespace, out: Console) -> int:
    """The reference router agent (examples/) through ultraspeed-capacity-loss, ten times faster."""
    root = Path(__file__).resolve().parent.parent
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
    _serve(profile, args.journal, out, args.ready_file, None)
    return EXIT_OK


# -- toxiproxy ----------------------------------------------------------------------------------
def cmd_toxiproxy(args: argparse.Namespace, out: Console) -> int:
    from .toxiproxy.server import main as toxiproxy_main

    allow = [f"--allow-host={h}" for h in args.allow_host]
    return toxiproxy_main(["--host", args.host, "--port", str(args.port), *allow])


# -- parser -------------------------------------------------------------------------------------
def _time_scale(text: str) -> float:
    """``--time-scale``: refused at once (exit 2) unless a finite number > 0."""
    try:
        return check_time_scale(float(text))
    except ValueError as exc:
        msg = str(exc) if "finite" in str(exc) else f"must be a finite number > 0 (got {text!r})"
        raise argparse.ArgumentTypeError(msg) from None


_LANE_HELP = "rename a profile's lane to the name your agent uses (repeatable), e.g. --lane primary=fast"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="routechaos",
        description="Chaos test harness for LLM routes: lanes that misbehave like real providers.",
    )
    p.add_argument("--version", action="version", version=f"routechaos {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("serve", help="start a profile's lanes and keep them up until interrupted")
    s.add_argument("profile", nargs="?", help="profile name or path (default: two simulated lanes)")
    s.add_argument("--seed", type=int, help="the seed of every seeded fault decision (default: the profile's)")
    s.add_argument("--time-scale", type=_time_scale, help="multiply every time in the profile (0.1: ten times faster)")
    s.add_argument("--journal", help="write the journal (JSON Lines) to this file")
    s.add_argument("--lane", action="append", metavar="PROFILE_LANE=YOUR_LANE", help=_LANE_HELP)
    s.add_argument("--control-port", type=int, default=0, help="control API port (default: any free port)")
    s.add_argument(
        "--toxiproxy",
        action="store_true",
        help="put every lane behind the embedded Toxiproxy (or TOXIPROXY_URL) and print its API URL, "
        "so toxiproxy-cli and Toxiproxy clients can add network faults by hand",
    )
    s.add_argument("--ready-file", help=argparse.SUPPRESS)
    s.set_defaults(func=cmd_serve)

    f = sub.add_parser("fault", help="add, list or remove faults on a running 'routechaos serve'")
    f.add_argument("--control", help="control API URL (default: the serve started in this directory)")
    fsub = f.add_subparsers(dest="action", metavar="ACTION", required=True)
    fa = fsub.add_parser("add", help="add a fault: routechaos fault add overloaded --lane primary retry_after=2")
    fa.add_argument("fault", help="fault name (rate_limit, overloaded, stream_cut, refuse, ...)")
    fa.add_argument("--lane", default="*", help="lane name, or * for every lane")
    fa.add_argument("--name", help="a name to remove it by later")
    fa.add_argument("--schedule", help="YAML/JSON schedule, e.g. '{first: 3}' (default: always)")
    fa.add_argument("attrs", nargs="*", metavar="KEY=VALUE", help="fault attributes")
    fsub.add_parser("list", help="list the running faults")
    fr = fsub.add_parser("remove", help="remove a fault by name ('all' for every fault)")
    fr.add_argument("name", help="the fault's name (see 'routechaos fault list'), or 'all'")
    f.set_defaults(func=cmd_fault)

    d = sub.add_parser(
        "demo", help="stream one completion through two simulated lanes, then a fault drill of the example router"
    )
    d.add_argument("profile", nargs="?", help="profile name or path (default: two simulated lanes)")
    d.add_argument("--prompt", default="Say hello from the premium lane.", help="the prompt streamed through each lane")
    d.add_argument("--journal", help="write the journal (JSON Lines) to this file")
    d.add_argument("--no-drill", action="store_true", help="only stream through the lanes, skip the demo drill")
    d.add_argument("--out", help="directory for the demo drill's journal and report")
    d.set_defaults(func=cmd_demo)

    m = sub.add_parser("sim", help="run one simulated provider on a port")
    m.add_argument(
        "--dialect", default="openai", help="openai, openai-chat, openai-responses, anthropic, gemini, vllm, ollama"
    )
    m.add_argument("--name", default="sim", help="lane name in the journal (default: sim)")
    m.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    m.add_argument("--port", type=int, default=0, help="port to listen on (default: any free port)")
    m.add_argument("--tps", type=float, default=1000.0, help="tokens per second per stream")
    m.add_argument("--ttft", type=float, default=0.05, help="time to first token, seconds")
    m.add_argument("--answer-tokens", type=int, default=32, help="tokens in every canonical answer (default: 32)")
    m.add_argument("--slots", type=int, default=None, help="concurrent generations (default unlimited)")
    m.add_argument("--queue", type=int, default=0, help="calls allowed to wait for a slot")
    m.add_argument("--journal", help="write the journal (JSON Lines) to this file")
    m.add_argument("--ready-file", help=argparse.SUPPRESS)
    m.set_defaults(func=cmd_sim)

    dr = sub.add_parser(
        "drill",
        help="run an agent against a profile's lanes, judge it, write the journal and report",
        description="routechaos drill PROFILE -- COMMAND...: the agent finds the lanes in OPENAI_BASE_URL, "
        "ANTHROPIC_BASE_URL and ROUTECHAOS_LANE_<NAME>_URL. Exit status 1 when a check fails.",
    )
    dr.add_argument("profile", help="profile name or path")
    dr.add_argument("command", nargs="*", help="-- then the agent command")
    dr.add_argument("--seed", type=int, help="the seed of every seeded fault decision (default: the profile's)")
    dr.add_argument("--time-scale", type=_time_scale, help="multiply every time in the profile (0.1: ten times faster)")
    dr.add_argument("--lane", action="append", metavar="PROFILE_LANE=YOUR_LANE", help=_LANE_HELP)
    dr.add_argument("--out", help="directory for journal.jsonl, report.html, checks.json (default routechaos-runs/...)")
    dr.add_argument("--timeout", type=float, default=600.0, help="stop the agent after this many seconds")
    dr.add_argument(
        "--expect-calls",
        type=int,
        metavar="N",
        help="how many calls the agent will make, if known: the live view shows calls done out of N",
    )
    dr.add_argument("--progress-every", type=float, default=1.0, help=argparse.SUPPRESS)
    dr.add_argument(
        "--quiet",
        action="store_true",
        help="no live view (by default: a status region on a terminal, a line per change in a log)",
    )
    dr.set_defaults(func=cmd_drill)

    pr = sub.add_parser("profiles", help="list, show or validate fault profiles")
    psub = pr.add_subparsers(dest="action", metavar="ACTION", required=True)
    psub.add_parser("list", help="the shipped catalogue and profiles in ./fault_profiles")
    ps = psub.add_parser("show", help="what a profile does")
    ps.add_argument("name", help="profile name or path")
    pv = psub.add_parser("validate", help="validate profiles; errors name file, line and field")
    pv.add_argument("names", nargs="+", metavar="PROFILE", help="profile names or paths")
    pr.set_defaults(func=cmd_profiles)

    rp = sub.add_parser("report", help="judge a saved journal again and write its HTML report")
    rp.add_argument("journal", help="journal.jsonl written by a drill")
    rp.add_argument("--profile", help="judge with this profile's checks (default: the checks the drill ran)")
    rp.add_argument("--out", help="HTML file to write (default: report.html beside the journal)")
    rp.add_argument(
        "--format",
        choices=("text", "json", "md"),
        default="text",
        help="what to print: the terminal summary (text), JSON for CI bots, or Markdown for a pull-request "
        "comment or $GITHUB_STEP_SUMMARY (default: text)",
    )
    rp.set_defaults(func=cmd_report)

    t = sub.add_parser("toxiproxy", help="run the embedded Toxiproxy-compatible server")
    t.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    t.add_argument("--port", type=int, default=8474, help="API port (default: 8474, Toxiproxy's)")
    t.add_argument("--allow-host", action="append", default=[], metavar="NAME", help="a Host name besides the address")
    t.set_defaults(func=cmd_toxiproxy)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    agent: list[str] = []
    if "--" in argv and argv and argv[0] == "drill":
        cut = argv.index("--")
        argv, agent = argv[:cut], argv[cut + 1 :]
    args = parser.parse_args(argv)
    if agent:
        args.command = list(getattr(args, "command", []) or []) + agent
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
