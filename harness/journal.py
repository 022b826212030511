"""The journal: the append-only history of attempts and calls, and the only evidence checks use.

Each attempt is written once, as a JSON line, the moment it ends (complete, cut, client gone,
timed out ...), and flushed, so a drill that crashes keeps every attempt that finished. An
attempt still open when its lane stops is written with outcome ``unknown``: like Jepsen's
``:info``, an attempt whose effect we cannot know is never counted as a success or a failure.

Secrets never get here: request headers pass through :func:`redact_headers` and URLs through
:func:`redact_url` before they are stored, and every error text (an upstream's error body, a
failure message, an agent's exception) and mark detail is redacted as it is recorded
(:mod:`harness.redact`).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from .clock import Clock, MonotonicClock
from .journalrecords import (
    _CHOICES,
    _FREE_TEXT,
    _RECORDS,
    Attempt,
    Call,
    EndReason,
    JournalError,
    JournalExistsError,
    Mark,
    Outcome,
    outcome_of,
)
from .journalstore import HOT_LIMIT, AttemptStore, Compactor
from .jsonl import FieldError, brief, dumps, record_from_json
from .redact import REDACTED, SECRET_HEADERS, redact_headers, redact_obj, redact_text, redact_url

__all__ = [
    "REDACTED",
    "SECRET_HEADERS",
    "Attempt",
    "Call",
    "EndReason",
    "Journal",
    "JournalError",
    "JournalExistsError",
    "Mark",
    "Outcome",
    "redact_headers",
    "redact_url",
]


class Journal:
    """Attempts, calls and marks in memory, mirrored line by line to a JSONL file if given.

    Thread-safe: lanes record from their event loop while a test reads from its own thread.
    Memory stays bounded over a long drill (:mod:`harness.journalstore`): recorded attempts are
    made compact and read-only, and only the newest are kept as objects.
    """

    def __init__(
        self, path: str | Path | None = None, clock: Clock | None = None, *, hot_limit: int | None = None
    ) -> None:
        self.clock = clock or MonotonicClock()
        self.t0 = self.clock.now()
        self.wall0 = time.time()
        self.path = Path(path) if path else None
        #: profile seconds per real second of this view (``rescaled`` multiplies it): tolerances
        #: that are real (a clock read, a report over HTTP) are converted with it
        self.scale = 1.0
        self._lock = threading.Condition()
        self._compact = Compactor()
        #: ``hot_limit``: attempts kept as objects (default :data:`~harness.journalstore.HOT_LIMIT`)
        self._attempts = AttemptStore(self._decode_attempt, _encode, hot_limit=hot_limit or HOT_LIMIT)
        #: every attempt in start order, as :meth:`attempts` last sorted them; dropped by the next
        #: attempt recorded, so it never holds cold attempts longer than the store's own read does
        self._in_order: list[Attempt] | None = None
        self._added = 0  # attempts added so far: a sort finished after another was added is not kept
        #: per lane: attempts, ok, error, unknown, faulted (what a live view shows, without reading them all)
        self._tally: dict[str, list[int]] = {}
        self._last_bad: Attempt | None = None
        self._calls: list[Call] = []
        self._marks: list[Mark] = []
        self._running: dict[int, Call] = {}
        # conversation fingerprint -> (the key its per-call counts go under, the calls running
        # when it was chosen): see :meth:`call_key`
        self._fp_keys: dict[str, tuple[str, frozenset[str]]] = {}
        self._seq = 0
        self._file: IO[bytes] | None = None
        self._pos = 0  # bytes written to the file so far: where the next line starts
        #: what :meth:`load` noticed but could read past (a torn last line, several drills in one file)
        self.warnings: list[str] = []
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:  # "x": created here or refused, atomically, even against a drill started at once
                self._file = self.path.open("xb")
            except FileExistsError:
                raise JournalExistsError(self.path) from None
            self._attempts.bind_file(str(self.path))
            self._write({"type": "journal", "wall0": self.wall0, "version": 1})

    # -- time ---------------------------------------------------------------------------------
    def restart_clock(self) -> None:
        """Start the drill's clock now, when the lanes are up: the fault schedule and every time
        in the journal count from the moment an agent could first reach a lane, not from however
        long the lanes took to start (multiplied by ``1 / time_scale`` in a compressed drill).
        Only before anything happened on the lanes."""
        with self._lock:
            if self._attempts or self._calls:
                raise RuntimeError("the journal's clock can only restart before the first attempt or call")
            shift = self.clock.now() - self.t0
            self.t0 += shift
            self.wall0 = time.time()
            for m in self._marks:
                m.t = max(0.0, m.t - shift)
            if self._file is not None:  # only the header and marks so far: write them again, shifted
                self._file.seek(0)
                self._file.truncate()
                self._pos = 0
                self._write({"type": "journal", "wall0": self.wall0, "version": 1})
                for m in self._marks:
                    self._write(m)

    def now(self) -> float:
        """Seconds since the journal started."""
        return self.clock.now() - self.t0

    def next_id(self, prefix: str = "a") -> str:
        with self._lock:
            self._seq += 1
            return f"{prefix}{self._seq:06d}"

    def new_attempt(self, lane: str, **kw: Any) -> Attempt:
        """An open attempt starting now; finish it with :meth:`record`."""
        return Attempt(id=self.next_id("a"), lane=lane, t_start=self.now(), wall_start=time.time(), **kw)

    # -- writing ------------------------------------------------------------------------------
    def record(self, attempt: Attempt) -> None:
        """Close and store ``attempt`` (once). ``outcome`` follows ``end_reason`` and status."""
        if attempt.t_end is None:
            attempt.t_end = self.now()
        attempt.outcome = outcome_of(EndReason(attempt.end_reason), attempt.status).value
        if attempt.error:  # an upstream's error body or a failure text may echo a credential
            attempt.error = redact_obj(attempt.error)
        for name in _FREE_TEXT:  # strings a client or an upstream chose (a key pasted as a model)
            value = getattr(attempt, name)
            if value:
                setattr(attempt, name, redact_text(value))
        self._compact.attempt(attempt)
        with self._lock:
            pos, length = self._write(attempt)
            self._add(attempt, pos, length)
            self._lock.notify_all()

    def _add(self, a: Attempt, pos: int = -1, length: int = 0) -> None:
        self._attempts.append(a, pos, length)
        self._in_order = None
        self._added += 1
        self._count(a)

    def _count(self, a: Attempt) -> None:
        t = self._tally.get(a.lane)
        if t is None:
            self._tally[a.lane] = t = [0, 0, 0, 0, 0]
        t[0] += 1
        t[{"ok": 1, "error": 2}.get(a.outcome, 3)] += 1
        t[4] += 1 if a.fault_name else 0
        if a.outcome != "ok" and (self._last_bad is None or (a.t_end or 0.0) >= (self._last_bad.t_end or 0.0)):
            self._last_bad = a

    def tally(self) -> tuple[dict[str, tuple[int, int, int, int, int]], Attempt | None]:
        """Per lane (attempts, ok, error, unknown, faulted), and the attempt that most recently
        ended not ok: what a live view shows, kept as attempts are recorded so that showing it
        reads none of them."""
        with self._lock:
            return {k: tuple(v) for k, v in self._tally.items()}, self._last_bad  # type: ignore[misc]

    def _decode_attempt(self, raw: bytes) -> Attempt:
        a = record_from_json(Attempt, json.loads(raw), _CHOICES["attempt"])
        self._compact.attempt(a)
        return a

    def wait_for(self, count: int, timeout: float = 5.0) -> bool:
        """Block until at least ``count`` attempts are recorded (a client can read a stream's
        last byte a moment before the lane finishes the attempt). False on timeout."""
        with self._lock:
            return self._lock.wait_for(lambda: len(self._attempts) >= count, timeout)

    def call_started(self, call: Call) -> None:
        """An in-process call began (``Drill.call``): while it is the only one running, attempts
        that arrive are its own, which per-call fault schedules need to know as they happen."""
        with self._lock:
            self._running[id(call)] = call

    def call_key(self, fingerprint: str | None) -> str | None:
        """The key a header-less attempt's per-call fault counts go under, stable for the life of
        its conversation: the one in-process call running when the conversation was first seen,
        else the conversation's fingerprint. Deciding afresh per attempt would let a retry that
        arrives once other calls have started count from 1 again (and be faulted once more than
        the schedule says). A key chosen while calls ran holds until all of them have ended, so a
        later call with the same prompt starts its own count."""
        with self._lock:
            running = frozenset(c.id for c in self._running.values())
            if fingerprint is not None:
                known = self._fp_keys.get(fingerprint)
                if known is not None and (not known[1] or known[1] & running):
                    return known[0]
            key = next(iter(running)) if len(running) == 1 else fingerprint
            if fingerprint is not None and key is not None:
                self._fp_keys[fingerprint] = (key, running)
            return key

    def record_call(self, call: Call) -> None:
        """Store ``call``; its error and text are redacted in place (an agent's exception text
        may quote a key or a URL with ``?key=``)."""
        if call.error:
            call.error = redact_text(call.error)
        if call.error_type:
            call.error_type = redact_text(call.error_type)
        if call.text:
            call.text = self._compact.text(redact_text(call.text))
        with self._lock:
            self._running.pop(id(call), None)
            self._calls.append(call)
            self._write(call)

    def mark(self, kind: str, lane: str | None = None, *, t: float | None = None, **detail: Any) -> Mark:
        """Record a drill event; ``t`` (seconds since start) defaults to now. Fault windows pass
        the time their schedule gives, so marks are exact however late the timer fired."""
        m = Mark(t=self.now() if t is None else t, kind=kind, lane=lane, detail=redact_obj(detail))
        with self._lock:
            self._marks.append(m)
            self._write(m)
        return m

    def _write(self, obj: Any) -> tuple[int, int]:
        """Append ``obj`` as a line to the file (if any); where the line is, (-1, 0) if nowhere."""
        if self._file is None:
            return -1, 0
        obj = obj if isinstance(obj, dict) else obj.to_json()
        data = (dumps(obj) + "\n").encode("utf-8")
        pos = self._pos
        self._file.write(data)
        self._file.flush()
        self._pos += len(data)
        return pos, len(data)

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    # -- reading ------------------------------------------------------------------------------
    def attempts(
        self,
        lane: str | None = None,
        *,
        call_id: str | None = None,
        fingerprint: str | None = None,
        fault: str | None = None,
        status: int | None = None,
        outcome: str | None = None,
    ) -> list[Attempt]:
        """Attempts in start order, filtered by any of the given fields (a new list each call).

        Checks read every attempt many times over; the sorted list is kept until the next attempt
        is recorded, so only the first read after a change decodes (cold attempts) and sorts."""
        with self._lock:
            out, added = self._in_order, self._added
            fresh = out is None
            if out is None:
                out = self._attempts.all()  # a new list, this call's own until it is kept
        if fresh:  # sorted outside the lock: the lanes record meanwhile
            out.sort(key=lambda a: (a.t_start, a.id))
            with self._lock:
                if self._added == added:
                    self._in_order = out
        if all(v is None for v in (lane, call_id, fingerprint, fault, status, outcome)):
            return list(out)
        return [
            a
            for a in out
            if (lane is None or a.lane == lane)
            and (call_id is None or a.call_id == call_id)
            and (fingerprint is None or a.fingerprint == fingerprint)
            and (fault is None or a.fault_name == fault)
            and (status is None or a.status == status)
            and (outcome is None or a.outcome == outcome)
        ]

    def calls(self) -> list[Call]:
        with self._lock:
            return sorted(self._calls, key=lambda c: c.t_start)

    def marks(self, kind: str | None = None) -> list[Mark]:
        with self._lock:
            return sorted((m for m in self._marks if kind is None or m.kind == kind), key=lambda m: m.t)

    def __iter__(self) -> Iterator[Attempt]:
        return iter(self.attempts())

    def __len__(self) -> int:
        with self._lock:
            return len(self._attempts)

    @property
    def held_attempts(self) -> int:
        """Attempts kept in memory as objects now (the rest are read back from their lines)."""
        with self._lock:
            return self._attempts.held

    def __bool__(self) -> bool:
        return True  # an empty journal is still a journal (``journal or Journal()`` must not swap it)

    def rescaled(self, factor: float) -> Journal:
        """A copy with every time (and every asked-for delay) multiplied by ``factor``.

        A drill compressed with ``time_scale: 0.1`` is judged in profile time by
        ``journal.rescaled(1 / 0.1)``: check budgets are written in profile seconds."""
        if factor == 1.0:
            return self
        j = Journal()
        j.wall0 = self.wall0
        j.scale = self.scale * factor
        time_fields = ("t_start", "t_headers", "t_first_token", "t_last_token", "t_end", "retry_after")

        def scale(obj: Any, names: Iterable[str]) -> Any:
            obj = type(obj)(**obj.to_json())
            for n in names:
                v = getattr(obj, n, None)
                if isinstance(v, int | float) and not isinstance(v, bool):
                    setattr(obj, n, v * factor)
            return obj

        with self._lock:
            for a in self._attempts.all():
                scaled = scale(a, time_fields)
                j._add(scaled)
            j._calls = [scale(c, ("t_start", "t_end", "t_first_token")) for c in self._calls]
            j._marks = [scale(m, ("t",)) for m in self._marks]
        return j

    def interruption(self) -> str | None:
        """Why the drill in this journal did not run to its end, or None if it did (or the journal
        is not a drill's): the reason its ``drill_stop`` gives (a signal name, ``timeout``,
        ``KeyboardInterrupt``), or ``cut short`` when there is a ``drill_start`` and no
        ``drill_stop``: the drill's process died (``kill -9``) and attempts open then are missing."""
        if not self.marks("drill_start"):
            return None
        stops = self.marks("drill_stop")
        if not stops:
            return "cut short"
        detail = stops[-1].detail
        return str(detail.get("reason") or "interrupted") if detail.get("interrupted") else None

    # -- loading ------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> Journal:
        """Read a JSONL journal back (for ``routechaos report`` and for checks after the fact).

        Total: a torn last line (a drill killed mid-write) is skipped and noted in
        :attr:`warnings`; any other line that is not a record (not JSON, not an object, an
        unknown ``type``, a field missing or of the wrong type) raises :class:`JournalError`
        naming the file and line. ``OSError`` when the file cannot be read."""
        j = cls()
        headers = 0
        j._attempts.bind_file(str(path))  # an attempt's line is read again from here once it is cold
        end = 0
        with Path(path).open("rb") as fh:
            for lineno, raw in enumerate(fh, 1):
                start, end = end, end + len(raw)
                if not raw.strip():
                    continue
                try:
                    obj = json.loads(raw.decode("utf-8"))
                except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError too
                    if not raw.endswith(b"\n"):  # only the last line can lack its newline
                        j.warnings.append(
                            f"{path}:{lineno}: the last line is torn (the drill stopped while writing it): skipped"
                        )
                        break
                    why = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
                    raise JournalError(f"{path}:{lineno}: not a JSON line: {why}") from None
                if not isinstance(obj, dict):
                    raise JournalError(f"{path}:{lineno}: not a journal record: a JSON {_json_kind(obj)}")
                kind = obj.get("type")
                label = kind if isinstance(kind, str) and kind in _RECORDS else "record"
                try:
                    if kind == "journal":
                        headers += 1
                        wall0 = obj.get("wall0", j.wall0)
                        if isinstance(wall0, bool) or not isinstance(wall0, int | float):
                            raise FieldError("wall0", f"{brief(wall0)} is not a number")
                        if headers == 1:
                            j.wall0 = wall0
                    elif label != "record":
                        record = record_from_json(_RECORDS[label], obj, _CHOICES.get(label))
                        if label == "attempt":
                            j._compact.attempt(record)
                            j._add(record, start, len(raw))
                        elif label == "call":
                            record.text = j._compact.text(record.text)
                            j._calls.append(record)
                        else:
                            j._marks.append(record)
                    else:
                        known = ", ".join([*_RECORDS, "journal"])
                        raise FieldError("type", f"{brief(kind)} is not a journal record type ({known})")
                except FieldError as exc:
                    raise JournalError(f"{path}:{lineno}: {label}: {exc}") from None
        if headers > 1:
            j.warnings.append(
                f"{path}: {headers} drills in one journal (appended by an older routechaos): judged together"
            )
        return j


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    return "number"


def _encode(a: Attempt) -> bytes:
    return (dumps(a.to_json()) + "\n").encode("utf-8")
