"""Lane mapping: run a profile under the lane names your agent already uses.

The shipped catalogue calls its lanes ``primary`` (the lane under test) and ``stable`` (the
fallback). An agent whose lanes are ``fast`` and ``slow`` maps them instead of copying YAML::

    extends: {profile: f16-stream-cut, lanes: {primary: fast}}     # in a profile
    @pytest.mark.chaos_profile("f16-stream-cut", lanes={"primary": "fast"})
    Drill("f16-stream-cut", lanes={"primary": "fast"})
    routechaos drill f16-stream-cut --lane primary=fast -- python agent.py

A mapping ``{old: new}`` renames a lane everywhere the profile names it: its entry in ``lanes:``,
every fault's and toxic's ``lane:``, and every check parameter that names a lane. Which check
parameters name lanes is declared once, on each check (``Check.lane_params``). Lanes not in the
mapping keep their names; two lanes may swap names. A name the profile does not have is a clear
error naming it and the lanes there are (:class:`UnknownLane`), never a bare ``KeyError``.

Two entry points do the same renaming: :func:`rename_located` on a profile's YAML data before it
is built (``extends``, and :func:`~harness.profile.load_profile`), so positions and defaults
follow the new names; :func:`rename_profile` on a :class:`~harness.profile.Profile` already built
in code.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .profilespec import Profile
from .suggest import did_you_mean
from .yamlpos import Located

__all__ = [
    "LaneDict",
    "UnknownLane",
    "check_lane_map",
    "parse_lane_args",
    "rename_located",
    "rename_profile",
]


class UnknownLane(KeyError, ValueError):
    """A lane name that is not one of the known lanes. A ``KeyError`` (it is a failed lookup) and a
    ``ValueError`` (it is bad input), whose message names the lane and the lanes there are."""

    def __init__(self, name: object, known: Iterable[str], what: str = "lane") -> None:
        self.name = name
        self.known = list(known)
        guess = did_you_mean(str(name), self.known)
        self.message = f"no {what} named {name!r}; " + (f"{guess} " if guess else "")
        self.message += f"lanes: {', '.join(self.known) or 'none'}"
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class LaneDict(dict[str, Any]):
    """A mapping by lane name whose missing keys raise :class:`UnknownLane`."""

    def __missing__(self, key: str) -> Any:
        raise UnknownLane(key, self)


def parse_lane_args(items: Sequence[str]) -> dict[str, str]:
    """``["primary=fast", "stable=slow"]`` (the CLI's ``--lane``) as a mapping."""
    out: dict[str, str] = {}
    for item in items:
        old, sep, new = item.partition("=")
        old, new = old.strip(), new.strip()
        if not sep or not old or not new:
            raise ValueError(f"--lane {item!r}: give PROFILE_LANE=YOUR_LANE, e.g. --lane primary=fast")
        if old in out:
            raise ValueError(f"--lane {item!r}: lane {old!r} is mapped twice")
        out[old] = new
    return out


def check_lane_map(mapping: Any, lanes: Iterable[str]) -> dict[str, str]:
    """``mapping`` validated against the profile's ``lanes``: a mapping of existing lane names to
    new names that do not collide. Raises :class:`UnknownLane` for a name the profile does not
    have (``.name`` is it), ``ValueError`` for anything else wrong."""
    known = list(lanes)
    if not isinstance(mapping, Mapping):
        raise ValueError("a lane mapping is {profile_lane: your_lane, ...}")
    out: dict[str, str] = {}
    for old, new in mapping.items():
        if old not in known:
            raise UnknownLane(old, known)
        if not isinstance(new, str) or not new or new == "*":
            raise ValueError(f"lane {old!r} must be mapped to a lane name (got {new!r})")
        out[str(old)] = new
    result = [out.get(n, n) for n in known]
    for name in set(result):
        if result.count(name) > 1:
            two = [n for n in known if out.get(n, n) == name]
            raise ValueError(f"lanes {' and '.join(map(repr, two))} would both be called {name!r}")
    return out


def _lane_params(check_name: str) -> tuple[str, ...]:
    from .checks import CHECKS

    cls = CHECKS.get(check_name)
    return tuple(getattr(cls, "lane_params", ())) if cls is not None else ()


def _renamed_params(name: str, params: Any, mapping: Mapping[str, str]) -> Any:
    if not isinstance(params, dict):
        return params
    names = _lane_params(name)
    return {k: (mapping.get(v, v) if k in names and isinstance(v, str) else v) for k, v in params.items()}


def rename_located(loc: Located, mapping: Mapping[str, str]) -> Located:
    """A copy of profile data ``loc`` with lanes renamed by ``mapping`` (validated by the caller
    with :func:`check_lane_map`). Line positions move with the lanes they belong to."""
    if not mapping or not isinstance(loc.data, dict):
        return loc
    data = dict(loc.data)
    lanes = data.get("lanes")
    if isinstance(lanes, dict):
        data["lanes"] = {mapping.get(k, k): v for k, v in lanes.items()}
    for key in ("faults", "toxics"):
        items = data.get(key)
        if isinstance(items, list):
            data[key] = [
                {**it, "lane": mapping.get(it["lane"], it["lane"])}
                if isinstance(it, dict) and isinstance(it.get("lane"), str)
                else it
                for it in items
            ]
    checks = data.get("checks")
    if isinstance(checks, list):
        data["checks"] = [
            {n: _renamed_params(n, p, mapping) for n, p in c.items()} if isinstance(c, dict) and len(c) == 1 else c
            for c in checks
        ]

    def move(path: tuple[str | int, ...]) -> tuple[str | int, ...]:
        if len(path) >= 2 and path[0] == "lanes" and isinstance(path[1], str):
            return ("lanes", mapping.get(path[1], path[1]), *path[2:])
        return path

    lines = {move(p): n for p, n in loc.lines.items()}
    origins = {move(p): o for p, o in loc.origins.items()}
    return Located(data, lines, loc.file, origins)


def rename_profile(profile: Profile, mapping: Mapping[str, str]) -> Profile:
    """A copy of a built profile with lanes renamed by ``mapping`` (checked here)."""
    m = check_lane_map(mapping, profile.lanes)
    if not m:
        return profile

    def lane(name: str) -> str:
        return m.get(name, name)

    faults = []
    for f in profile.faults:
        name = f"{f.fault}@{lane(f.lane)}" if f.name == f"{f.fault}@{f.lane}" else f.name
        faults.append(dataclasses.replace(f, lane=lane(f.lane), name=name, attrs=dict(f.attrs)))
    return dataclasses.replace(
        profile,
        lanes={lane(n): dataclasses.replace(spec, name=lane(n)) for n, spec in profile.lanes.items()},
        faults=faults,
        toxics=[dataclasses.replace(t, lane=lane(t.lane)) for t in profile.toxics],
        checks=[dataclasses.replace(c, params=_renamed_params(c.name, c.params, m)) for c in profile.checks],
    )
