"""``routechaos serve``, ``sim``, ``toxiproxy`` and ``fault``: lanes kept up by hand, and live changes."""

from __future__ import annotations

import argparse
import os
import time

from rich.console import Console

from ..profile import Profile
from .common import EXIT_OK, UsageError, load_profile_arg
from .servestate import choose_serve, remove_state, write_state
from .signals import StopSignals


def _serve(
    profile: Profile,
    journal_path: str | None,
    out: Console,
    ready_file: str | None,
    control_port: int | None = 0,
    toxiproxy: bool = False,
    name: str | None = None,
) -> None:
    """Run a drill with no workload until SIGINT/SIGTERM/SIGHUP: the lanes of a hand-driven drill.
    With a control API, a state file lets ``routechaos fault`` here find it by ``name``."""
    from ..drill import Drill

    with StopSignals() as signals:
        drill = Drill(
            profile,
            journal_path=journal_path,
            control=control_port is not None,
            control_port=control_port or 0,
            network_layer=toxiproxy,
        )
        drill.start()
        state_path = None
        try:
            for lane, spec in profile.lanes.items():
                print(f"lane {lane} {spec.dialect} {drill.url(lane)}", flush=True)
            state: dict[str, object] = {"name": name or profile.name, "lanes": drill.urls, "started": time.time()}
            if drill.control_url:
                state["control"] = drill.control_url
                print(f"control {drill.control_url}", flush=True)
            if drill.toxiproxy_api:
                state["toxiproxy"] = drill.toxiproxy_api
                print(f"toxiproxy {drill.toxiproxy_api}", flush=True)
            if drill.control_url:
                state_path = write_state(state)
            if ready_file:
                with open(ready_file, "w", encoding="utf-8") as fh:
                    fh.write("\n".join(f"{n} {u}" for n, u in drill.urls.items()) + "\n")
            while not signals.stop.wait(0.5):
                pass
        finally:
            remove_state(state_path)
            drill.stop()
            where = f" in {journal_path}" if journal_path else ""
            out.print(f"[dim]{len(drill.journal)} attempt(s) recorded{where}[/dim]")


def cmd_serve(args: argparse.Namespace, out: Console) -> int:
    profile = load_profile_arg(args.profile, args.seed, args.time_scale, args.lane or ())
    _serve(profile, args.journal, out, args.ready_file, args.control_port, args.toxiproxy, args.name)
    return EXIT_OK


# -- fault (live changes through the control API) ------------------------------------------------
def _control_url(args: argparse.Namespace) -> str:
    """``--control URL``, else the serve ``--serve`` names, else ``$ROUTECHAOS_CONTROL_URL`` (an
    agent inside a drill), else the only serve running in this directory."""
    if args.control:
        return args.control.rstrip("/")
    env = os.environ.get("ROUTECHAOS_CONTROL_URL")
    if env and not args.serve:
        return env.rstrip("/")
    return str(choose_serve(args.serve)["control"]).rstrip("/")


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


# -- sim ----------------------------------------------------------------------------------------
def cmd_sim(args: argparse.Namespace, out: Console) -> int:
    """One simulated provider on a fixed port (a lane with no faults)."""
    from ..profile import LaneSpec
    from ..simulator import SimSettings

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
    from ..toxiproxy.server import main as toxiproxy_main

    allow = [f"--allow-host={h}" for h in args.allow_host]
    return toxiproxy_main(["--host", args.host, "--port", str(args.port), *allow])
