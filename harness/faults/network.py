"""Faults of the network family: resets, black holes, lanes that stop listening.

These act on the connection, not on the HTTP answer, so what the client sees is its transport
layer's failure (``openai.APIConnectionError``, ``APITimeoutError``), never a status code
(reference: provider-wire-formats.md F10, F11, F12, F33). The per-attempt ones read the whole
request first (so the attempt is journaled with its dialect, model and fingerprint, and the
decision is per request even on a pooled keep-alive connection), then drop the connection the
way their name says. Only ``refuse`` works on the listener, over time.

A flapping lane (F29 at the TCP level, "lane_flap") is ``refuse`` with a flapping schedule::

    - fault: refuse
      lane: ultraspeed
      schedule: {every: 10, for: 3}   # down 3 s out of every 10 s, from drill start
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ..dialects.base import Rendered
from ..journal import EndReason
from ..proxy.hooks import AttemptContext, CloseMode, ConnectionAction
from .base import Fault, attr, register, seconds

if TYPE_CHECKING:
    from ..proxy.server import Lane

__all__ = ["Blackhole", "CloseBeforeHeaders", "Refuse", "Reset"]


@dataclass
class _Drop(Fault):
    """Read the request, then drop the connection instead of answering.

    With ``after_upstream`` the request is first forwarded and the upstream's answer awaited
    (the work is done and, on a real provider, billed), and only then is the connection dropped
    before the client sees a byte: the client's retry makes the upstream do it all again (F33,
    duplicate work). The upstream's whole answer is produced first, streamed or not (a stream is
    read to its end), and the attempt's ``usage`` records what the upstream did while ``tokens``
    (delivered) stays 0: the journal shows the work that was paid for and lost.
    """

    mode: ClassVar[CloseMode] = CloseMode.RESET
    reason: ClassVar[str] = EndReason.RESET.value

    delay: float = seconds(0.0, "seconds between reading the request and dropping the connection")
    after_upstream: bool = attr(False, "forward to the upstream first, then drop (F33: duplicate work on retry)")

    def action(self, ctx: AttemptContext) -> ConnectionAction:
        return ConnectionAction(self.mode, self.reason, self.s(ctx, self.delay))

    async def before(self, ctx: AttemptContext) -> Rendered | None:
        if not self.after_upstream:
            raise self.action(ctx)
        return None

    async def upstream_response(self, ctx: AttemptContext, response: Any) -> None:
        if not self.after_upstream:
            return
        ctx.extra["upstream_status"] = response.status
        if response.events is not None:
            async for batch in response.events:  # the upstream generates (and bills) everything
                for ev in batch:
                    if ev.usage is not None:
                        ctx.attempt.usage = ev.usage.to_dict()
        if response.usage and ctx.attempt.usage is None:
            ctx.attempt.usage = dict(response.usage)
        raise self.action(ctx)


@register("reset")
@dataclass
class Reset(_Drop):
    """F11: accept, read the request, then TCP RST (SO_LINGER 0) before any response byte.
    Stainless SDKs see a transport error, retry twice, then raise ``APIConnectionError``; the
    journal has one attempt per try, each with end reason ``reset``."""

    mode: ClassVar[CloseMode] = CloseMode.RESET
    reason: ClassVar[str] = EndReason.RESET.value


@register("close_before_headers")
@dataclass
class CloseBeforeHeaders(_Drop):
    """F11, the polite variant: read the request, then close the connection (FIN) without a
    response: the client reads EOF where the status line should be ("server disconnected
    without sending a response"). Journaled with end reason ``cut`` (the answer ended before it
    started)."""

    mode: ClassVar[CloseMode] = CloseMode.FIN
    reason: ClassVar[str] = EndReason.CUT.value


@register("blackhole")
@dataclass
class Blackhole(_Drop):
    """F12: accept, read the request, never answer, keep the connection open. The attempt
    ends when the client gives up (its read timeout: 600 s by default in the Stainless SDKs,
    none at all in google-genai), journaled with end reason ``blackhole``. ``delay`` is
    irrelevant here; ``after_upstream`` makes the upstream do the work first (F33: the answer is
    produced, then lost)."""

    mode: ClassVar[CloseMode] = CloseMode.HANG
    reason: ClassVar[str] = EndReason.BLACKHOLE.value


@register("refuse")
@dataclass
class Refuse(Fault):
    """F10: the lane vanishes: it stops listening while the schedule's window is on (new
    connections are refused: SYN answered by RST), and listens again on the same port after.

    A lane-level fault: the plan calls :meth:`set_active` at the schedule's edges (``always``:
    down from the start until the fault is removed or the drill stops), never per attempt.
    Refused connections never reach the lane, so they are **not attempts** and the journal has
    none for them: the evidence is the ``lane_down`` / ``lane_up`` marks, and the client's own
    errors. Connections already open keep working unless ``drop_connections: true`` (a crash:
    every open connection is reset too, and their attempts end as ``reset``); note that pooled
    keep-alive clients reach a "refusing" lane over their open connections otherwise.

    ``lane_flap`` is this fault with ``schedule: {every: 10, for: 3}`` (see the module doc).
    """

    lane_level: ClassVar[bool] = True

    drop_connections: bool = attr(False, "also reset every open connection when the lane goes down (a crash)")

    def __post_init__(self) -> None:
        self._down: set[str] = set()

    def select(self, ctx: AttemptContext, scheduled: bool) -> None:
        """Never per attempt: the listener is the fault (the plan skips lane-level faults)."""
        return None

    async def set_active(self, lane: Lane, on: bool, plan: Any) -> None:
        """Take ``lane`` down (``on``) or bring it back; marks ``lane_down`` / ``lane_up``."""
        journal = getattr(plan, "journal", None)
        entry = _entry_name(plan, self)
        if on:
            if lane.name in self._down:
                return
            await lane.unlisten()
            if self.drop_connections:
                await lane.drop_connections()
            self._down.add(lane.name)
            if journal is not None:
                journal.mark("lane_down", lane.name, fault=entry, drop_connections=self.drop_connections)
        else:
            if lane.name not in self._down:
                return
            try:
                await lane.listen()
            except OSError as exc:  # the port was taken while the lane was down
                if journal is not None:
                    journal.mark("lane_up_failed", lane.name, fault=entry, error=str(exc))
                raise
            self._down.discard(lane.name)
            if journal is not None:
                journal.mark("lane_up", lane.name, fault=entry)


def _entry_name(plan: Any, fault: Fault) -> str:
    """The profile entry's name for ``fault`` (``refuse@ultraspeed``), for the marks."""
    with contextlib.suppress(Exception):
        for e in plan.entries:
            if e.fault is fault:
                return str(e.name)
    return fault.name
