"""Finding a profile by name or path, and merging a profile over the one it ``extends:``.

Kept apart from validation (:mod:`harness.profilebuild`): both work on located YAML data
(:class:`~harness.yamlpos.Located`), before any part of a profile is built, so that an error in an
inherited value can still name the base file and the value's own path there.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from .lanemap import UnknownLane, check_lane_map, rename_located
from .profilespec import default_profile
from .suggest import did_you_mean
from .yamlpos import Located, ProfileError, read_located

__all__ = ["find_profile", "lane_names", "load_raw", "merge_base", "merge_located", "profile_dirs"]


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


def lane_names(loc: Located) -> list[str]:
    lanes = loc.data.get("lanes") if isinstance(loc.data, dict) else None
    return list(lanes) if isinstance(lanes, dict) else list(default_profile().lanes)


def load_raw(path: Path, chain: tuple[Path, ...]) -> Located:
    loc = read_located(path)
    if not isinstance(loc.data, dict):
        raise ProfileError("a profile is a mapping (lanes:, faults:, checks: ...)", str(path), 1)
    if "extends" in loc.data:
        loc = merge_base(loc, path.parent, (*chain, path.resolve()))
    return loc


def merge_base(loc: Located, here: Path, chain: tuple[Path, ...]) -> Located:
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
    base = load_raw(base_path, chain)
    if mapping is not None:
        try:
            mapping = check_lane_map(mapping, lane_names(base))
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
