"""What every ``routechaos`` command shares: exit codes, the usage error, loading a profile."""

from __future__ import annotations

from collections.abc import Sequence

from ..lanemap import UnknownLane, parse_lane_args, rename_profile
from ..profile import Profile, ProfileError, default_profile, load_profile

__all__ = ["EXIT_CHECK_FAILED", "EXIT_OK", "EXIT_PORT", "EXIT_USAGE", "UsageError", "load_profile_arg"]

EXIT_OK, EXIT_CHECK_FAILED, EXIT_USAGE, EXIT_PORT = 0, 1, 2, 3


class UsageError(Exception):
    """A mistake on the command line: printed without a traceback, exit code 2."""


def load_profile_arg(
    name: str | None, seed: int | None, time_scale: float | None, lanes: Sequence[str] = ()
) -> Profile:
    """The profile to run; ``lanes`` are ``--lane PROFILE_LANE=YOUR_LANE`` renamings."""
    overrides: dict[str, object] = {}
    if seed is not None:
        overrides["seed"] = seed
    if time_scale is not None:
        overrides["time_scale"] = time_scale
    try:
        mapping = parse_lane_args(lanes)
        if name is not None:
            return load_profile(name, overrides, lanes=mapping)
        p = rename_profile(default_profile(), mapping)
    except UnknownLane as exc:
        raise UsageError(f"--lane {exc.name}=...: {exc}") from None
    except ValueError as exc:
        if isinstance(exc, ProfileError):
            raise
        raise UsageError(str(exc)) from None
    if seed is not None:
        p.seed = seed
    if time_scale is not None:
        p.time_scale = time_scale
    return p
