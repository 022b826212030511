"""The paths a benchmark compares, each hosted by its own process (see :mod:`benchlib.servers`):
``direct`` (client -> simulator), ``tcp-relay``, ``toxiproxy`` (a real server at
``$TOXIPROXY_URL``), ``emb-toxiproxy``, ``lane`` (no fault: the pass-through path), ``lane-full``
(every event through the full event path) and ``lane-uvloop`` (the lane on uvloop)."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from typing import Any

from .procs import Child, spawn, toxiproxy_create, toxiproxy_delete, toxiproxy_pid

ALL_PATHS = ["direct", "tcp-relay", "toxiproxy", "emb-toxiproxy", "lane", "lane-full", "lane-uvloop"]
DEFAULT_PATHS = ["direct", "tcp-relay", "toxiproxy", "lane", "lane-full", "lane-uvloop"]
LANE_KINDS = {"lane": ("lane",), "lane-full": ("lane-full",), "lane-uvloop": ("lane", "--loop", "uvloop")}


@dataclass
class Path:
    name: str
    stream: int  # port of the stream lane behind this path
    small: int
    tool: int
    pid: int | None  # the process hosting the path (None: direct, or a Toxiproxy we cannot see)
    child: Child | None = None
    tox: tuple[str, list[str]] | None = None
    note: str = ""

    def close(self) -> None:
        if self.tox is not None:
            toxiproxy_delete(*self.tox)
        if self.child is not None:
            self.child.stop()


@dataclass
class Bench:
    sim: Child
    paths: list[Path] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    def close(self) -> None:
        for p in self.paths:
            p.close()
        self.sim.stop()


def start(wanted: list[str], tps: float, answer_tokens: int, journal: str = "file") -> Bench:
    """The simulator and every wanted path that can run here; the others in ``skipped`` with why."""
    sim = spawn("sim", "--tps", str(tps), "--answer-tokens", str(answer_tokens))
    bench = Bench(sim)
    targets = list(sim.info["ports"])
    try:
        for name in wanted:
            why = _unavailable(name)
            if why:
                bench.skipped[name] = why
                continue
            if name == "direct":
                bench.paths.append(Path(name, *targets, pid=None))
            elif name == "tcp-relay" or name in LANE_KINDS:
                kind, *extra = LANE_KINDS.get(name, (name,))
                args = ["--targets", ",".join(map(str, targets)), "--journal", journal, *extra]
                child = spawn(kind, *args)
                bench.paths.append(Path(name, *child.info["ports"], pid=child.pid, child=child))
            elif name == "emb-toxiproxy":
                child = spawn(name)
                url = child.info["url"]
                ports, names = toxiproxy_create(url, targets)
                bench.paths.append(Path(name, *ports, pid=child.pid, child=child, tox=(url, names)))
            elif name == "toxiproxy":
                url = os.environ["TOXIPROXY_URL"]
                ports, names = toxiproxy_create(url, targets)
                pid = toxiproxy_pid(url)
                note = "" if pid else "CPU unknown: no process of this user listens on its API port (set TOXIPROXY_PID)"
                bench.paths.append(Path(name, *ports, pid=pid, tox=(url, names), note=note))
    except BaseException:
        bench.close()
        raise
    return bench


def _unavailable(name: str) -> str | None:
    if name == "toxiproxy" and not os.environ.get("TOXIPROXY_URL"):
        return "TOXIPROXY_URL not set"
    if name == "lane-uvloop" and importlib.util.find_spec("uvloop") is None:
        return "uvloop not installed (pip install -e '.[fast]')"
    if name == "emb-toxiproxy" and importlib.util.find_spec("harness.toxiproxy.server") is None:
        return "harness.toxiproxy.server not importable"
    return None


def by_name(paths: list[Path]) -> dict[str, Path]:
    return {p.name: p for p in paths}


def any_of(d: dict[str, Any], *names: str) -> Any:
    for n in names:
        if n in d:
            return d[n]
    return None
