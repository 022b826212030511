"""``routechaos profiles`` and ``routechaos report``: the catalogue, and saved journals judged again."""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from ..journal import Journal
from ..jsonl import brief
from ..profile import ProfileError, load_profile
from .common import EXIT_CHECK_FAILED, EXIT_OK, EXIT_USAGE, UsageError


def cmd_profiles(args: argparse.Namespace, out: Console) -> int:
    from ..profile import find_profile, profile_dirs

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


# -- report -------------------------------------------------------------------------------------
_DOC_REF = re.compile(r"(?<![\w/.-])((?:[\w-]+/)*[\w-]+\.md)\b")


def _doc_roots(profile_path: Path) -> list[Path]:
    from ..profile import profile_dirs

    root = Path(__file__).resolve().parents[2]
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

    from ..profile import find_profile

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


def cmd_report(args: argparse.Namespace, out: Console) -> int:
    """Re-judge a saved journal, write its HTML report, print a summary (text, JSON or Markdown).

    A journal that cannot be read (a bad line, a ``drill_start`` whose checks or time scale do not
    fit) is exit 2 with a message naming file and line; a torn last line is skipped with a warning,
    and a drill that was interrupted or cut short (no ``drill_stop``: its process died) is said so
    before its verdict."""
    from ..checks import evaluate_all, make_check, make_checks
    from ..report import print_summary, write_html_report
    from ..report.model import build_model
    from ..report.summary import to_json, to_markdown

    path = Path(args.journal)
    if not path.is_file():
        raise UsageError(f"no journal at {path}")
    try:
        journal = Journal.load(path)
    except (OSError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    for warning in journal.warnings:
        out.print(f"[yellow]warning:[/yellow] {escape(warning)}")
    start = next(iter(journal.marks("drill_start")), None)
    time_scale = start.detail.get("time_scale", 1.0) if start else 1.0
    if isinstance(time_scale, bool) or not isinstance(time_scale, int | float) or not 0 < time_scale < math.inf:
        raise UsageError(f"{path}: drill_start: time_scale {brief(time_scale)} is not a positive number")
    profile = None
    try:
        if args.profile:
            profile = load_profile(args.profile)
            checks = [make_check(c.name, c.params) for c in profile.checks]
        else:
            checks = make_checks(start.detail.get("checks")) if start else []
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{path}: drill_start: checks: {exc}") from None
    judged = journal.rescaled(1 / time_scale) if time_scale != 1.0 else journal
    capabilities = start.detail.get("capabilities") if start else None
    if not isinstance(capabilities, dict):
        capabilities = None
    report = evaluate_all(judged, checks, capabilities=capabilities) if checks else None
    interrupted = journal.interruption() if getattr(args, "format", "text") == "text" else None
    if interrupted == "cut short":
        out.print(
            "[yellow]this drill was cut short: its journal has no drill_stop (the drill's process died); "
            "attempts open then are missing, and the checks judge what was journaled[/yellow]"
        )
    elif interrupted:
        out.print(f"[yellow]this drill was interrupted ({escape(interrupted)}) before its agent finished[/yellow]")
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
