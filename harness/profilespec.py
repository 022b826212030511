"""A profile's parts, as the rest of the harness holds them: lanes, faults, toxics, checks.

These are the typed declarations the loader (:mod:`harness.profilebuild`), the JSON Schema
(:mod:`harness.schema`) and the drill all read, kept apart from loading so that modules which only
speak of a built profile (:mod:`harness.lanemap`, :mod:`harness.faults.plan`, the lanes) need not
import the loader, and the loader's helpers may import them without an import circle. The names are
re-exported from :mod:`harness.profile`, where users import them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .billing import Prices
from .capabilities import Capabilities
from .proxy.upstream import MAX_EVENT_BYTES, MAX_RESPONSE_BYTES
from .replayspec import ReplaySpec
from .simulator import SimSettings
from .workload import Workload

__all__ = [
    "FAULT_RESERVED",
    "LANE_CAPS",
    "LANE_KEYS",
    "TOP_KEYS",
    "TOXIC_KEYS",
    "TOXIC_TYPES",
    "TOXIC_UNITS",
    "CheckSpec",
    "FaultSpec",
    "LaneSpec",
    "Profile",
    "ToxicSpec",
    "capacity_error_kinds",
    "check_time_scale",
    "default_profile",
    "toxic_attributes",
]

TOP_KEYS = {"name", "description", "incident", "extends", "seed", "time_scale", "lanes", "faults", "toxics", "checks"}
TOP_KEYS |= {"workload"}
LANE_KEYS = {
    "dialect",
    "host",
    "port",
    "simulator",
    "upstream",
    "read_timeout",
    "max_event_bytes",
    "max_response_bytes",
    "replicas",
    "description",
    "capabilities",
    "prices",
    "record",
    "replay",
}
#: a real upstream's caps (bytes): one SSE event, and a whole response; past them the attempt ends
LANE_CAPS = {"max_event_bytes": MAX_EVENT_BYTES, "max_response_bytes": MAX_RESPONSE_BYTES}
FAULT_RESERVED = {"fault", "lane", "schedule", "name", "description"}
TOXIC_KEYS = {"lane", "type", "name", "stream", "toxicity", "attributes", "schedule"}
TOXIC_TYPES = ("latency", "bandwidth", "slicer", "limit_data", "reset_peer", "timeout", "slow_close", "down")
#: units of each toxic attribute, as Toxiproxy's JSON tags have them
TOXIC_UNITS = {
    "latency": "milliseconds",
    "jitter": "milliseconds",
    "rate": "KB/s",
    "average_size": "bytes",
    "size_variation": "bytes",
    "delay": "milliseconds",
    "bytes": "bytes",
    "timeout": "milliseconds",
}


def toxic_attributes(ttype: str) -> dict[str, str]:
    """A toxic type's attributes and their units, from the embedded Toxiproxy's toxic classes
    (``down`` is not a toxic but a disabled proxy, so it has none)."""
    import dataclasses

    from .toxiproxy.toxics import TOXICS

    cls = TOXICS.get(ttype)
    if cls is None:
        return {}
    out = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        unit = TOXIC_UNITS.get(f.name, "")
        if ttype == "slicer" and f.name == "delay":
            unit = "microseconds"
        out[f.name] = unit
    return out


@dataclass(slots=True)
class LaneSpec:
    name: str
    dialect: str
    host: str = "127.0.0.1"
    port: int = 0
    simulator: SimSettings | None = None
    upstream: str | None = None
    read_timeout: float | None = 600.0
    max_event_bytes: int = LANE_CAPS["max_event_bytes"]
    max_response_bytes: int = LANE_CAPS["max_response_bytes"]
    description: str = ""
    #: processes (Ray actors) serving this lane in a ``--ray`` drill; one owner decides for all
    replicas: int = 1
    #: what the lane accepts (context window, features); the simulator enforces it
    capabilities: Capabilities | None = None
    #: what the lane costs (USD per million tokens), for billing from the journal
    prices: Prices | None = None
    #: record: a new cassette this lane writes its upstream's exchanges to; replay: a cassette
    #: that is this lane's upstream (:mod:`harness.replayspec`)
    record: str | None = None
    replay: ReplaySpec | None = None

    @property
    def is_simulated(self) -> bool:
        return self.upstream is None and self.replay is None


@dataclass(slots=True)
class FaultSpec:
    """One fault on one lane (or every lane: ``lane: "*"``), when its schedule says."""

    fault: str
    lane: str
    schedule: Any = "always"
    attrs: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    description: str = ""
    line: int | None = None


@dataclass(slots=True)
class ToxicSpec:
    """A Toxiproxy toxic in front of a lane, applied on a schedule (a time window or always)."""

    lane: str
    type: str
    stream: str = "downstream"
    toxicity: float = 1.0
    attributes: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    schedule: Any = "always"
    line: int | None = None


@dataclass(slots=True)
class CheckSpec:
    name: str
    params: dict[str, Any] = field(default_factory=dict)
    line: int | None = None


@dataclass(slots=True)
class Profile:
    name: str
    lanes: dict[str, LaneSpec]
    faults: list[FaultSpec] = field(default_factory=list)
    toxics: list[ToxicSpec] = field(default_factory=list)
    checks: list[CheckSpec] = field(default_factory=list)
    seed: int = 0
    time_scale: float = 1.0
    description: str = ""
    incident: str = ""
    source: str | None = None
    workload: Workload = field(default_factory=Workload)


def check_time_scale(value: object) -> float:
    """``value`` as a time scale, or ``ValueError`` saying what one is: a finite number > 0
    (``nan`` or ``inf`` would make every wait in the drill meaningless, ``0`` every wait zero)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"must be a finite number > 0, e.g. 0.1 to run ten times faster (got {value!r})")
    return float(value)


def default_profile() -> Profile:
    """Two simulated lanes named as in the catalogue: ``primary``, a fast premium lane, and
    ``stable``, a slower one to fall back to."""
    return Profile(
        name="default",
        description="primary (OpenAI Chat, 1000 tokens/s) beside stable (Anthropic Messages, 60 tokens/s)",
        lanes={
            "primary": LaneSpec("primary", "openai-chat", simulator=SimSettings(tokens_per_second=1000.0)),
            "stable": LaneSpec("stable", "anthropic", simulator=SimSettings(tokens_per_second=60.0)),
        },
    )


def capacity_error_kinds() -> list[str]:
    """The error kinds a simulator may answer with when full (``capacity_error``)."""
    from .dialects.base import ErrorKind

    return [k.value for k in ErrorKind]
