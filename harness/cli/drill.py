"""``routechaos drill``: start a profile's lanes, run the agent, judge, write the run directory."""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from rich.console import Console

from ..profile import Profile
from ..redact import redact_text
from .common import EXIT_CHECK_FAILED, EXIT_OK, UsageError, load_profile_arg


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
    profile = load_profile_arg(args.profile, args.seed, args.time_scale, getattr(args, "lane", None) or ())
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
