"""The AWS event-stream binary framing (``application/vnd.amazon.eventstream``), sans-IO.

Bedrock's ``ConverseStream`` and ``InvokeModelWithResponseStream`` do not stream SSE: each event
is one binary message::

    [total length u32][headers length u32][prelude CRC u32] [headers] [payload] [message CRC u32]

both CRCs being CRC-32 (the prelude's over its first 8 bytes, the message's over every byte before
it), and each header ``[name length u8][name][type u8][value]`` (only type 7, a UTF-8 string with
a u16 length, is used by Bedrock). ``:message-type`` is ``event`` (named by ``:event-type``) or
``exception`` (named by ``:exception-type``); the payload is JSON.

:class:`EventStreamDecoder` yields :class:`EventStreamMessage`, an :class:`~harness.sse.SSEEvent`
whose ``raw`` is the whole frame, ``event`` the event or exception type and ``data`` the payload,
so the lane's stream path and the faults treat a frame exactly like an SSE event. A frame whose
CRC does not match makes the rest of the stream unreadable (the length fields can no longer be
trusted): from there on every byte is passed on as one malformed message, as a client would
have to give up on it.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from ..sse import SSEEvent, SSEEventTooLarge

__all__ = ["EventStreamDecoder", "EventStreamMessage", "encode_message"]

_PRELUDE = struct.Struct("!II")
_U32 = struct.Struct("!I")
_STRING = 7


@dataclass(frozen=True, slots=True)
class EventStreamMessage(SSEEvent):
    """One decoded frame. ``message_type`` is ``event``, ``exception`` or ``error``; it is ``""``
    for bytes that are not a valid frame (a CRC mismatch, or a stream cut inside a frame)."""

    message_type: str = ""

    @property
    def malformed(self) -> bool:
        return not self.message_type


def encode_message(headers: tuple[tuple[str, str], ...] | list[tuple[str, str]], payload: bytes) -> bytes:
    """One frame with string ``headers`` and ``payload``, both CRCs computed."""
    head = bytearray()
    for name, value in headers:
        n, v = name.encode(), value.encode()
        head += bytes((len(n),)) + n + bytes((_STRING,)) + struct.pack("!H", len(v)) + v
    total = 12 + len(head) + len(payload) + 4
    prelude = _PRELUDE.pack(total, len(head))
    prelude += _U32.pack(zlib.crc32(prelude))
    body = prelude + bytes(head) + payload
    return body + _U32.pack(zlib.crc32(body))


def event_frame(event_type: str, payload: bytes) -> bytes:
    """An ``event`` frame of type ``event_type`` with a JSON payload."""
    return encode_message(
        ((":event-type", event_type), (":content-type", "application/json"), (":message-type", "event")), payload
    )


def exception_frame(exception_type: str, payload: bytes) -> bytes:
    """An ``exception`` frame (Bedrock's in-stream errors: ``throttlingException`` ...)."""
    return encode_message(
        ((":exception-type", exception_type), (":content-type", "application/json"), (":message-type", "exception")),
        payload,
    )


class EventStreamDecoder:
    """Incremental decoder with the interface of :class:`~harness.sse.SSEDecoder`: feed bytes as
    they arrive, get the frames completed so far; ``pending`` holds a frame not yet whole.
    Framing and parsing are also separate steps (:meth:`frames`, :meth:`parse`), for a reader
    that frames every read but parses only some frames."""

    def __init__(self, max_event_bytes: int | None = None) -> None:
        self._buf = bytearray()
        self._broken = False
        self.max_event_bytes = max_event_bytes

    @property
    def pending(self) -> bytes:
        return bytes(self._buf)

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        return [self.parse(raw) for raw in self.frames(chunk)]

    def frames(self, chunk: bytes) -> list[bytes]:
        """The raw frames ``chunk`` completes; once a CRC failed, every chunk is one "frame"."""
        if self._broken:
            return [chunk] if chunk else []
        self._buf += chunk
        out: list[bytes] = []
        buf = self._buf
        while len(buf) >= 12:
            total, head_len = _PRELUDE.unpack_from(buf)
            (prelude_crc,) = _U32.unpack_from(buf, 8)
            if zlib.crc32(buf[:8]) != prelude_crc or total < 16 + head_len:
                return out + self._break()
            if self.max_event_bytes is not None and total > self.max_event_bytes:
                raise SSEEventTooLarge(total, self.max_event_bytes, [self.parse(f) for f in out])
            if len(buf) < total:
                break
            (message_crc,) = _U32.unpack_from(buf, total - 4)
            if zlib.crc32(buf[: total - 4]) != message_crc:
                return out + self._break()
            out.append(bytes(buf[:total]))
            del buf[:total]
        return out

    @staticmethod
    def parse(raw: bytes) -> EventStreamMessage:
        """One frame's type and payload (``malformed`` when ``raw`` is not a valid frame)."""
        bad = EventStreamMessage(raw=raw, event=None, data="")
        if len(raw) < 16:
            return bad
        total, head_len = _PRELUDE.unpack_from(raw)
        if total != len(raw) or zlib.crc32(raw[: total - 4]) != _U32.unpack_from(raw, total - 4)[0]:
            return bad
        try:
            headers = _headers(raw[12 : 12 + head_len])
        except (ValueError, IndexError, UnicodeDecodeError):
            return bad
        mtype = headers.get(":message-type") or "event"
        if mtype == "event":
            name = headers.get(":event-type")
        elif mtype == "exception":
            name = headers.get(":exception-type")
        else:
            name = headers.get(":error-code")
        payload = raw[12 + head_len : total - 4].decode("utf-8", errors="replace")
        return EventStreamMessage(raw=raw, event=name, data=payload, message_type=mtype)

    def _break(self) -> list[bytes]:
        self._broken = True
        rest = bytes(self._buf)
        self._buf.clear()
        return [rest] if rest else []


def _headers(data: bytes) -> dict[str, str]:
    """String-valued headers of a frame (other types are skipped by their sizes)."""
    out: dict[str, str] = {}
    i = 0
    sizes = {2: 1, 3: 2, 4: 4, 5: 8, 8: 8, 9: 16}
    while i < len(data):
        n = data[i]
        name = data[i + 1 : i + 1 + n].decode()
        i += 1 + n
        htype = data[i]
        i += 1
        if htype in (6, _STRING):
            (length,) = struct.unpack_from("!H", data, i)
            value = data[i + 2 : i + 2 + length]
            if i + 2 + length > len(data):
                raise ValueError("header value runs past the headers")
            i += 2 + length
            if htype == _STRING:
                out[name] = value.decode()
        elif htype in (0, 1):
            continue
        elif htype in sizes:
            i += sizes[htype]
        else:
            raise ValueError(f"unknown header type {htype}")
    return out
