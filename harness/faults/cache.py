"""Faults on a lane's prompt cache."""

from __future__ import annotations

from dataclasses import dataclass

from ..dialects.base import Rendered
from ..lanestate import CACHE_FLUSH_HEADER
from ..proxy.hooks import AttemptContext
from .base import Fault, register


@register("cache_flush")
@dataclass
class CacheFlush(Fault):
    """The lane's prompt cache is emptied just before this attempt (a provider-side eviction, a
    deployment restart, a new replica behind the load balancer): the request, and every one
    after it until the cache is warm again, pays full input price. Acts on the built-in
    simulator (it tells it with a request header); a real provider's cache cannot be flushed
    from here."""

    async def before(self, ctx: AttemptContext) -> Rendered | None:
        ctx.headers[CACHE_FLUSH_HEADER] = "1"
        return None
