"""``routechaos drill PROFILE --ray [ADDRESS]``: the CLI's way into the Ray engine.

In the CLI package, not in :mod:`harness.ray`: it raises the CLI's usage error, and the engine
does not import the CLI (whose drill command imports this module).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..profile import Profile
from .common import UsageError

__all__ = ["ray_drill"]


def ray_drill(address: str, profile: Profile, journal_path: Path, capabilities: Mapping[str, bool]) -> Any:
    """A :class:`~harness.ray.engine.RayDrill` for the CLI, or a usage error naming the extra.

    ``address`` empty: a local Ray started for this drill and stopped after it, lanes on
    loopback. With a cluster's address the replicas listen on every interface of their node
    (agents elsewhere must reach them). Lanes with several replicas get a spreading front, so the
    agent's one URL per lane reaches them all."""
    try:
        import ray  # noqa: F401
    except ImportError:
        raise UsageError("--ray needs the ray extra: pip install 'routechaos[ray]'") from None
    from ..ray.engine import RayDrill  # lazy for cost: Ray is an optional extra and slow to import

    try:
        return RayDrill(
            profile,
            address=address or None,
            bind_host="0.0.0.0" if address else None,
            journal_path=journal_path,
            capabilities=capabilities,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
