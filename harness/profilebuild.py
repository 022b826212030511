"""Building a :class:`~harness.profile.Profile` from located YAML data, validating every part.

Every error names the file, the line and the field, and all of a profile's errors are reported at
once (:class:`_Errors`), because a drill that dies halfway through on a typo wastes the whole run.
Each part is checked against the declaration it comes from (the lane keys of
:mod:`harness.profilespec`, :data:`~harness.simulator.SIM_RULES`, the fault and check registries,
the embedded Toxiproxy's toxic classes), the same declarations :mod:`harness.schema` reads.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .billing import parse_prices
from .capabilities import Capabilities, parse_capabilities
from .checks import CHECKS, make_check
from .dialects import DIALECT_NAMES
from .faults import make_fault
from .lanemap import UnknownLane
from .profilespec import (
    FAULT_RESERVED,
    LANE_CAPS,
    LANE_KEYS,
    TOP_KEYS,
    TOXIC_KEYS,
    TOXIC_TYPES,
    CheckSpec,
    FaultSpec,
    LaneSpec,
    Profile,
    ToxicSpec,
    capacity_error_kinds,
    check_time_scale,
    default_profile,
    toxic_attributes,
)
from .replayspec import parse_record, parse_replay
from .simulator import SIM_RULES, SimSettings
from .suggest import did_you_mean
from .workload import Workload
from .yamlpos import Located, ProfileError

__all__ = ["build"]


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


def build(loc: Located) -> Profile:
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
