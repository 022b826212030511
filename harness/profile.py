"""Profiles: YAML files naming lanes, faults with schedules, toxics, checks and budgets.

Loading validates everything up front and every error names the file, the line and the field
(``fault_profiles/x.yaml:12: faults[0].schedule.first: must be an integer >= 0``), because a
drill that dies halfway through on a typo wastes the whole run.

A profile may ``extends:`` another (a path relative to it, or the name of a shipped profile):
lanes merge by name, lists (faults, toxics, checks) are appended after the base's, scalars
override. ``extends: {profile: NAME, lanes: {primary: fast}}`` renames the base's lanes first
(see :mod:`harness.lanemap`), so the profile can speak of its agent's lanes.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .billing import Prices, parse_prices
from .capabilities import Capabilities, parse_capabilities
from .checks import CHECKS, make_check
from .dialects import DIALECT_NAMES
from .lanemap import UnknownLane, check_lane_map, rename_located
from .proxy.upstream import MAX_EVENT_BYTES, MAX_RESPONSE_BYTES
from .replayspec import ReplaySpec, parse_record, parse_replay
from .simulator import SIM_RULES, SimSettings
from .suggest import did_you_mean
from .workload import Workload
from .yamlpos import Located, ProfileError, check_plain, load_located, read_located

__all__ = [
    "CheckSpec",
    "FaultSpec",
    "LaneSpec",
    "Profile",
    "ProfileError",
    "ToxicSpec",
    "check_time_scale",
    "default_profile",
    "find_profile",
    "load_profile",
    "load_profile_text",
    "profile_dirs",
    "profile_from_dict",
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


# -- finding ----------------------------------------------------------------------------------
def profile_dirs() -> list[Path]:
    """Where profile names are looked up: ``$ROUTECHAOS_PROFILE_DIR``, ``./fault_profiles``, and
    the catalogue shipped beside the package."""
    dirs = []
    env = os.environ.get("ROUTECHAOS_PROFILE_DIR")
    if env:
        dirs.extend(Path(p) for p in env.split(os.pathsep) if p)
    dirs.append(Path.cwd() / "fault_profiles")
    dirs.append(Path(__file__).resolve().parent.parent / "fault_profiles")  # a checkout (editable install)
    dirs.append(Path(sys.prefix) / "share" / "routechaos" / "fault_profiles")  # a wheel's data files
    seen: list[Path] = []
    for d in dirs:
        if d not in seen:
            seen.append(d)
    return seen


def find_profile(name_or_path: str | Path, relative_to: Path | None = None) -> Path:
    """A profile path from a path or a catalogue name (with or without ``.yaml``)."""
    p = Path(name_or_path)
    candidates = []
    if relative_to is not None and not p.is_absolute():
        candidates.append(relative_to / p)
    candidates.append(p)
    stem = p.name if p.suffix in (".yaml", ".yml") else p.name + ".yaml"
    candidates += [d / stem for d in profile_dirs()]
    for c in candidates:
        if c.is_file():
            return c
    known = sorted({q.stem for d in profile_dirs() if d.is_dir() for q in d.glob("*.yaml")})
    guess = did_you_mean(Path(stem).stem, known)
    if guess:
        hint = f"; {guess} ('routechaos profiles list' shows all {len(known)})"
    else:
        hint = f"; shipped profiles: {', '.join(known)}" if known else ""
    raise ProfileError(f"profile {str(name_or_path)!r} not found{hint}")


# -- loading ----------------------------------------------------------------------------------
def load_profile(
    name_or_path: str | Path, overrides: dict[str, Any] | None = None, *, lanes: Mapping[str, str] | None = None
) -> Profile:
    """Load, merge ``extends``, validate. ``overrides`` (seed, time_scale, ...) win over the file;
    ``lanes`` renames the profile's lanes (``{"primary": "fast"}``); a name it does not have
    raises :class:`~harness.lanemap.UnknownLane`."""
    path = find_profile(name_or_path)
    raw = _load_raw(path, chain=())
    if overrides:
        raw.data = {**raw.data, **overrides}
    if lanes:
        raw = rename_located(raw, check_lane_map(lanes, _lane_names(raw)))
    return _build(raw)


def _lane_names(loc: Located) -> list[str]:
    lanes = loc.data.get("lanes") if isinstance(loc.data, dict) else None
    return list(lanes) if isinstance(lanes, dict) else list(default_profile().lanes)


def load_profile_text(text: str, file: str = "<profile>") -> Profile:
    """Load a profile from a string (tests, and profiles built in code)."""
    loc = load_located(text, file)
    if isinstance(loc.data, dict) and "extends" in loc.data:
        loc = _merge_base(loc, Path(file).parent if file != "<profile>" else Path.cwd(), ())
    return _build(loc)


def profile_from_dict(data: dict[str, Any], file: str = "<dict>") -> Profile:
    """Validate a profile given as Python data (the pytest factory fixture builds these)."""
    check_plain(data, file)
    return _build(Located(data, {}, file))


def _load_raw(path: Path, chain: tuple[Path, ...]) -> Located:
    loc = read_located(path)
    if not isinstance(loc.data, dict):
        raise ProfileError("a profile is a mapping (lanes:, faults:, checks: ...)", str(path), 1)
    if "extends" in loc.data:
        loc = _merge_base(loc, path.parent, (*chain, path.resolve()))
    return loc


def _merge_base(loc: Located, here: Path, chain: tuple[Path, ...]) -> Located:
    ref = loc.data["extends"]
    at: tuple[str, ...] = ("extends",)
    mapping: Any = None
    if isinstance(ref, dict):
        for key in ref:
            if key not in ("profile", "lanes"):
                raise loc.error((*at, key), "unknown key; extends: takes profile: and lanes:")
        mapping = ref.get("lanes")
        ref, at = ref.get("profile"), ("extends", "profile")
    if not isinstance(ref, str):
        raise loc.error(at, "must be a profile name or path, or {profile: NAME, lanes: {its_lane: your_lane}}")
    try:
        base_path = find_profile(ref, relative_to=here)
    except ProfileError as exc:
        raise loc.error(at, exc.message) from None
    if base_path.resolve() in chain:
        raise loc.error(at, f"circular extends through {base_path}")
    base = _load_raw(base_path, chain)
    if mapping is not None:
        try:
            mapping = check_lane_map(mapping, _lane_names(base))
        except UnknownLane as exc:
            raise loc.error(("extends", "lanes", str(exc.name)), f"{exc.message} (in {base_path.name})") from None
        except ValueError as exc:
            raise loc.error(("extends", "lanes"), str(exc)) from None
        base = rename_located(base, mapping)
    return merge_located(base, loc)


def merge_located(base: Located, child: Located) -> Located:
    """``child`` over ``base``: lanes merge by name (the child's settings win key by key), the
    lists (faults, toxics, checks) are the base's followed by the child's, other keys are the
    child's. Positions follow the values, so an error in an inherited value names the base file
    and that value's own path there."""
    merged: dict[str, Any] = dict(base.data)
    lines: dict[tuple[str | int, ...], int] = {(): child.lines.get((), 1)}
    origins: dict[tuple[str | int, ...], tuple[str, tuple[str | int, ...]]] = {}

    def graft(src: Located, src_prefix: tuple[str | int, ...], dst_prefix: tuple[str | int, ...]) -> None:
        n = len(src_prefix)
        for path, line in src.lines.items():
            if path[:n] == src_prefix:
                lines[(*dst_prefix, *path[n:])] = line
        for path, origin in src.origins.items():
            if path[:n] == src_prefix and len(path) > n:
                origins[(*dst_prefix, *path[n:])] = origin
        if src is not child or src_prefix != dst_prefix:
            origins[dst_prefix] = src.origin_of(src_prefix)

    for key in base.data:
        if key not in child.data:
            graft(base, (key,), (key,))
    for key, value in child.data.items():
        if key == "extends":
            continue
        base_value = base.data.get(key)
        if key == "lanes" and isinstance(value, dict) and isinstance(base_value, dict):
            lanes = dict(base_value)
            lines[("lanes",)] = child.lines.get(("lanes",), 1)
            for lname in base_value:
                if lname not in value:
                    graft(base, ("lanes", lname), ("lanes", lname))
            for lname, lval in value.items():
                old = lanes.get(lname)
                if isinstance(lval, dict) and isinstance(old, dict):
                    lanes[lname] = {**old, **lval}
                    for k in old:
                        if k not in lval:
                            graft(base, ("lanes", lname, k), ("lanes", lname, k))
                else:
                    lanes[lname] = lval
                graft(child, ("lanes", lname), ("lanes", lname))
            merged["lanes"] = lanes
        elif key in ("faults", "toxics", "checks") and isinstance(value, list) and isinstance(base_value, list):
            merged[key] = [*base_value, *value]
            lines[(key,)] = child.lines.get((key,), 1)
            for i in range(len(base_value)):
                graft(base, (key, i), (key, i))
            for j in range(len(value)):
                graft(child, (key, j), (key, len(base_value) + j))
        else:
            merged[key] = value
            graft(child, (key,), (key,))
    return Located(merged, lines, child.file, origins)


class _Errors:
    """The errors of one profile, gathered so that all are reported at once (in line order):
    ``with errors.item():`` runs one independent part (a lane, a fault, a check) and keeps its
    :class:`ProfileError` instead of stopping at it."""

    def __init__(self) -> None:
        self.found: list[ProfileError] = []

    def item(self) -> _Item:
        return _Item(self)

    def raise_any(self) -> None:
        if self.found:
            raise ProfileError.combine(self.found)


class _Item:
    def __init__(self, errors: _Errors) -> None:
        self.errors = errors
        self.ok = True

    def __enter__(self) -> _Item:
        return self

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> bool:
        if isinstance(exc, ProfileError):
            self.errors.found.append(exc)
            self.ok = False
            return True
        return False


class _EveryLane(dict[str, Any]):
    """Stands for a ``lanes:`` that is itself wrong: every lane name is taken as declared."""

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str)


def _text(loc: Located, data: dict[str, Any], key: str, at: tuple[str | int, ...] = ()) -> str:
    """A free-text field (name, description, incident): a string, or a number taken as its text."""
    value = data.get(key)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise loc.error((*at, key), f"must be a string (got {type(value).__name__})")
    return str(value)


def _build(loc: Located) -> Profile:
    if not isinstance(loc.data, dict):
        raise ProfileError("a profile is a mapping (lanes:, faults:, checks: ...)", loc.file, loc.line_of(()) or 1)
    data: dict[str, Any] = loc.data
    errors = _Errors()
    for key in data:
        if key not in TOP_KEYS:
            with errors.item():
                raise loc.error((key,), f"unknown key; expected one of {', '.join(sorted(TOP_KEYS))}")
    seed: Any = 0
    time_scale = 1.0
    with errors.item():
        seed = data.get("seed", 0)
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise loc.error(("seed",), "must be an integer")
    with errors.item():
        try:
            time_scale = check_time_scale(data.get("time_scale", 1.0))
        except ValueError as exc:
            raise loc.error(("time_scale",), str(exc)) from None
    texts = {}
    for key in ("name", "description", "incident"):
        with errors.item():
            texts[key] = _text(loc, data, key)
    lanes_raw = data.get("lanes")
    lanes: dict[str, LaneSpec] = {}
    # a lane that is itself wrong is still a lane: faults and checks naming it are not wrong too
    names: dict[str, Any] = {}
    if lanes_raw is None:
        lanes = default_profile().lanes
        names = dict(lanes)
    elif not isinstance(lanes_raw, dict) or not lanes_raw:
        with errors.item():
            raise loc.error(("lanes",), "must be a mapping of lane name to lane settings")
        names = _EveryLane()  # no lane list to hold faults and checks to: do not add noise
    else:
        names = dict.fromkeys(lanes_raw)
        for name, spec in lanes_raw.items():
            with errors.item():
                lanes[name] = names[name] = _lane(loc, name, spec)
    workload = Workload()
    with errors.item():
        workload = Workload.parse(data.get("workload"), lambda path, msg: loc.error(("workload", *path), msg))
    parts: dict[str, list[Any]] = {"faults": [], "toxics": [], "checks": []}
    for key, make in (("faults", _fault), ("toxics", _toxic), ("checks", _check)):
        items: list[Any] = []
        with errors.item():
            items = _list(loc, data, key)
        for i, raw in enumerate(items):
            with errors.item():
                parts[key].append(make(loc, i, raw, names))
    errors.raise_any()
    return Profile(
        name=texts["name"] or Path(loc.file).stem,
        lanes=lanes,
        faults=parts["faults"],
        toxics=parts["toxics"],
        checks=parts["checks"],
        seed=seed,
        time_scale=time_scale,
        description=texts["description"],
        incident=texts["incident"],
        source=loc.file,
        workload=workload,
    )


def _list(loc: Located, data: dict[str, Any], key: str) -> list[Any]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise loc.error((key,), "must be a list")
    return value


def _lane(loc: Located, name: str, spec: Any) -> LaneSpec:
    path = ("lanes", name)
    if not isinstance(spec, dict):
        raise loc.error(path, "lane settings must be a mapping (dialect:, simulator: or upstream:)")
    for key in spec:
        if key not in LANE_KEYS:
            raise loc.error((*path, key), f"unknown lane setting; expected one of {', '.join(sorted(LANE_KEYS))}")
    dialect = spec.get("dialect")
    if dialect is None:
        raise loc.error((*path, "dialect"), f"required: the provider wire format, one of {', '.join(DIALECT_NAMES)}")
    if dialect not in DIALECT_NAMES:
        raise loc.error((*path, "dialect"), f"must be one of {', '.join(DIALECT_NAMES)} (got {dialect!r})")
    port = spec.get("port", 0)
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        raise loc.error((*path, "port"), "must be an integer port (0 picks a free one)")
    host = spec.get("host", "127.0.0.1")
    if not isinstance(host, str) or not host:
        raise loc.error((*path, "host"), "must be a host name or address")
    upstream = spec.get("upstream")
    if upstream is not None:
        if "simulator" in spec:
            raise loc.error((*path, "upstream"), "a lane has either an upstream or a simulator, not both")
        try:
            parts = urlsplit(upstream) if isinstance(upstream, str) else None
            _ = parts and parts.port  # a port that is no number is found here, not at the first attempt
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise loc.error((*path, "upstream"), "must be an http:// or https:// URL")
    record = replay = None
    if spec.get("record") is not None:
        if upstream is None:
            raise loc.error((*path, "record"), "records the exchanges with a real upstream: give upstream: too")
        record = parse_record(spec["record"], loc.file, lambda p, m: loc.error((*path, "record", *p), m))
    if spec.get("replay") is not None:
        if upstream is not None:
            raise loc.error((*path, "replay"), "a lane has either an upstream or a cassette to replay, not both")
        replay = parse_replay(spec["replay"], loc.file, lambda p, m: loc.error((*path, "replay", *p), m))
    sim: SimSettings | None = None
    if upstream is None:
        sim_raw = spec.get("simulator") or {}
        if not isinstance(sim_raw, dict):
            raise loc.error((*path, "simulator"), "must be a mapping of simulator settings")
        sim = _sim(loc, (*path, "simulator"), sim_raw)
    rt = spec.get("read_timeout", 600.0)
    if rt is not None and (isinstance(rt, bool) or not isinstance(rt, int | float) or not math.isfinite(rt) or rt <= 0):
        raise loc.error((*path, "read_timeout"), "must be a number of seconds > 0, or null")
    caps = {}
    for key, default in LANE_CAPS.items():
        cap = spec.get(key, default)
        if isinstance(cap, bool) or not isinstance(cap, int) or not 1024 <= cap <= 2**40:
            raise loc.error((*path, key), "must be a number of bytes from 1024 to 2**40")
        caps[key] = cap
    replicas = spec.get("replicas", 1)
    if isinstance(replicas, bool) or not isinstance(replicas, int) or not 1 <= replicas <= 1024:
        raise loc.error((*path, "replicas"), "must be an integer from 1 to 1024 (processes serving it with --ray)")
    return LaneSpec(
        name=name,
        dialect=dialect,
        host=host,
        port=port,
        simulator=sim,
        upstream=str(upstream) if upstream is not None else None,
        read_timeout=float(rt) if rt is not None else None,
        **caps,
        description=_text(loc, spec, "description", path),
        replicas=replicas,
        capabilities=_capabilities(loc, path, spec, upstream),
        prices=(
            parse_prices(spec["prices"], lambda sub, msg: loc.error((*path, "prices", *sub), msg))
            if "prices" in spec
            else None
        ),
        record=record,
        replay=replay,
    )


def _capabilities(loc: Located, path: tuple[str, ...], spec: dict[str, Any], upstream: Any) -> Capabilities | None:
    if "capabilities" not in spec:
        return None
    if upstream is not None:
        raise loc.error((*path, "capabilities"), "applies to simulated lanes (a real upstream enforces its own)")
    return parse_capabilities(spec["capabilities"], lambda sub, msg: loc.error((*path, "capabilities", *sub), msg))


def capacity_error_kinds() -> list[str]:
    """The error kinds a simulator may answer with when full (``capacity_error``)."""
    from .dialects.base import ErrorKind

    return [k.value for k in ErrorKind]


def _sim(loc: Located, path: tuple[str | int, ...], raw: dict[str, Any]) -> SimSettings:
    for key, value in raw.items():
        rule = SIM_RULES.get(key)
        if rule is None:
            raise loc.error((*path, key), f"unknown simulator setting; expected one of {', '.join(SIM_RULES)}")
        bad = isinstance(value, bool) or not isinstance(value, rule.types)
        if not bad and isinstance(value, float) and not math.isfinite(value):
            bad = True  # .nan / .inf: no drill can be paced by them
        if not bad and rule.minimum is not None and isinstance(value, int | float):
            bad = value <= rule.minimum if rule.exclusive else value < rule.minimum
        if key == "capacity_error" and not bad and value not in capacity_error_kinds():
            raise loc.error((*path, key), f"must be one of {', '.join(capacity_error_kinds())} (got {value!r})")
        if bad:
            raise loc.error((*path, key), f"must be {rule.want} (got {value!r})")
    try:
        return SimSettings.from_dict(raw)
    except ValueError as exc:  # pragma: no cover - every setting was checked above
        raise loc.error(path, str(exc)) from None


def _lane_ref(loc: Located, path: tuple[str | int, ...], lane: Any, lanes: Mapping[str, Any], star: bool) -> str:
    """``lane`` as the name of a declared lane (or ``"*"`` when ``star``)."""
    if not isinstance(lane, str) or not lane:
        every = ' (or "*" for every lane)' if star else ""
        raise loc.error(path, f"must be a lane name{every}: {', '.join(map(str, lanes))} (got {type(lane).__name__})")
    if (lane != "*" or not star) and lane not in lanes:
        raise loc.error(path, UnknownLane(lane, lanes).message)
    return lane


def _fault(loc: Located, i: int, raw: Any, lanes: Mapping[str, Any]) -> FaultSpec:
    path: tuple[str | int, ...] = ("faults", i)
    if not isinstance(raw, dict):
        raise loc.error(path, "a fault is a mapping with fault:, lane: and schedule:")
    kind = raw.get("fault")
    if not isinstance(kind, str) or not kind:
        raise loc.error((*path, "fault"), "required: the fault's name (rate_limit, overloaded, stream_cut, ...)")
    lane = _lane_ref(loc, (*path, "lane"), raw.get("lane", "*"), lanes, star=True)
    name = _text(loc, raw, "name", path)
    spec = FaultSpec(
        fault=kind,
        lane=lane,
        schedule=raw.get("schedule", "always"),
        attrs={k: v for k, v in raw.items() if k not in FAULT_RESERVED},
        name=name or f"{kind}@{lane}",
        description=_text(loc, raw, "description", path),
        line=loc.line_of(path),
    )
    _validate_fault(loc, path, spec)
    return spec


def _validate_fault(loc: Located, path: tuple[str | int, ...], spec: FaultSpec) -> None:
    """Check the fault name, its attributes and its schedule against their registries."""
    from .faults import make_fault  # here, not at the top: the faults import this module
    try:
        make_fault(spec.fault, spec.attrs)
    except ProfileError:
        raise
    except (KeyError, ValueError, TypeError) as exc:
        msg = exc.args[0] if exc.args else str(exc)
        field_name = getattr(exc, "field", None)
        raise loc.error((*path, field_name) if field_name else (*path, "fault"), str(msg)) from None
    _validate_schedule(loc, (*path, "schedule"), spec.schedule)


def _validate_schedule(loc: Located, path: tuple[str | int, ...], raw: Any) -> None:
    """Parse a schedule for its errors; point at the bad key (and the bad item of a sequence)."""
    from .schedule import parse_schedule

    try:
        parse_schedule(raw)
    except (ValueError, TypeError) as exc:
        field_name = getattr(exc, "field", None)
        sub: tuple[str | int, ...] = path
        if field_name:
            sub = (*path, *field_name) if isinstance(field_name, tuple) else (*path, field_name)
        if field_name == "sequence" and isinstance(raw, dict) and isinstance(raw.get("sequence"), list):
            ok = ("fail", "ok", True, False, 0, 1)
            bad = [i for i, item in enumerate(raw["sequence"]) if not any(item is o or item == o for o in ok)]
            if bad:
                sub = (*sub, bad[0])
        raise loc.error(sub, str(exc.args[0] if exc.args else exc)) from None


def _toxic(loc: Located, i: int, raw: Any, lanes: Mapping[str, Any]) -> ToxicSpec:
    path: tuple[str | int, ...] = ("toxics", i)
    if not isinstance(raw, dict):
        raise loc.error(path, "a toxic is a mapping with lane:, type: and attributes:")
    for key in raw:
        if key not in TOXIC_KEYS:
            raise loc.error((*path, key), f"unknown toxic field; expected one of {', '.join(sorted(TOXIC_KEYS))}")
    lane = raw.get("lane")
    if lane is None:
        raise loc.error((*path, "lane"), f"required: the lane the toxic sits in front of ({', '.join(lanes)})")
    lane = _lane_ref(loc, (*path, "lane"), lane, lanes, star=False)
    ttype = raw.get("type")
    if ttype not in TOXIC_TYPES:
        raise loc.error((*path, "type"), f"must be one of {', '.join(TOXIC_TYPES)} (got {ttype!r})")
    stream = raw.get("stream", "downstream")
    if stream not in ("upstream", "downstream"):
        raise loc.error((*path, "stream"), "must be upstream or downstream")
    toxicity = raw.get("toxicity", 1.0)
    if isinstance(toxicity, bool) or not isinstance(toxicity, int | float) or not 0 <= toxicity <= 1:
        raise loc.error((*path, "toxicity"), "must be a number between 0 and 1")
    attrs = raw.get("attributes") or {}
    if not isinstance(attrs, dict):
        raise loc.error((*path, "attributes"), "must be a mapping")
    known_attrs = toxic_attributes(ttype)
    for key, value in attrs.items():
        # Toxiproxy ignores unknown attributes; a profile typo would then silently test nothing.
        if key not in known_attrs:
            names = ", ".join(known_attrs) or "none"
            raise loc.error(
                (*path, "attributes", key), f"unknown attribute for toxic {ttype!r}; its attributes: {names}"
            )
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value != int(value)
            or value < 0
        ):
            raise loc.error((*path, "attributes", key), f"must be an integer >= 0 ({known_attrs[key]}; got {value!r})")
    if "schedule" in raw:
        _validate_schedule(loc, (*path, "schedule"), raw["schedule"])
    return ToxicSpec(
        lane=lane,
        type=ttype,
        stream=stream,
        toxicity=float(toxicity),
        attributes=attrs,
        name=_text(loc, raw, "name", path) or f"{ttype}_{stream}",
        schedule=raw.get("schedule", "always"),
        line=loc.line_of(path),
    )


def _check(loc: Located, i: int, raw: Any, lanes: Mapping[str, Any]) -> CheckSpec:
    path: tuple[str | int, ...] = ("checks", i)
    if isinstance(raw, str):
        name, params = raw, {}
    elif isinstance(raw, dict) and len(raw) == 1:
        name, params = next(iter(raw.items()))
        params = params or {}
        if not isinstance(params, dict):
            raise loc.error((*path, name), "check parameters must be a mapping")
    else:
        raise loc.error(path, "a check is a name, or a mapping of one name to its parameters")
    spec = CheckSpec(name=name, params=params, line=loc.line_of(path))
    cls = CHECKS.get(name)
    if cls is None:
        guess = did_you_mean(name, CHECKS)
        raise loc.error((*path, name), f"unknown check; {guess or 'known checks: ' + ', '.join(sorted(CHECKS))}")
    import dataclasses

    from .checks.base import COMMON_PARAMS

    known = [f.name for f in dataclasses.fields(cls)] + list(COMMON_PARAMS)  # type: ignore[arg-type]
    for key in params:
        if key not in known:
            raise loc.error(
                (*path, name, key),
                f"unknown parameter for check {name!r}; its parameters: {', '.join(known) or 'none'}",
            )
    try:
        make_check(name, params)
    except (KeyError, ValueError, TypeError) as exc:
        msg = str(exc.args[0] if exc.args else exc)
        bad = next((k for k in params if f"parameter {k!r}" in msg), None)
        raise loc.error((*path, name, bad) if bad else (*path, name), msg) from None
    for key in getattr(cls, "lane_params", ()):
        value = params.get(key)
        if isinstance(value, str) and value not in lanes:
            raise loc.error((*path, name, key), UnknownLane(value, lanes).message)
    return spec
