"""Holding a stream and releasing it with the pace it arrived at (:class:`Tape`).

Its own module because two faults hold streams (``slow_first_token``, and ``stall`` with ``then:
resume``) and the timing it keeps is subtle enough to be read alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from ...dialects.base import Event
from ...proxy.hooks import AttemptContext

__all__ = ["Tape"]


class Tape:
    """The upstream's event batches as a fault reads them, able to hold the stream and then
    release what arrived during the hold with the gaps it arrived with.

    A fault that holds a stream (``slow_first_token``, ``stall`` with ``then: resume``) stops
    reading its upstream for the hold. Without this, whatever the upstream produced meanwhile
    waits in the simulator's schedule or a socket buffer and comes out in one burst when the
    hold ends: a 20 s first-token delay then showed the rest of the answer in 0 s, where every
    real provider shows 20 s plus the generation time. So from :meth:`hold` on, a task reads the
    upstream ahead, stamping each batch with its arrival time, and after :meth:`release` each
    batch is handed out at its arrival time shifted by the hold.

    Why re-timing what arrived rather than shifting the simulator's clock: it measures the wire,
    so it is right for any upstream (the simulator, a real provider, another lane forwarding a
    paced stream) and composes with other faults in a chain. The one difference from a provider
    that is itself slow: the upstream finishes its work on its own schedule, so a simulator's slot
    is held for its generation, not for the hold too.

    Before a hold it is a plain pass-through (no task, no queue: the per-event path stays lean).
    One hold per tape; the lane awaits :meth:`stop` (through ``ctx.cleanups``) before it closes
    the upstream, so the read-ahead task never outlives the response.
    """

    def __init__(self, ctx: AttemptContext, events: AsyncIterator[list[Event]]) -> None:
        self._events = events
        self._loop = asyncio.get_running_loop()
        self._arrived = 0.0  # loop time the last batch handed out arrived
        self._held_since: float | None = None
        self._shift: float | None = None  # set by release(): how late batches now are
        self._queue: asyncio.Queue[tuple[float, list[Event] | BaseException | None]] | None = None
        self._task: asyncio.Task[None] | None = None
        ctx.cleanups.append(self.stop)

    def __aiter__(self) -> Tape:
        return self

    async def __anext__(self) -> list[Event]:
        if self._queue is None:
            batch = await self._events.__anext__()
            self._arrived = self._loop.time()
            return batch
        t, item = await self._queue.get()
        if item is None:
            self._queue.put_nowait((t, None))  # stays exhausted
            raise StopAsyncIteration
        if self._shift is not None:
            delay = t + self._shift - self._loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        if isinstance(item, BaseException):
            raise item
        return item

    def hold(self) -> None:
        """The stream stops at the batch last handed out: start reading ahead."""
        if self._queue is not None:
            return
        self._held_since = self._arrived
        self._queue = asyncio.Queue()
        self._task = self._loop.create_task(self._read_ahead(self._queue))

    def release(self) -> None:
        """The hold is over: from now on batches come as late as the held one is."""
        if self._held_since is not None and self._shift is None:
            self._shift = max(0.0, self._loop.time() - self._held_since)

    async def _read_ahead(self, queue: asyncio.Queue[tuple[float, list[Event] | BaseException | None]]) -> None:
        try:
            async for batch in self._events:
                queue.put_nowait((self._loop.time(), batch))
        except Exception as exc:  # an upstream failure reaches the client when it happened, shifted
            queue.put_nowait((self._loop.time(), exc))
            return
        queue.put_nowait((self._loop.time(), None))

    async def stop(self) -> None:
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])
