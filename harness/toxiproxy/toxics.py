"""Toxics: one small class per Toxiproxy toxic type, registered by name.

Modelled on Shopify/toxiproxy's ``toxics/*.go``: a toxic is a dataclass whose fields are its JSON
``attributes`` (same names and units as Toxiproxy), plus a ``pipe`` method that receives one chunk
and emits zero or more chunks downstream. Everything that touches sockets, timers or the chain
lives in :mod:`harness.toxiproxy.link`; a toxic only sees a :class:`Stub` (its view of one
connection in one direction), so each class stays small and readable.

Adding a toxic means adding one class here with ``@register``.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol


@dataclass(slots=True)
class Chunk:
    """Bytes read from one side, with the loop time they arrived (latency counts from it)."""

    data: bytes
    timestamp: float


Emit = Callable[[Chunk], Awaitable[None]]


class Stub(Protocol):
    """What a toxic sees of one link (one connection, one direction)."""

    state: Any
    rng: random.Random

    def now(self) -> float:
        """Loop time in seconds."""
        ...

    async def sleep(self, seconds: float) -> bool:
        """Sleep; False if cut short because the toxic was removed or updated."""
        ...

    def close(self) -> None:
        """End the stream after this toxic: an EOF flows through the rest of the chain."""
        ...

    def reset(self) -> None:
        """Abort the whole connection with a TCP RST."""
        ...

    def call_later(self, seconds: float, callback: Callable[[], None]) -> None:
        """Run ``callback`` later, unless the toxic is removed, updated or the link ends first."""
        ...


class Toxic:
    """Base toxic: a pass-through. Subclasses override the hooks they need."""

    type_name: ClassVar[str] = ""

    def validate(self) -> None:
        """Raise ValueError for attribute values the toxic cannot work with."""

    def new_state(self) -> Any:
        """Per-link state (Toxiproxy's StatefulToxic), kept across updates of the toxic."""
        return None

    def start(self, stub: Stub) -> None:
        """Called when the toxic starts on a link: new connection, toxic added or updated."""

    async def pipe(self, stub: Stub, chunk: Chunk, emit: Emit) -> None:
        """Handle one chunk; call ``emit`` for what goes on to the next toxic."""
        await emit(chunk)

    async def on_eof(self, stub: Stub) -> None:
        """Called when the input ends; the EOF goes on when this returns."""

    def cleanup(self, stub: Stub) -> None:
        """Called when the toxic is removed from a live link (Toxiproxy's CleanupToxic)."""

    # -- attributes as data ------------------------------------------------------------------------

    def attributes(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_attributes(cls, attrs: dict[str, Any], base: Toxic | None = None) -> Toxic:
        """Build from JSON attributes. Unknown keys are ignored and missing ones keep ``base``'s
        values (or zero), exactly like Go decoding JSON into a (copied) struct."""
        values = base.attributes() if base is not None else {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            if f.name not in attrs:
                continue
            value = attrs[f.name]
            number = not isinstance(value, bool) and isinstance(value, (int, float))
            # an int64 holds it: a float must be whole and in range (inf would overflow int())
            if not number or not -(2**63) <= value < 2**63 or value != int(value):
                raise ValueError(
                    f"json: cannot unmarshal {type(value).__name__} into Go struct field "
                    f"{cls.__name__}.attributes.{f.name} of type int64"
                )
            values[f.name] = int(value)
        toxic = cls(**values)
        toxic.validate()
        return toxic


TOXICS: dict[str, type[Toxic]] = {}


def register(cls: type[Toxic]) -> type[Toxic]:
    """Register a toxic class under its ``type_name`` (Toxiproxy's ``toxics.Register``)."""
    TOXICS[cls.type_name] = cls
    return cls


@register
@dataclass
class NoopToxic(Toxic):
    type_name: ClassVar[str] = "noop"


@register
@dataclass
class LatencyToxic(Toxic):
    """Delay each chunk by latency ± jitter ms, counted from its arrival: the stream shifts, gaps stay."""

    type_name: ClassVar[str] = "latency"
    latency: int = 0
    jitter: int = 0

    def delay(self, rng: random.Random) -> float:
        ms = self.latency
        if self.jitter > 0:
            ms += rng.randrange(self.jitter * 2) - self.jitter
        return ms / 1000.0

    async def pipe(self, stub: Stub, chunk: Chunk, emit: Emit) -> None:
        delay = self.delay(stub.rng)
        wait = chunk.timestamp + delay - stub.now()
        if wait > 0:
            await stub.sleep(wait)
        await emit(Chunk(chunk.data, chunk.timestamp + delay))


@dataclass
class _BandwidthState:
    debt: float = 0.0  # seconds still owed; carries timer error between chunks like the Go code


@register
@dataclass
class BandwidthToxic(Toxic):
    """Limit throughput to ``rate`` KB/s; big chunks go out in 100 ms slices."""

    type_name: ClassVar[str] = "bandwidth"
    rate: int = 0

    def new_state(self) -> _BandwidthState:
        return _BandwidthState()

    async def pipe(self, stub: Stub, chunk: Chunk, emit: Emit) -> None:
        if self.rate <= 0:
            await emit(chunk)
            return
        state: _BandwidthState = stub.state
        data = chunk.data
        state.debt += len(data) / (self.rate * 1000.0)
        slice_size = self.rate * 100
        while len(data) > slice_size:
            if not await stub.sleep(0.1):
                break
            await emit(Chunk(data[:slice_size], chunk.timestamp))
            data = data[slice_size:]
            state.debt -= 0.1
        started = stub.now()
        await stub.sleep(state.debt)
        state.debt -= stub.now() - started
        await emit(Chunk(data, chunk.timestamp))


@register
@dataclass
class SlicerToxic(Toxic):
    """Split chunks into ~average_size pieces (± size_variation) with ``delay`` µs between them."""

    type_name: ClassVar[str] = "slicer"
    average_size: int = 0
    size_variation: int = 0
    delay: int = 0

    def validate(self) -> None:
        if self.average_size <= 0:
            raise ValueError("slicer: average_size must be positive")
        if not 0 <= self.size_variation < self.average_size:
            raise ValueError("slicer: size_variation must be >= 0 and below average_size")

    def cuts(self, size: int, rng: random.Random) -> list[int]:
        """Piece boundaries, as in Go's recursive ``chunk`` (whose left halves never split again)."""
        cuts, start = [], 0
        while size - start >= self.average_size + self.size_variation:
            mid = start + self.average_size
            if self.size_variation > 0:
                mid += rng.randrange(self.size_variation * 2) - self.size_variation
            cuts.append(mid)
            start = mid
        cuts.append(size)
        return cuts

    async def pipe(self, stub: Stub, chunk: Chunk, emit: Emit) -> None:
        start = 0
        for end in self.cuts(len(chunk.data), stub.rng):
            await emit(Chunk(chunk.data[start:end], chunk.timestamp))
            start = end
            if self.delay > 0 and not await stub.sleep(self.delay / 1_000_000):
                break
        if start < len(chunk.data):  # interrupted: don't drop data on the floor
            await emit(Chunk(chunk.data[start:], chunk.timestamp))


@dataclass
class _LimitState:
    transmitted: int = 0


@register
@dataclass
class LimitDataToxic(Toxic):
    """Pass ``bytes`` bytes per connection (and direction), then close; may cut a message."""

    type_name: ClassVar[str] = "limit_data"
    bytes: int = 0

    def new_state(self) -> _LimitState:
        return _LimitState()

    def start(self, stub: Stub) -> None:
        if self.bytes - stub.state.transmitted <= 0:
            stub.close()

    async def pipe(self, stub: Stub, chunk: Chunk, emit: Emit) -> None:
        state: _LimitState = stub.state
        remaining = self.bytes - state.transmitted
        if remaining > 0:
            data = chunk.data[:remaining]
            state.transmitted += len(data)
            await emit(Chunk(data, chunk.timestamp))
        if state.transmitted >= self.bytes:
            stub.close()


@register
@dataclass
class ResetPeerToxic(Toxic):
    """On the first chunk (or EOF) wait ``timeout`` ms, then reset the connection (TCP RST)."""

    type_name: ClassVar[str] = "reset_peer"
    timeout: int = 0

    async def pipe(self, stub: Stub, chunk: Chunk, emit: Emit) -> None:
        if await stub.sleep(self.timeout / 1000.0):
            stub.reset()  # the chunk that triggered the reset is dropped
        else:
            await emit(chunk)  # removed while waiting

    async def on_eof(self, stub: Stub) -> None:
        if await stub.sleep(self.timeout / 1000.0):
            stub.reset()


@register
@dataclass
class TimeoutToxic(Toxic):
    """Drop all data; close after ``timeout`` ms (0: never, until the toxic is removed)."""

    type_name: ClassVar[str] = "timeout"
    timeout: int = 0

    def start(self, stub: Stub) -> None:
        if self.timeout > 0:
            stub.call_later(self.timeout / 1000.0, stub.close)

    async def pipe(self, stub: Stub, chunk: Chunk, emit: Emit) -> None:
        return None  # black hole

    def cleanup(self, stub: Stub) -> None:
        stub.close()


@register
@dataclass
class SlowCloseToxic(Toxic):
    """Wait ``delay`` ms after the input ends before passing the close on."""

    type_name: ClassVar[str] = "slow_close"
    delay: int = 0

    async def on_eof(self, stub: Stub) -> None:
        await stub.sleep(self.delay / 1000.0)
