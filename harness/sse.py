"""Server-Sent Events codec shared by every dialect.

The proxy needs to see a stream event by event (to pace it, cut it, or count tokens) while still
forwarding the exact bytes the upstream sent. So the decoder keeps each event's raw bytes next to
its parsed fields, and the encoder produces byte-exact frames.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SSEDecoder", "SSEEvent", "SSEEventTooLarge", "encode_comment", "encode_event"]


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One event as read off the wire: ``raw`` is exactly what arrived, blank line included."""

    raw: bytes
    event: str | None
    data: str
    comments: tuple[str, ...] = ()

    @property
    def is_comment_only(self) -> bool:
        """A frame with only ``:`` lines: a keep-alive, invisible to SSE clients."""
        return self.event is None and not self.data and bool(self.comments)


def encode_event(data: str, event: str | None = None) -> bytes:
    """Frame one event: optional ``event:`` line, one ``data:`` line per line of data, blank line."""
    head = f"event: {event}\n" if event else ""
    if "\n" in data:
        body = "".join(f"data: {line}\n" for line in data.split("\n"))
    else:
        body = f"data: {data}\n"
    return (head + body + "\n").encode()


def encode_comment(text: str = "") -> bytes:
    """A comment frame (``: text``), the keep-alive some relays send during long waits."""
    return f": {text}\n\n".encode() if text else b":\n\n"


class SSEEventTooLarge(ValueError):
    """One event grew past the decoder's ``max_event_bytes`` (an upstream whose event never
    ends). ``events`` are those completed before it in the same feed, still to be delivered."""

    def __init__(self, size: int, limit: int, events: list[SSEEvent]) -> None:
        super().__init__(f"an SSE event exceeded {limit} bytes ({size} bytes without an end)")
        self.size = size
        self.limit = limit
        self.events = events


class SSEDecoder:
    """Incremental decoder: feed bytes as they arrive, get back the events completed so far.

    Works on bytes (not text) so that a multi-byte character split across reads is kept intact
    and so ``raw`` can be forwarded unchanged. ``max_event_bytes`` bounds one event: past it
    :meth:`feed` raises :class:`SSEEventTooLarge` instead of buffering without limit. Each byte
    is searched for an event boundary once, however many reads an event spans.
    """

    def __init__(self, max_event_bytes: int | None = None) -> None:
        self._buf = bytearray()
        self._scanned = 0  # bytes at the start of _buf already searched for a boundary
        self._cr = False  # _buf holds a CR: CRLF and CR framing are looked for too
        self.max_event_bytes = max_event_bytes

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        return [ev for raw in self.frames(chunk) if (ev := _parse(raw)) is not None]

    def frames(self, chunk: bytes) -> list[bytes]:
        """The raw frames ``chunk`` completes, blank line included (framing without parsing, for
        a reader that parses only some frames: :meth:`parse` gives each its meaning)."""
        if not self._buf and not self._cr and b"\r" not in chunk:
            return self._frames_of_chunk(chunk)
        self._buf += chunk
        if not self._cr and b"\r" in chunk:
            self._cr = True
        out: list[bytes] = []
        limit = self.max_event_bytes
        while True:
            end, sep_len = self._find_boundary()
            if end < 0:
                break
            if limit is not None and end + sep_len > limit:
                raise SSEEventTooLarge(end + sep_len, limit, [e for f in out if (e := _parse(f)) is not None])
            raw = bytes(self._buf[: end + sep_len])
            del self._buf[: end + sep_len]
            self._scanned = 0
            if self._cr:
                self._cr = b"\r" in self._buf
            out.append(raw)
        self._scanned = max(0, len(self._buf) - 3)  # a separator may straddle this read and the next
        if limit is not None and len(self._buf) > limit:
            raise SSEEventTooLarge(len(self._buf), limit, [e for f in out if (e := _parse(f)) is not None])
        return out

    def _frames_of_chunk(self, chunk: bytes) -> list[bytes]:
        """:meth:`frames` when nothing is buffered and the framing is LF only (a forwarded
        stream's every read, nearly): frames are sliced from ``chunk`` itself, no buffer."""
        out: list[bytes] = []
        limit = self.max_event_bytes
        pos = 0
        n = len(chunk)
        while (i := chunk.find(b"\n\n", pos)) >= 0:
            end = i + 2
            if limit is not None and end - pos > limit:
                raise SSEEventTooLarge(end - pos, limit, [e for f in out if (e := _parse(f)) is not None])
            out.append(chunk if pos == 0 and end == n else chunk[pos:end])
            pos = end
        if pos < n:
            self._buf += chunk[pos:] if pos else chunk
            self._scanned = max(0, len(self._buf) - 3)
            if limit is not None and len(self._buf) > limit:
                raise SSEEventTooLarge(len(self._buf), limit, [e for f in out if (e := _parse(f)) is not None])
        return out

    @staticmethod
    def parse(raw: bytes) -> SSEEvent | None:
        """One frame's fields; None for a frame with none (blank lines, ``id:`` or ``retry:``
        alone), which carries nothing an SSE client reads and is not forwarded."""
        return _parse(raw)

    @property
    def pending(self) -> bytes:
        """Bytes of an event not yet terminated by a blank line (a cut stream leaves these)."""
        return bytes(self._buf)

    def _find_boundary(self) -> tuple[int, int]:
        buf = self._buf
        start = self._scanned
        if not self._cr:  # the common case: LF-only framing, one scan
            i = buf.find(b"\n\n", start)
            return (i, 2) if i >= 0 else (-1, 0)
        best = -1
        best_len = 0
        for sep in (b"\n\n", b"\r\n\r\n", b"\r\r"):
            i = buf.find(sep, start)
            if i >= 0 and (best < 0 or i < best):
                best, best_len = i, len(sep)
        return best, best_len


def _parse(raw: bytes) -> SSEEvent | None:
    # fast paths for the two shapes providers send thousands of times a second:
    # "data: ...\n\n" and "event: name\ndata: ...\n\n" (one data line, LF framing)
    if raw.endswith(b"\n\n") and b"\r" not in raw:
        first = raw.find(b"\n")
        if raw.startswith(b"data: ") and first == len(raw) - 2:
            return SSEEvent(raw=raw, event=None, data=raw[6:-2].decode("utf-8", errors="replace"))
        if (
            raw.startswith(b"event: ")
            and raw.startswith(b"data: ", first + 1)
            and raw.find(b"\n", first + 1) == len(raw) - 2
        ):
            return SSEEvent(
                raw=raw,
                event=raw[7:first].decode("utf-8", errors="replace"),
                data=raw[first + 7 : -2].decode("utf-8", errors="replace"),
            )
    text = raw.decode("utf-8", errors="replace")
    event: str | None = None
    data_lines: list[str] = []
    comments: list[str] = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if not line:
            continue
        if line.startswith(":"):
            comments.append(line[1:].strip())
            continue
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "event":
            event = value
        elif field == "data":
            data_lines.append(value)
    if event is None and not data_lines and not comments:
        return None
    return SSEEvent(raw=raw, event=event, data="\n".join(data_lines), comments=tuple(comments))
