"""pytest plugin: fault drills as fixtures.

Registered under the ``pytest11`` entry point as ``routechaos`` (or load it with
``-p harness.pytest_plugin``)::

    import pytest

    @pytest.mark.chaos_profile("ultraspeed-capacity-loss", time_scale=0.05)
    def test_router_degrades_gracefully(chaos):
        router = MyRouter(primary=chaos.base_url("ultraspeed"), fallback=chaos.url("stable"))
        for i in range(20):
            chaos.call(router.complete, f"question {i}")
        chaos.assert_graceful()

Fixtures: ``chaos`` (a started :class:`~harness.drill.Drill` for the test's profile, stopped and
its toxics removed even when the test fails) and ``chaos_factory`` (drills built in code from a
:class:`~harness.profile.Profile` or a dict). Options and ini settings are namespaced
``--routechaos-*`` / ``routechaos_*``. Each test keeps its own journal; under pytest-xdist every
worker's lanes bind their own ephemeral ports.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .drill import Drill
from .lanemap import UnknownLane
from .profile import Profile, check_time_scale, profile_from_dict

__all__ = ["chaos", "chaos_factory"]

_OPTIONS = {
    "profile_dir": ("directory searched for profile names (before ./fault_profiles)", None),
    "seed": ("seed for every drill (overrides the profile's)", None),
    "time_scale": ("multiply every time in profiles, e.g. 0.1 to run ten times faster", None),
    "journal_dir": ("keep each test's journal (JSON Lines) in this directory", None),
    "report_dir": ("write an HTML report per drill into this directory", None),
    "toxiproxy_url": ("a real Toxiproxy server to use for profiles' toxics (default: embedded)", None),
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("routechaos", "routechaos fault drills")
    for name, (help_text, default) in _OPTIONS.items():
        flag = "--routechaos-" + name.replace("_", "-")
        group.addoption(flag, dest=f"routechaos_{name}", default=None, help=help_text)
        parser.addini(f"routechaos_{name}", help_text, default=default)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "chaos_profile(name_or_path, **overrides): the fault profile for the `chaos` fixture "
        "(overrides: seed, time_scale, journal_path, toxiproxy_url, lanes={profile_lane: your_lane})",
    )
    profile_dir = _setting(config, "profile_dir")
    if profile_dir:
        existing = os.environ.get("ROUTECHAOS_PROFILE_DIR")
        path = str(Path(profile_dir).resolve())
        os.environ["ROUTECHAOS_PROFILE_DIR"] = path + (os.pathsep + existing if existing else "")


def _setting(config: pytest.Config, name: str) -> Any:
    value = config.getoption(f"routechaos_{name}", default=None)
    if value in (None, ""):
        value = config.getini(f"routechaos_{name}") or None
    if value is None and name == "toxiproxy_url":
        value = os.environ.get("TOXIPROXY_URL") or None
    return value


def _journal_path(request: pytest.FixtureRequest, suffix: str = "") -> Path | None:
    directory = _setting(request.config, "journal_dir")
    if not directory:
        return None
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)[-150:]
    return Path(directory) / f"{stem}{suffix}{'.' + worker if worker else ''}.jsonl"


def _drill_kwargs(request: pytest.FixtureRequest, overrides: dict[str, Any]) -> dict[str, Any]:
    cfg = request.config
    kw: dict[str, Any] = {}
    seed = overrides.pop("seed", None) if "seed" in overrides else _setting(cfg, "seed")
    if seed is not None:
        kw["seed"] = int(seed)
    scale = overrides.pop("time_scale", None) if "time_scale" in overrides else _setting(cfg, "time_scale")
    if scale is not None:
        try:
            kw["time_scale"] = check_time_scale(float(scale))
        except ValueError as exc:
            raise pytest.UsageError(f"routechaos time_scale {exc}") from None
    kw["toxiproxy_url"] = overrides.pop("toxiproxy_url", None) or _setting(cfg, "toxiproxy_url")
    if "journal_path" in overrides:
        kw["journal_path"] = overrides.pop("journal_path")
    if "lanes" in overrides:
        kw["lanes"] = overrides.pop("lanes")
    if overrides:
        raise pytest.UsageError(f"chaos_profile: unknown override(s) {', '.join(overrides)}")
    return kw


_interrupted: list[tuple[str, float]] = []  # why and when (monotonic) this session was interrupted


def pytest_keyboard_interrupt(excinfo: pytest.ExceptionInfo[BaseException]) -> None:
    """Ctrl-C (or ``pytest.exit``): pytest tears the fixtures down next, and the drills still
    running stop as interrupted: journal complete (open attempts as outcome unknown), a
    ``drill_stop`` that says why, and the report marked interrupted."""
    why = "SIGINT" if isinstance(excinfo.value, KeyboardInterrupt) else "pytest.exit"
    _interrupted[:] = [(why, time.monotonic())]


def _stop(request: pytest.FixtureRequest, drill: Drill) -> None:
    """Stop ``drill``, as interrupted if the session was (Ctrl-C), else as finished."""
    if request.session.exitstatus != pytest.ExitCode.INTERRUPTED:
        drill.stop()
        return
    why, when = _interrupted[0] if _interrupted else ("interrupted", time.monotonic())
    drill.stop(interrupted=why, interrupted_at=max(0.0, drill.journal.now() - (time.monotonic() - when)))


def _fresh(path: Path | None) -> Path | None:
    """A journal path of this plugin's naming, freed of an earlier session's journal (a journal is
    never appended to: the earlier run's file is replaced, not continued)."""
    if path is not None:
        path.unlink(missing_ok=True)
    return path


def _finish(request: pytest.FixtureRequest, drill: Drill) -> None:
    _stop(request, drill)
    report_dir = _setting(request.config, "report_dir")
    if report_dir:
        from .report import write_html_report

        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)[-150:]
        write_html_report(
            drill.profile_time_journal(), drill.evaluate(), Path(report_dir) / f"{stem}.html", profile=drill.profile
        )


@pytest.fixture
def chaos(request: pytest.FixtureRequest) -> Iterator[Drill]:
    """A started drill for the test's ``@pytest.mark.chaos_profile`` (default: two simulated lanes)."""
    marker = request.node.get_closest_marker("chaos_profile")
    if marker is None:
        from .profile import default_profile

        profile: Profile | str = default_profile()
        overrides: dict[str, Any] = {}
    else:
        if not marker.args:
            raise pytest.UsageError("chaos_profile needs a profile name or path")
        profile = marker.args[0]
        overrides = dict(marker.kwargs)
    kw = _drill_kwargs(request, overrides)
    if "journal_path" not in kw:
        kw["journal_path"] = _fresh(_journal_path(request))
    try:
        drill = Drill(profile, **kw)
    except UnknownLane as exc:
        raise pytest.UsageError(f"chaos_profile lanes=: {exc}") from None
    drill.start()
    try:
        yield drill
    finally:
        _finish(request, drill)


@pytest.fixture
def chaos_factory(request: pytest.FixtureRequest) -> Iterator[Callable[..., Drill]]:
    """Build and start drills from a :class:`Profile` or a profile dict; all stopped after the test."""
    drills: list[Drill] = []

    def make(profile: Profile | dict[str, Any] | str, **overrides: Any) -> Drill:
        if isinstance(profile, dict):
            profile = profile_from_dict(profile)
        kw = _drill_kwargs(request, dict(overrides))
        if "journal_path" not in kw:
            kw["journal_path"] = _fresh(_journal_path(request, f"-{len(drills)}"))
        drill = Drill(profile, **kw)
        drill.start()
        drills.append(drill)
        return drill

    yield make
    for d in reversed(drills):
        _finish(request, d)
