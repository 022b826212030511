"""routechaos: a chaos test harness for LLM routes.

The import package is ``harness``; the distribution and command are ``routechaos``::

    from harness import Drill

    with Drill("ultraspeed-capacity-loss", time_scale=0.1) as drill:
        drill.call(agent.complete, "hello")
    drill.assert_graceful()
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .version import __version__ as __version__

__all__ = ["Drill", "Journal", "Profile", "ProfileError", "call_headers", "load_profile"]

if TYPE_CHECKING:
    from .drill import Drill, call_headers
    from .journal import Journal
    from .profile import Profile, ProfileError, load_profile


def __getattr__(name: str) -> Any:
    """Import on first use: ``import harness`` stays cheap for the pytest plugin and the CLI."""
    if name in ("Drill", "call_headers"):
        from . import drill

        return getattr(drill, name)
    if name == "Journal":
        from .journal import Journal

        return Journal
    if name in ("Profile", "ProfileError", "load_profile"):
        from . import profile

        return getattr(profile, name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")
