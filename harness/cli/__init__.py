"""The ``routechaos`` command: drills, serves, faults by hand, profiles and reports.

Exit codes: 0 success, 1 a check failed (or the agent crashed or timed out), 2 usage or profile
error, 3 a port could not be bound, 128 + N a drill interrupted by signal N (130 SIGINT, 143 SIGTERM).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape

from ..agentproc import GRACE
from ..journal import JournalExistsError
from ..ports import BIND_ERRNOS
from ..profile import ProfileError, check_time_scale
from ..version import __version__
from .catalogue import cmd_profiles, cmd_report
from .common import EXIT_CHECK_FAILED, EXIT_OK, EXIT_PORT, EXIT_USAGE, UsageError
from .demo import cmd_demo
from .drill import cmd_drill
from .replay import add_parsers as add_record_replay
from .serve import cmd_fault, cmd_serve, cmd_sim, cmd_toxiproxy

__all__ = ["EXIT_CHECK_FAILED", "EXIT_OK", "EXIT_PORT", "EXIT_USAGE", "UsageError", "build_parser", "main"]


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
    s.add_argument("--name", help="a name for 'routechaos fault --serve NAME' (default: the profile's name)")
    s.add_argument("--ready-file", help=argparse.SUPPRESS)
    s.set_defaults(func=cmd_serve)

    f = sub.add_parser("fault", help="add, list or remove faults on a running 'routechaos serve'")
    f.add_argument("--control", help="control API URL (default: the serve started in this directory)")
    f.add_argument(
        "--serve",
        metavar="NAME|PID|URL",
        help="which 'routechaos serve' of this directory to drive, when several are running",
    )
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

    _RAY_HELP = (
        "run the lanes as Ray actors, replicas: N per lane, one coordinator for every fault decision "
        "(pip install 'routechaos[ray]'); ADDRESS: a Ray cluster (auto, ray://HEAD:10001), none: a local Ray "
        "for this drill alone. Put -- before the agent command"
    )
    dr = sub.add_parser(
        "drill",
        help="run an agent against a profile's lanes, judge it, write the journal and report",
        description="routechaos drill PROFILE -- COMMAND...: the agent finds the lanes in OPENAI_BASE_URL, "
        "ANTHROPIC_BASE_URL and ROUTECHAOS_LANE_<NAME>_URL. Exit status 1 when a check fails; "
        "128 + N when signal N interrupted it (130 Ctrl-C, 143 SIGTERM), after writing the journal and report.",
    )
    dr.add_argument("profile", help="profile name or path")
    dr.add_argument("command", nargs="*", help="-- then the agent command")
    dr.add_argument("--seed", type=int, help="the seed of every seeded fault decision (default: the profile's)")
    dr.add_argument("--time-scale", type=_time_scale, help="multiply every time in the profile (0.1: ten times faster)")
    dr.add_argument("--lane", action="append", metavar="PROFILE_LANE=YOUR_LANE", help=_LANE_HELP)
    dr.add_argument("--out", help="directory for journal.jsonl, report.html, checks.json (default routechaos-runs/...)")
    dr.add_argument("--ray", nargs="?", const="", metavar="ADDRESS", help=_RAY_HELP)
    dr.add_argument(
        "--timeout", type=float, default=600.0, help="stop the agent (its whole process group) after this many seconds"
    )
    dr.add_argument(
        "--grace",
        type=float,
        default=GRACE,
        help=f"seconds the agent has after SIGTERM before SIGKILL, on timeout or interruption (default {GRACE:g})",
    )
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
    from ..checks.base import CAPABILITIES

    for flag, what in (("--agent-has", "has"), ("--agent-lacks", "lacks")):
        dr.add_argument(
            flag,
            action="append",
            default=[],
            choices=sorted(CAPABILITIES),
            metavar="CAPABILITY",
            help=f"the agent {what} this capability ({', '.join(CAPABILITIES)}), for checks with requires:; "
            "otherwise it is read from the journal",
        )
    dr.set_defaults(func=cmd_drill)

    add_record_replay(sub, _time_scale, _LANE_HELP)

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
    if "--" in argv and argv and argv[0] in ("drill", "record", "replay"):
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
    except (ProfileError, UsageError, JournalExistsError) as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        return EXIT_USAGE
    except OSError as exc:
        if exc.errno in BIND_ERRNOS:  # a PortError names what could not listen, and where
            err.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
            return EXIT_PORT
        raise
    except KeyboardInterrupt:
        return 130
