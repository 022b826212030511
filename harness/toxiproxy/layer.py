"""A profile's ``toxics:``: a Toxiproxy proxy in front of each lane that has toxics.

Network-level (L4) faults go through Toxiproxy's HTTP API, so the same profile drives the
embedded server (default) or a real Toxiproxy (``TOXIPROXY_URL``). The agent is given the proxy's
address instead of the lane's; toxics are added and removed on their schedules' windows; and on
stop the layer deletes its proxies, even when the drill failed, so a shared Toxiproxy is left as
it was found.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
from collections.abc import Mapping
from typing import Any

from ..journal import Journal
from ..profile import ToxicSpec
from ..schedule import parse_schedule
from .client import AsyncToxiproxyClient, NotFound
from .server import ToxiproxyServer

__all__ = ["ToxicLayer", "scaled_attributes"]

#: attributes that are durations (ms, or µs for slicer's delay): compressed with the drill
_TIME_ATTRS = {"latency", "jitter", "timeout", "delay"}


def scaled_attributes(ttype: str, attributes: Mapping[str, Any], time_scale: float) -> dict[str, Any]:
    """Toxic attributes with durations multiplied (and bandwidth divided) by ``time_scale``."""
    out = dict(attributes)
    if time_scale == 1.0:
        return out
    for key, value in attributes.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            if key in _TIME_ATTRS:
                out[key] = max(1, round(value * time_scale)) if value > 0 else 0
            elif ttype == "bandwidth" and key == "rate":
                out[key] = max(1, round(value / time_scale))
    return out


class ToxicLayer:
    """Toxiproxy proxies and toxics for one drill."""

    def __init__(
        self,
        toxics: list[ToxicSpec],
        lane_addresses: Mapping[str, str],
        journal: Journal,
        *,
        url: str | None = None,
        time_scale: float = 1.0,
        prefix: str = "routechaos",
        all_lanes: bool = False,
    ) -> None:
        self.toxics = toxics
        self.lane_addresses = dict(lane_addresses)  # lane -> "127.0.0.1:PORT"
        self.journal = journal
        self.url = url if url is not None else os.environ.get("TOXIPROXY_URL") or None
        self.time_scale = time_scale
        self.prefix = f"{prefix}_{os.getpid()}_{id(self) % 10_000}"
        #: every lane behind a proxy (pass-through until a toxic is added, e.g. by toxiproxy-cli)
        self.all_lanes = all_lanes
        self.proxy_urls: dict[str, str] = {}
        self._server: ToxiproxyServer | None = None
        self._client: AsyncToxiproxyClient | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._proxies: dict[str, str] = {}  # lane -> proxy name

    @property
    def server_url(self) -> str | None:
        return self.url

    async def start(self) -> dict[str, str]:
        """Create one proxy per lane with toxics; returns lane -> proxy base URL."""
        if self.url is None:
            self._server = ToxiproxyServer()
            self.url = await self._server.start("127.0.0.1", 0)
        self._client = AsyncToxiproxyClient(self.url)
        try:
            lanes = set(self.lane_addresses) if self.all_lanes else {t.lane for t in self.toxics}
            for lane in sorted(lanes):
                # our own embedded server: proxies are named after their lanes (what a person
                # types into toxiproxy-cli); a shared server gets unique names
                name = lane if self._server is not None else f"{self.prefix}_{lane}"
                proxy = await self._client.create_proxy(name, "127.0.0.1:0", self.lane_addresses[lane])
                self._proxies[lane] = name
                self.proxy_urls[lane] = f"http://{proxy.host}:{proxy.port}"
            for spec in self.toxics:
                edges = parse_schedule(spec.schedule).edges(24 * 3600.0, self.time_scale)
                now = self.journal.now()
                due = [e for e in edges if e[0] <= now]
                for t, on in due:  # what is already on goes on before the agent starts
                    await self._edge(spec, t, on)
                rest = [e for e in edges if e[0] > now]
                if rest:
                    self._tasks.append(asyncio.ensure_future(self._run(spec, rest)))
        except BaseException:
            await self.stop()
            raise
        return dict(self.proxy_urls)

    async def _run(self, spec: ToxicSpec, edges: list[tuple[float, bool]]) -> None:
        for t, on in edges:
            if math.isinf(t):
                return
            delay = t - self.journal.now()
            if delay > 0:
                await asyncio.sleep(delay)
            await self._edge(spec, t, on)

    async def _edge(self, spec: ToxicSpec, t: float, on: bool) -> None:
        await self._apply(spec, self._proxies[spec.lane], on)
        if parse_schedule(spec.schedule).is_timed:  # marked once in force, at the schedule's time
            kind = "toxic_window_open" if on else "toxic_window_close"
            self.journal.mark(kind, spec.lane, t=t, toxic=spec.name, toxic_type=spec.type)

    async def _apply(self, spec: ToxicSpec, proxy: str, on: bool) -> None:
        assert self._client is not None
        if spec.type == "down":
            await (self._client.disable(proxy) if on else self._client.enable(proxy))
            return
        if on:
            attrs = scaled_attributes(spec.type, spec.attributes, self.time_scale)
            await self._client.add_toxic(proxy, spec.type, spec.stream, spec.toxicity, attrs, spec.name)
        else:
            with contextlib.suppress(NotFound):
                await self._client.remove_toxic(proxy, spec.name)

    async def stop(self) -> None:
        """Remove every toxic and proxy this layer made (also after a failure)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self._client is not None:
            for name in self._proxies.values():
                with contextlib.suppress(Exception):
                    await self._client.delete_proxy(name)
            await self._client.aclose()
            self._client = None
        self._proxies.clear()
        if self._server is not None:
            await self._server.stop()
            self._server = None
