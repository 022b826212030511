"""How the journal keeps attempts so a lane's memory does not grow with the drill.

A drill of an hour at 200 attempts/s records 720,000 attempts; kept as they were made (a dict of
~17 request headers each, fresh strings for every name and value, a dict per usage and fault),
that was ~3.5 KB an attempt, gigabytes for the hour. Two things keep it bounded:

* **Compact records.** When an attempt is recorded its strings are interned (lane, path, model,
  dialect, header names and values: a drill repeats them endlessly), its headers become one
  read-only :class:`Headers` of interned pairs shared by every attempt that sent the same set,
  and small dicts that repeat (usage, the fault applied, an error) are shared by value. Call
  texts are stored once per distinct text (:meth:`Compactor.text`): N calls that got the same
  answer hold one string. Recorded records are read-only from then on (nothing in the harness
  changes an attempt after it is recorded: the journal file already holds it as it was).
* **A hot window.** The newest :data:`HOT_LIMIT` attempts stay in memory as objects; older ones
  are *cold*: only where their JSON line is (offset and length: 12 bytes an attempt) stays in
  memory. A journal mirrored to a file already holds the line; an in-memory journal writes it to
  a temporary file of its own. Reading every attempt (checks, the report) decodes the cold ones
  once and keeps them until the next attempts are evicted, so a drill that is judged at its end
  pays one decode and a lane that nobody reads while it runs stays flat.
"""

from __future__ import annotations

import json
import sys
import tempfile
from array import array
from collections.abc import Iterator, Mapping
from typing import IO, Any

__all__ = ["CHUNK", "HOT_LIMIT", "AttemptStore", "Compactor", "Headers"]

#: attempts kept in memory as objects; older ones are read back from their JSON line
HOT_LIMIT = 4096
#: attempts moved out of memory at a time (one short pause, not one per attempt)
CHUNK = 512
_INTERN_MAX = 256  # longer strings are rarely repeated verbatim; interning them gains nothing
_SHARED_MAX = 2048  # distinct header sets / small dicts remembered for sharing


class Headers(Mapping[str, str]):
    """A recorded attempt's request headers: read-only, names lowercase, pairs interned and the
    whole set shared with every attempt that sent the same headers. Compares equal to the dict
    it was made from; ``dict(h)`` gives a plain dict."""

    __slots__ = ("_items",)

    def __init__(self, items: tuple[tuple[str, str], ...]) -> None:
        self._items = items

    def __getitem__(self, key: str) -> str:
        for k, v in self._items:
            if k == key:
                return v
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return (k for k, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return repr(dict(self._items))


def _intern(value: Any) -> Any:
    return sys.intern(value) if type(value) is str and len(value) <= _INTERN_MAX else value


class Compactor:
    """Interning and sharing for one journal (see the module docstring)."""

    #: attempt fields holding strings that repeat across attempts
    STRINGS = ("lane", "method", "path", "dialect", "operation", "model", "fingerprint", "parent_fingerprint",
               "upstream", "end_reason", "outcome", "finish", "call_id")  # fmt: skip
    SHARED = ("usage", "fault", "error")

    def __init__(self) -> None:
        self._headers: dict[tuple[tuple[str, str], ...], Headers] = {}
        self._dicts: dict[str, dict[str, Any]] = {}
        self._texts: dict[str, str] = {}

    def attempt(self, a: Any) -> None:
        """Make a just-recorded attempt compact, in place."""
        for name in self.STRINGS:
            v = getattr(a, name)
            if v is not None:
                setattr(a, name, _intern(v))
        a.headers = self.headers(a.headers)
        for name in self.SHARED:
            v = getattr(a, name)
            if v:
                setattr(a, name, self.shared(v))
        if a.tools_offered:
            a.tools_offered = [_intern(t) for t in a.tools_offered]

    def headers(self, headers: Mapping[str, str]) -> Headers:
        items = tuple((_intern(k), _intern(v)) for k, v in headers.items())
        h = self._headers.get(items)
        if h is None:
            h = Headers(items)
            if len(self._headers) >= _SHARED_MAX:
                self._headers.clear()  # a drill that sends ever new header sets: share what recurs now
            self._headers[items] = h
        return h

    def shared(self, d: dict[str, Any]) -> dict[str, Any]:
        """One dict for every equal small dict (a usage, a fault's description, an error)."""
        try:
            key = json.dumps(d, sort_keys=True, allow_nan=True)
        except (TypeError, ValueError):
            return d
        if len(key) > 1024:
            return d
        got = self._dicts.get(key)
        if got is None:
            if len(self._dicts) >= _SHARED_MAX:
                self._dicts.clear()
            self._dicts[key] = got = d
        return got

    def text(self, text: str | None) -> str | None:
        """The one stored copy of ``text``: calls that got the same answer share it."""
        if not text:
            return text
        got = self._texts.get(text)
        if got is None:
            self._texts[text] = got = text
        return got


class AttemptStore:
    """Recorded attempts in record order: the newest as objects, the rest as JSON lines on disk.

    ``decode`` turns one stored line (bytes) back into an attempt; ``encode`` gives the line of an
    attempt that has none yet (an in-memory journal's, or one whose file is not readable)."""

    def __init__(self, decode: Any, encode: Any, *, hot_limit: int = HOT_LIMIT, chunk: int | None = None) -> None:
        self._decode = decode
        self._encode = encode
        self.hot_limit = max(1, hot_limit)
        self.chunk = chunk or max(1, min(CHUNK, self.hot_limit // 4))
        self._hot: list[Any] = []
        self._hot_pos = array("q")  # where each hot attempt's line is in the journal file (-1: nowhere)
        self._hot_len = array("I")
        self._cold_pos = array("q")  # >= 0: the journal file; < 0: ~pos in the spill file
        self._cold_len = array("I")
        self._cache: list[Any] | None = None  # the cold attempts decoded, while nothing more was evicted
        self._path: str | None = None  # the journal file the positions point into
        self._reader: IO[bytes] | None = None
        self._spill: IO[bytes] | None = None

    def __len__(self) -> int:
        return len(self._hot) + len(self._cold_pos)

    @property
    def cold(self) -> int:
        return len(self._cold_pos)

    @property
    def held(self) -> int:
        """Attempts held as objects: the hot ones, and the cold ones decoded by the last read."""
        return len(self._hot) + (len(self._cache) if self._cache is not None else 0)

    def bind_file(self, path: str) -> None:
        """Positions given to :meth:`append` are byte offsets into ``path``."""
        self._path = path

    def append(self, attempt: Any, pos: int = -1, length: int = 0) -> None:
        self._hot.append(attempt)
        self._hot_pos.append(pos)
        self._hot_len.append(length)
        if len(self._hot) >= self.hot_limit + self.chunk:
            self._evict(self.chunk)

    def _evict(self, n: int) -> None:
        if self._path is not None and self._reader is None:
            try:
                self._reader = open(self._path, "rb")
            except OSError:
                self._path = None
        for a, pos, length in zip(self._hot[:n], self._hot_pos[:n], self._hot_len[:n], strict=True):
            if pos < 0 or self._reader is None:
                if self._spill is None:
                    self._spill = tempfile.TemporaryFile(prefix="routechaos-journal-")
                line = self._encode(a)
                self._spill.seek(0, 2)
                pos = ~self._spill.tell()
                self._spill.write(line)
                length = len(line)
            self._cold_pos.append(pos)
            self._cold_len.append(length)
        del self._hot[:n], self._hot_pos[:n], self._hot_len[:n]
        if self._spill is not None:
            self._spill.flush()
        self._cache = None

    def _read(self, pos: int, length: int) -> bytes:
        fh = self._spill if pos < 0 else self._reader
        assert fh is not None
        fh.seek(~pos if pos < 0 else pos)
        return fh.read(length)

    def all(self) -> list[Any]:
        """Every attempt, in record order (the cold ones decoded once, then cached)."""
        if not self._cold_pos:
            return list(self._hot)
        cache = self._cache if self._cache is not None else []
        for i in range(len(cache), len(self._cold_pos)):
            cache.append(self._decode(self._read(self._cold_pos[i], self._cold_len[i])))
        self._cache = cache
        return cache + self._hot

    def hot(self) -> list[Any]:
        return list(self._hot)

    def close(self) -> None:
        for fh in (self._reader, self._spill):
            if fh is not None:
                fh.close()
        self._reader = self._spill = None
        self._cache = None
