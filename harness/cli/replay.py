"""``routechaos record`` and ``routechaos replay``: drills that write a cassette, and drills re-run.

``record PROFILE --cassette FILE -- COMMAND`` is a drill in which every lane with a real upstream
(``upstream:``) records its exchanges to FILE. ``replay RUN_DIR_OR_JOURNAL -- COMMAND`` runs the
recorded drill's profile again with its seed and time scale, its fault decisions taken from its
journal attempt by attempt (:mod:`harness.replay`), and says where the new run diverged.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

from rich.console import Console

from ..journal import Journal, JournalError
from ..jsonl import dumps
from ..profile import Profile
from .common import UsageError, load_profile_arg

__all__ = ["add_parsers", "cmd_record", "cmd_replay"]


def _agent_options(p: argparse.ArgumentParser) -> None:
    from ..agentproc import GRACE

    p.add_argument("command", nargs="*", help="-- then the agent command")
    p.add_argument("--out", help="directory for journal.jsonl, report.html, checks.json (default routechaos-runs/...)")
    p.add_argument("--timeout", type=float, default=600.0, help="stop the agent after this many seconds")
    p.add_argument("--grace", type=float, default=GRACE, help="seconds between SIGTERM and SIGKILL for the agent")
    p.add_argument("--expect-calls", type=int, metavar="N", help="calls the agent will make, for the live view")
    p.add_argument("--progress-every", type=float, default=1.0, help=argparse.SUPPRESS)
    p.add_argument("--quiet", action="store_true", help="no live view")
    p.set_defaults(agent_has=[], agent_lacks=[])


def add_parsers(sub: Any, time_scale: Any, lane_help: str) -> None:
    """The ``record`` and ``replay`` subcommands (called by :func:`harness.cli.build_parser`)."""
    rec = sub.add_parser(
        "record",
        help="run an agent against a profile whose lanes forward to real upstreams, recording every exchange",
        description="routechaos record PROFILE --cassette FILE -- COMMAND...: a drill in which every lane with "
        "upstream: writes its exchanges (with their timing, credentials redacted) to FILE, a new cassette "
        "(docs/cassettes.md) that replay: can answer from later.",
    )
    rec.add_argument("profile", help="profile name or path (its lanes with upstream: are recorded)")
    rec.add_argument("--cassette", required=True, help="the new cassette file (JSON Lines)")
    rec.add_argument("--seed", type=int, help="the seed of every seeded fault decision (default: the profile's)")
    rec.add_argument("--time-scale", type=time_scale, help="multiply every time in the profile")
    rec.add_argument("--lane", action="append", metavar="PROFILE_LANE=YOUR_LANE", help=lane_help)
    _agent_options(rec)
    rec.set_defaults(func=cmd_record)

    rep = sub.add_parser(
        "replay",
        help="re-run a recorded drill: same profile, seed and fault decisions in the same order; report divergence",
        description="routechaos replay RUN_DIR_OR_JOURNAL -- COMMAND...: the drill's profile again, with its seed "
        "and time scale, and the fault decision of the k-th attempt on each lane taken from the k-th attempt "
        "of the journal; then where the new run diverged (written to divergence.json). Exit status 1 when a "
        "check fails.",
    )
    rep.add_argument("run", help="a drill's run directory, or its journal.jsonl")
    rep.add_argument("--profile", help="the profile to run (default: the one the journal's drill ran)")
    rep.add_argument("--time-scale", type=time_scale, help="multiply every time (default: the recorded drill's)")
    rep.add_argument("--lane", action="append", metavar="PROFILE_LANE=YOUR_LANE", help=lane_help)
    _agent_options(rep)
    rep.set_defaults(func=cmd_replay)


def _command(args: argparse.Namespace, verb: str) -> list[str]:
    command = list(args.command)
    if not command:
        raise UsageError(f"give the agent command after --, e.g. routechaos {verb} ... -- python agent.py")
    if shutil.which(command[0]) is None and not Path(command[0]).exists():
        raise UsageError(f"agent command not found: {command[0]}")
    return command


def cmd_record(args: argparse.Namespace, out: Console) -> int:
    """A drill whose forwarding lanes record to ``--cassette``."""
    from .drill import run_drill

    command = _command(args, "record")
    profile = load_profile_arg(args.profile, args.seed, args.time_scale, args.lane or ())
    forwarding = [name for name, spec in profile.lanes.items() if spec.upstream is not None]
    if not forwarding:
        raise UsageError(
            f"profile {profile.name} has no lane with upstream: (a real provider, or another lane): "
            "record writes what such a lane's upstream answers"
        )
    cassette = Path(args.cassette)
    if cassette.exists():
        raise UsageError(f"cassette {cassette} already exists: a recording never overwrites one")
    for name in forwarding:
        profile.lanes[name].record = str(cassette)

    def done(drill: Any, run_dir: Path, out: Console) -> None:
        from ..cassette import Cassette

        n = len(Cassette.load(cassette).exchanges) if cassette.exists() else 0
        out.print(f"cassette {cassette}: {n} exchanges recorded on {', '.join(forwarding)}")

    return run_drill(profile, command, args, out, after=done)


def _recorded_profile(args: argparse.Namespace, recorded: Journal, where: Path) -> Profile:
    start = next(iter(recorded.marks("drill_start")), None)
    if start is None:
        raise UsageError(f"{where} is not a drill's journal (no drill_start mark): nothing to replay")
    detail = start.detail
    source = args.profile or detail.get("source")
    if not source or (not args.profile and not Path(str(source)).is_file()):
        raise UsageError(
            f"the profile the drill ran ({source or 'not recorded'}) is not a file here: give it with --profile"
        )
    seed = detail.get("seed")
    scale = args.time_scale if args.time_scale is not None else detail.get("time_scale")
    profile = load_profile_arg(str(source), seed if isinstance(seed, int) else None, scale, args.lane or ())
    lanes = [str(x) for x in detail.get("lanes") or []]
    if lanes and sorted(lanes) != sorted(profile.lanes):
        raise UsageError(
            f"the recorded drill had lanes {', '.join(lanes)}, the profile has {', '.join(profile.lanes)}: "
            "rename them with --lane PROFILE_LANE=YOUR_LANE as the drill did"
        )
    return profile


def cmd_replay(args: argparse.Namespace, out: Console) -> int:
    """The recorded drill again, decisions from its journal; the divergence printed and written."""
    from ..replay import ReplayPlan, diverged, journal_of
    from .drill import run_drill

    command = _command(args, "replay")
    try:
        path = journal_of(args.run)
        recorded = Journal.load(path)
    except (FileNotFoundError, JournalError) as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"cannot read {args.run}: {exc.strerror}") from None
    profile = _recorded_profile(args, recorded, path)
    out.print(f"replaying {path}: {len(recorded)} recorded attempts, their fault decisions in order")

    def plan(profile: Profile, journal: Journal) -> ReplayPlan:
        return ReplayPlan(profile, journal, recorded)

    def done(drill: Any, run_dir: Path, out: Console) -> None:
        d = diverged(recorded, drill.journal)
        (run_dir / "divergence.json").write_text(dumps({"recorded": str(path), **d.to_json()}, indent=2))
        out.print(("[green]" if d.same else "[yellow]") + d.summary() + ("[/green]" if d.same else "[/yellow]"))
        out.print(f"divergence {run_dir / 'divergence.json'}")

    return run_drill(profile, command, args, out, faults=plan, after=done)
