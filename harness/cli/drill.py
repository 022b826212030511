"""``routechaos drill``: start a profile's lanes, run the agent, judge, write the run directory."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from ..agentproc import AgentProcess
from ..jsonl import dumps
from ..profile import Profile
from ..redact import redact_text
from .common import EXIT_CHECK_FAILED, EXIT_OK, UsageError, load_profile_arg
from .raydrill import ray_drill
from .signals import StopSignals

if TYPE_CHECKING:  # imported when a drill runs: the lanes pull in aiohttp, other commands need not
    from ..checks import Report
    from ..drill import Drill


#: what a drill writes into its run directory: one that holds any of them holds a run
RUN_FILES = ("journal.jsonl", "agent.log", "checks.json", "report.html")
RUNS = Path("routechaos-runs")


def claim_run_dir(out: str | None, profile: Profile) -> Path:
    """The directory this drill alone writes to.

    ``--out DIR`` is used if it holds no run yet, and refused otherwise: a drill never appends to
    another's journal or overwrites its report. Without ``--out``, a new
    ``routechaos-runs/PROFILE-YYYYmmdd-HHMMSS`` is created, with ``-2``, ``-3`` ... after it when
    that second is taken: ``mkdir`` either creates or fails, so drills started at once, in one
    process or several, each get their own. (Two drills racing for one ``--out`` are kept apart
    by the journal, which is created exclusively.)"""
    if out:
        run_dir = Path(out)
        held = [name for name in RUN_FILES if (run_dir / name).exists()]
        if held:
            raise UsageError(
                f"--out {run_dir} already holds a run ({', '.join(held)}): a drill never appends to another's "
                "journal or overwrites its report; choose a new directory, or leave --out out for a fresh one"
            )
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot use --out {run_dir}: {exc.strerror}") from None
        return run_dir
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", profile.name).strip("._") or "drill"
    stem += "-" + time.strftime("%Y%m%d-%H%M%S")
    try:
        RUNS.mkdir(parents=True, exist_ok=True)
        for n in range(1, 10_000):
            run_dir = RUNS / (stem if n == 1 else f"{stem}-{n}")
            with contextlib.suppress(FileExistsError):
                run_dir.mkdir()
                return run_dir
    except OSError as exc:
        raise UsageError(f"cannot create a run directory in {RUNS}: {exc.strerror}") from None
    raise UsageError(f"{RUNS} has 10,000 runs of {stem}: remove some")




@dataclass
class AgentEnd:
    """How the agent's run ended: its exit status, and why the drill stopped it, if it did."""

    status: int | None = None  # None: it never started
    interrupted: str | None = None  # a signal's name, or "timeout"
    interrupted_at: float | None = None  # journal seconds: when the drill began to stop the agent


def run_agent(
    drill: Drill, command: list[str], log_path: Path, args: argparse.Namespace, out: Console, signals: StopSignals
) -> AgentEnd:
    """Run the agent in its own process group until it exits, ``--timeout`` passes or a stop
    signal comes; then end its whole group (SIGTERM, SIGKILL after ``--grace``), grandchildren
    and what it left running included."""
    grace = args.grace
    if signals.stop.is_set():  # stopped while the lanes were starting: no agent to start
        return AgentEnd(None, signals.name, drill.journal.now())
    env = {**os.environ, **drill.env()}
    try:
        log = open(log_path, "xb")  # closed below, once the agent's whole group ended
    except FileExistsError:
        raise UsageError(f"{log_path} already exists: another drill writes this run directory") from None
    from ..report.live import LiveView

    live = LiveView(
        out, drill.journal, drill.profile, expected_calls=args.expect_calls, quiet=args.quiet, every=args.progress_every
    )
    with log, live:
        try:
            agent = AgentProcess(command, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        except OSError as exc:
            raise UsageError(f"cannot start agent command {command[0]}: {exc.strerror}") from None
        deadline = time.monotonic() + args.timeout
        interrupted: str | None = None
        interrupted_at: float | None = None
        try:
            while agent.poll() is None:
                now = time.monotonic()
                if signals.stop.is_set():
                    interrupted, interrupted_at = signals.name, drill.journal.now()
                    out.print(
                        f"[yellow]interrupted by {interrupted}: stopping the agent (SIGTERM to its process group, "
                        f"SIGKILL after {grace:g}s), then writing the journal, checks and report[/yellow]"
                    )
                    break
                if now > deadline:
                    interrupted, interrupted_at = "timeout", drill.journal.now()
                    out.print(f"[red]agent did not finish within {args.timeout:g}s: stopping its process group[/red]")
                    break
                signals.stop.wait(0.05)
        finally:
            status = agent.end(grace, hurry=signals.hurry)
    return AgentEnd(status, interrupted, interrupted_at)


def write_results(drill: Drill, run_dir: Path, out: Console) -> Report:
    """Judge the drill and write checks.json, report.html and the summary; an interrupted drill
    says so in all three (``interrupted``: why, or null)."""
    from ..report import print_summary, write_html_report

    report = drill.evaluate()
    journal = drill.profile_time_journal()
    interrupted = journal.interruption()
    out.print()
    print_summary(out, journal, report, profile=drill.profile)
    if interrupted:
        out.print(
            f"[yellow]drill interrupted ({interrupted}): the agent was stopped before it finished; attempts open "
            "then are journaled with outcome unknown, and the checks judged the evidence up to then[/yellow]"
        )
    html_path = write_html_report(journal, report, run_dir / "report.html", profile=drill.profile)
    (run_dir / "checks.json").write_text(dumps({**report.to_json(), "interrupted": interrupted}, indent=2))
    out.print(f"journal {drill.journal_path}")
    out.print(f"report  {html_path}")
    return report


def cmd_drill(args: argparse.Namespace, out: Console) -> int:
    """Start the lanes, run the agent with their URLs in its environment, judge, report."""
    command = list(args.command)
    if not command:
        raise UsageError("give the agent command after --, e.g. routechaos drill PROFILE -- python agent.py")
    if shutil.which(command[0]) is None and not Path(command[0]).exists():
        raise UsageError(f"agent command not found: {command[0]}")
    profile = load_profile_arg(args.profile, args.seed, args.time_scale, getattr(args, "lane", None) or ())
    return run_drill(profile, command, args, out)


def run_drill(
    profile: Profile,
    command: list[str],
    args: argparse.Namespace,
    out: Console,
    *,
    faults: Callable[..., Any] | None = None,
    after: Callable[[Drill, Path, Console], None] | None = None,
) -> int:
    """The drill of ``cmd_drill`` for a loaded profile; ``faults`` makes the lanes' fault hook
    (``Drill(faults=)``), ``after`` runs once the results are written (``routechaos replay``)."""
    from ..drill import Drill
    from ..report.live import log_tail

    run_dir = claim_run_dir(args.out, profile)
    log_path = run_dir / "agent.log"
    with StopSignals() as signals:
        has, lacks = getattr(args, "agent_has", None) or [], getattr(args, "agent_lacks", None) or []
        capabilities = {**dict.fromkeys(has, True), **dict.fromkeys(lacks, False)}
        if getattr(args, "ray", None) is not None:  # the optional engine (harness/ray/): lanes as Ray actors
            drill = ray_drill(args.ray, profile, run_dir / "journal.jsonl", capabilities)
        else:
            drill = Drill(
                profile, journal_path=run_dir / "journal.jsonl", control=True, capabilities=capabilities, faults=faults
            )
        drill.start()
        ended = AgentEnd()
        try:
            out.print(f"[bold]drill[/bold] {profile.name} (seed {profile.seed}, time scale {profile.time_scale:g})")
            for name, url in drill.urls.items():
                out.print(f"  lane {name} {profile.lanes[name].dialect} {url}")
            out.print(f"  control {drill.control_url}")
            out.print(f"  agent: {redact_text(' '.join(command))}  (output: {log_path})")
            ended = run_agent(drill, command, log_path, args, out, signals)
        finally:
            drill.stop(interrupted=ended.interrupted or signals.name, interrupted_at=ended.interrupted_at)
            for line in getattr(drill, "died_summary", list)():  # a Ray drill names the actors that died
                out.print(f"[red]{line}[/red]")
        report = write_results(drill, run_dir, out)
        if after is not None:
            after(drill, run_dir, out)
    if signals.exit_code is not None:
        return signals.exit_code
    if ended.interrupted == "timeout":
        return EXIT_CHECK_FAILED
    if ended.status not in (0, None):
        out.print(f"[red]agent exited with status {ended.status}[/red]; the end of its output ({log_path}):")
        for line in log_tail(log_path) or ["(no output)"]:
            out.print("  " + line, markup=False, highlight=False)
        return EXIT_CHECK_FAILED
    return EXIT_CHECK_FAILED if report.failed() else EXIT_OK
