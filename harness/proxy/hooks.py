"""Where faults plug into a lane: one decision per attempt, and an event-level stream transformer.

The lane asks its :class:`FaultHook` once per attempt (never per connection, so pooled
keep-alive clients see exactly the schedule). The answer is an :class:`Intervention` or ``None``.
An intervention can act at three points:

* :meth:`Intervention.before` runs before the upstream is asked: it may wait (a queue), answer
  itself with a provider-exact error (:class:`~harness.dialects.base.Rendered`), or drop the
  connection by raising :class:`ConnectionAction` (reset, black hole).
* :meth:`Intervention.after_headers` runs when the upstream's status is known, before the 200 is
  sent: it may delay the headers.
* :meth:`Intervention.transform` wraps the stream of event batches: pace, stall, cut, inject an
  in-band error, corrupt an event. It yields batches of events to write, or a :class:`Close`
  telling the lane how to end the connection.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..dialects.base import Dialect, Event, Rendered, RequestInfo, StreamEncoder
from ..journal import Attempt

__all__ = ["AttemptContext", "Close", "CloseMode", "ConnectionAction", "FaultHook", "Intervention", "StreamItem"]


class CloseMode(enum.StrEnum):
    CLEAN = "clean"  # finish the HTTP body properly (chunked terminator), close nothing
    FIN = "fin"  # close the TCP connection without finishing the chunked body
    RESET = "reset"  # TCP RST (SO_LINGER 0)
    HANG = "hang"  # keep the connection open and send nothing more until the client leaves


@dataclass(frozen=True, slots=True)
class Close:
    """End the response now, the way ``mode`` says; ``reason`` is written to the journal."""

    mode: CloseMode = CloseMode.FIN
    reason: str = "cut"


class ConnectionAction(Exception):
    """Raised by :meth:`Intervention.before` to drop the connection instead of answering."""

    def __init__(self, mode: CloseMode, reason: str, delay: float = 0.0) -> None:
        super().__init__(reason)
        self.mode = mode
        self.reason = reason
        self.delay = delay


StreamItem = list[Event] | Close


@dataclass(slots=True)
class AttemptContext:
    """Everything a fault may look at or use for one attempt."""

    lane: str
    attempt: Attempt
    dialect: Dialect
    request: RequestInfo
    headers: dict[str, str]
    time_scale: float = 1.0
    intervention: Intervention | None = None
    _encoder: StreamEncoder | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: awaited by the lane once the response is over, before it closes the upstream: a fault that
    #: reads the upstream in a task of its own stops that task here
    cleanups: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    @property
    def encoder(self) -> StreamEncoder:
        """A stream encoder for events the fault writes itself (keep-alives, in-band errors)."""
        if self._encoder is None:
            self._encoder = self.dialect.stream_encoder(self.request)
        return self._encoder


class Intervention:
    """A fault applied to one attempt. Subclasses override what they need; defaults pass through."""

    name: str = "none"
    #: False for interventions that only observe or decorate (a rate limiter that admitted the
    #: request): the journal then records no fault for the attempt
    is_fault: bool = True

    def describe(self) -> dict[str, Any]:
        """What the journal records as the fault applied."""
        return {"name": self.name}

    async def before(self, ctx: AttemptContext) -> Rendered | None:
        return None

    async def upstream_response(self, ctx: AttemptContext, response: Any) -> None:
        """Sees the upstream's whole response object (an ``UpstreamResponse``) before anything is
        sent to the client: a fault may drain it (the upstream does all its work) and then drop
        the connection by raising :class:`ConnectionAction`."""
        return None

    async def after_headers(self, ctx: AttemptContext, status: int) -> None:
        return None

    def transform(self, ctx: AttemptContext, events: AsyncIterator[list[Event]]) -> AsyncIterator[StreamItem]:
        return events  # type: ignore[return-value]

    def touches_stream(self) -> bool:
        """True when this intervention may act on the stream's events or read the upstream's
        response itself (it overrides :meth:`transform` or :meth:`upstream_response`): the lane
        then takes the full event path; otherwise the stream passes through as the upstream
        sent it (``proxy/passthrough.py``)."""
        cls = type(self)
        base = Intervention
        return cls.transform is not base.transform or cls.upstream_response is not base.upstream_response

    def response_headers(self, ctx: AttemptContext, status: int) -> list[tuple[str, str]]:
        """Headers to add to whatever the attempt answers (rate-limit counters, for example)."""
        return []

    def finished(self, ctx: AttemptContext) -> None:
        """Called once when the attempt has ended, however it ended (to release or charge state)."""
        return None


class FaultHook(Protocol):
    def decide(self, ctx: AttemptContext) -> Intervention | None:
        """The fault for this attempt, decided from the attempt and the clock alone."""
        ...
