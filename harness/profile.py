"""Profiles: YAML files naming lanes, faults with schedules, toxics, checks and budgets.

Loading validates everything up front and every error names the file, the line and the field
(``fault_profiles/x.yaml:12: faults[0].schedule.first: must be an integer >= 0``), because a
drill that dies halfway through on a typo wastes the whole run.

A profile may ``extends:`` another (a path relative to it, or the name of a shipped profile):
lanes merge by name, lists (faults, toxics, checks) are appended after the base's, scalars
override. ``extends: {profile: NAME, lanes: {primary: fast}}`` renames the base's lanes first
(see :mod:`harness.lanemap`), so the profile can speak of its agent's lanes.

The parts live in their own modules, re-exported here (import them from here):
:mod:`harness.profilespec` (the typed parts and the declarations the loader and the JSON Schema
share), :mod:`harness.profilefind` (finding by name, ``extends:`` merging) and
:mod:`harness.profilebuild` (validation, every error with its line).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .lanemap import check_lane_map, rename_located
from .profilebuild import build
from .profilefind import find_profile, lane_names, load_raw, merge_base, merge_located, profile_dirs
from .profilespec import (
    FAULT_RESERVED,
    LANE_CAPS,
    LANE_KEYS,
    TOP_KEYS,
    TOXIC_KEYS,
    TOXIC_TYPES,
    TOXIC_UNITS,
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
from .simulator import SIM_RULES
from .yamlpos import Located, ProfileError, check_plain, load_located

__all__ = [
    "FAULT_RESERVED",
    "LANE_CAPS",
    "LANE_KEYS",
    "SIM_RULES",
    "TOP_KEYS",
    "TOXIC_KEYS",
    "TOXIC_TYPES",
    "TOXIC_UNITS",
    "CheckSpec",
    "FaultSpec",
    "LaneSpec",
    "Profile",
    "ProfileError",
    "ToxicSpec",
    "capacity_error_kinds",
    "check_time_scale",
    "default_profile",
    "find_profile",
    "load_profile",
    "load_profile_text",
    "merge_located",
    "profile_dirs",
    "profile_from_dict",
    "toxic_attributes",
]


def load_profile(
    name_or_path: str | Path, overrides: dict[str, Any] | None = None, *, lanes: Mapping[str, str] | None = None
) -> Profile:
    """Load, merge ``extends``, validate. ``overrides`` (seed, time_scale, ...) win over the file;
    ``lanes`` renames the profile's lanes (``{"primary": "fast"}``); a name it does not have
    raises :class:`~harness.lanemap.UnknownLane`."""
    path = find_profile(name_or_path)
    raw = load_raw(path, chain=())
    if overrides:
        raw.data = {**raw.data, **overrides}
    if lanes:
        raw = rename_located(raw, check_lane_map(lanes, lane_names(raw)))
    return build(raw)


def load_profile_text(text: str, file: str = "<profile>") -> Profile:
    """Load a profile from a string (tests, and profiles built in code)."""
    loc = load_located(text, file)
    if isinstance(loc.data, dict) and "extends" in loc.data:
        loc = merge_base(loc, Path(file).parent if file != "<profile>" else Path.cwd(), ())
    return build(loc)


def profile_from_dict(data: dict[str, Any], file: str = "<dict>") -> Profile:
    """Validate a profile given as Python data (the pytest factory fixture builds these)."""
    check_plain(data, file)
    return build(Located(data, {}, file))
