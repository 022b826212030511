"""Schedules: when a fault applies. Pure and deterministic for a given seed.

A schedule sees one attempt through an :class:`AttemptFacts` (its number on the lane, its number
within its call, the drill time, whether the request asked for this fault by header) and answers
yes or no. Nothing here reads a clock or a global random source, so the same profile, seed and
attempt order always give the same decisions, and schedules are tested in virtual time.

YAML forms (a mapping with several keys means all of them must hold)::

    always                          # every attempt
    never
    {nth: 3} / {nth: [1, 4]}        # those attempts on the lane (1-based)
    {first: 3}                      # the first 3 attempts, then heal
    {after: 3}                      # every attempt after the first 3
    {window: [10, 25]}              # drill time in [10 s, 25 s)
    {every: 10, for: 3, offset: 0}  # flapping: down 3 s out of every 10 s
    {probability: 0.2}              # one seeded draw per fault per attempt
    {per_call: 1}                   # the first attempt of every call fails, its retries succeed
    {per_call: 2, calls: 0.5}       # ... for a seeded half of the calls
    {sequence: [fail, fail, ok]}    # cycles unless repeat: false
    {header: true, max: 5}          # only when the request says x-routechaos-fault: NAME
    {match: {prefill: true}}        # only requests that end with an assistant prefill
    {match: {model: "gpt-4o*", contains: "refund"}, first: 2}

Times are profile seconds; the drill multiplies them by its time scale. With ``match:``, the
counting keys (``nth``, ``first``, ``after``, ``sequence``, ``per_call``) count only the requests
that match: ``{match: {prefill: true}, first: 1}`` is the first prefilled request, whatever came
before it.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import math
import typing
from dataclasses import dataclass
from typing import Any

__all__ = ["AttemptFacts", "RequestMatch", "Schedule", "ScheduleError", "parse_schedule"]


class ScheduleError(ValueError):
    """A malformed schedule; ``field`` names the offending key (a tuple for a nested one:
    ``("match", "model")``)."""

    def __init__(self, message: str, field: str | tuple[str, ...] | None = None) -> None:
        super().__init__(message)
        self.field = field


def _doc(default: Any, doc: str) -> Any:
    return dataclasses.field(default=default, metadata={"doc": doc})


@dataclass(frozen=True, slots=True)
class RequestMatch:
    """Only the requests with these facts (every key given must hold); the others pass as if
    the fault were not there, and are not counted by nth, first, after, sequence or per_call.

    The profile loader, the JSON Schema and the docs all read these fields.
    """

    model: str | None = _doc(None, "the request's model, exactly or as a shell-style pattern (claude-*, gpt-4o*)")
    contains: str | None = _doc(None, "text that appears in the conversation (system prompt or any message)")
    prefill: bool | None = _doc(
        None, "true: the conversation ends with an assistant message (a prefill); false: it does not"
    )

    def matches(self, model: str | None, text: str, last_role: str | None) -> bool:
        if self.model is not None and (model is None or not fnmatch.fnmatchcase(model, self.model)):
            return False
        if self.contains is not None and self.contains not in text:
            return False
        return self.prefill is None or self.prefill == (last_role == "assistant")

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__ if getattr(self, k) is not None}


@dataclass(frozen=True, slots=True)
class AttemptFacts:
    """What a schedule may look at. ``n`` and ``call_n`` are 1-based."""

    n: int  # attempt number on this lane, as seen by this fault
    t: float  # seconds since the drill started (real, already scaled)
    call_key: str = ""  # call id or conversation fingerprint
    call_n: int = 1  # attempt number within its call, on this lane
    requested: bool = False  # the request named this fault in x-routechaos-fault
    model: str | None = None  # what the request asked for, for match:
    text: str = ""  # the conversation's text
    last_role: str | None = None  # its last turn's role ("assistant": a prefill)


def _unit(seed: int, salt: str, *parts: object) -> float:
    """A deterministic draw in [0, 1) from the seed and a key: independent per key."""
    h = hashlib.blake2b(f"{seed}|{salt}|{'|'.join(map(str, parts))}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2**64


@dataclass(frozen=True, slots=True)
class Schedule:
    """A parsed schedule; ``applies`` is the whole behaviour."""

    always: bool = False
    never: bool = False
    nth: frozenset[int] | None = None
    first: int | None = None
    after: int | None = None
    window: tuple[float, float] | None = None
    every: float | None = None
    for_: float | None = None
    offset: float = 0.0
    probability: float | None = None
    per_call: int | None = None
    calls: float | None = None
    sequence: tuple[bool, ...] | None = None
    repeat: bool = True
    header: bool = False
    max: int | None = None
    match: RequestMatch | None = None

    def matches(self, f: AttemptFacts) -> bool:
        """Whether the request is one this schedule is about (always, without ``match:``)."""
        return self.match is None or self.match.matches(f.model, f.text, f.last_role)

    @property
    def is_timed(self) -> bool:
        """True when the schedule depends on drill time (windows, flapping)."""
        return self.window is not None or self.every is not None

    def applies(self, f: AttemptFacts, *, seed: int = 0, salt: str = "", time_scale: float = 1.0) -> bool:
        if self.never:
            return False
        if self.header and not f.requested:
            return False
        if not self.matches(f):
            return False
        if self.nth is not None and f.n not in self.nth:
            return False
        if self.first is not None and f.n > self.first:
            return False
        if self.after is not None and f.n <= self.after:
            return False
        if not self.in_window(f.t, time_scale):
            return False
        if self.per_call is not None:
            if f.call_n > self.per_call:
                return False
            if self.calls is not None and _unit(seed, salt, "call", f.call_key) >= self.calls:
                return False
        if self.sequence is not None:
            i = f.n - 1
            if i >= len(self.sequence) and not self.repeat:
                return False
            if not self.sequence[i % len(self.sequence)]:
                return False
        if self.probability is not None and _unit(seed, salt, "p", f.n) >= self.probability:
            return False
        return True

    def in_window(self, t: float, time_scale: float = 1.0) -> bool:
        """Whether drill time ``t`` is inside the schedule's time constraints (if any)."""
        if self.window is not None:
            lo, hi = self.window[0] * time_scale, self.window[1] * time_scale
            if not lo <= t < hi:
                return False
        if self.every is not None:
            period, down = self.every * time_scale, (self.for_ or 0.0) * time_scale
            phase = (t - self.offset * time_scale) % period
            if t < self.offset * time_scale or phase >= down:
                return False
        return True

    def edges(self, horizon: float, time_scale: float = 1.0) -> list[tuple[float, bool]]:
        """Times (scaled) at which the time constraints switch on/off, up to ``horizon``: what a
        lane-level fault (a lane that stops listening) and the fault-window marks follow."""
        if not self.is_timed:
            return [(0.0, True)] if not self.never else []
        out: list[tuple[float, bool]] = []
        if self.every is not None:
            period, down = self.every * time_scale, (self.for_ or 0.0) * time_scale
            start = self.offset * time_scale
            k = 0
            while start + k * period < horizon and k < 100_000:
                on, off = start + k * period, start + k * period + down
                out += [(on, True), (off, False)]
                k += 1
        else:
            out = [(0.0, True), (math.inf, False)]
        if self.window is not None:
            lo, hi = self.window[0] * time_scale, self.window[1] * time_scale
            clipped: list[tuple[float, bool]] = []
            for i in range(0, len(out), 2):
                on, off = max(out[i][0], lo), min(out[i + 1][0], hi)
                if on < off:
                    clipped += [(on, True), (off, False)]
            out = clipped
        return [(t, s) for t, s in out if t < horizon or not s]

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            v = getattr(self, name)
            default = Schedule.__dataclass_fields__[name].default
            if v != default:
                if isinstance(v, RequestMatch):
                    v = v.to_json()
                d[name.rstrip("_")] = sorted(v) if isinstance(v, frozenset) else v
        return d or {"always": True}


_KEYS = {"nth", "first", "after", "window", "every", "for", "offset", "probability", "per_call", "calls"}
_KEYS |= {"sequence", "repeat", "header", "max", "always", "never", "match"}


def _parse_match(raw: Any) -> RequestMatch:
    """A :class:`RequestMatch` from its YAML mapping, each key checked against its field's type."""
    if not isinstance(raw, dict) or not raw:
        keys = ", ".join(RequestMatch.__dataclass_fields__)
        raise ScheduleError(f"must be a mapping of one or more of {keys}", "match")
    hints = typing.get_type_hints(RequestMatch)
    kw: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in RequestMatch.__dataclass_fields__:
            keys = ", ".join(RequestMatch.__dataclass_fields__)
            raise ScheduleError(f"unknown match key; expected one of {keys}", ("match", str(key)))
        want = next(a for a in typing.get_args(hints[key]) if a is not type(None))
        if not isinstance(value, want) or (want is str and not value):
            kind = "true or false" if want is bool else "a non-empty string"
            raise ScheduleError(f"must be {kind} (got {value!r})", ("match", key))
        kw[key] = value
    return RequestMatch(**kw)


def _num(v: Any, key: str, *, lo: float | None = None, integer: bool = False, hi: float | None = None) -> Any:
    ok = not isinstance(v, bool) and isinstance(v, int | float) and math.isfinite(v)
    if ok and integer:
        ok = isinstance(v, int) or float(v).is_integer()
    if ok and lo is not None:
        ok = v >= lo
    if ok and hi is not None:
        ok = v <= hi
    if not ok:
        rng = f" >= {lo}" if lo is not None else ""
        rng += f" and <= {hi}" if hi is not None else ""
        raise ScheduleError(f"must be {'an integer' if integer else 'a number'}{rng} (got {v!r})", key)
    return int(v) if integer else float(v)


def parse_schedule(raw: Any) -> Schedule:
    """A :class:`Schedule` from its YAML form; :class:`ScheduleError` names the bad key."""
    if raw is None or raw == "always" or raw is True:
        return Schedule(always=True)
    if raw == "never" or raw is False:
        return Schedule(never=True)
    if raw in ("header", "on_header"):
        return Schedule(header=True)
    if isinstance(raw, str):
        raise ScheduleError(f"unknown schedule {raw!r}; use always, never, header, or a mapping such as {{first: 3}}")
    if not isinstance(raw, dict) or not raw:
        raise ScheduleError("a schedule is 'always', 'never', or a mapping such as {first: 3} or {window: [10, 20]}")
    for key in raw:
        if key not in _KEYS:
            raise ScheduleError(f"unknown schedule key; expected one of {', '.join(sorted(_KEYS))}", str(key))
    kw: dict[str, Any] = {}
    if "always" in raw:
        kw["always"] = bool(raw["always"])
    if "never" in raw:
        kw["never"] = bool(raw["never"])
    if "nth" in raw:
        v = raw["nth"]
        items = v if isinstance(v, list) else [v]
        if not items:
            raise ScheduleError("must name at least one attempt number", "nth")
        kw["nth"] = frozenset(_num(x, "nth", lo=1, integer=True) for x in items)
    for key in ("first", "after"):
        if key in raw:
            kw[key] = _num(raw[key], key, lo=0, integer=True)
    if "window" in raw:
        w = raw["window"]
        if not isinstance(w, list) or len(w) != 2:
            raise ScheduleError("must be [from, to] in seconds since the drill started", "window")
        lo = _num(w[0], "window", lo=0)
        hi = math.inf if w[1] in (None, "inf", ".inf") else _num(w[1], "window", lo=0)
        if hi <= lo:
            raise ScheduleError("must have from < to", "window")
        kw["window"] = (lo, hi)
    if "every" in raw:
        kw["every"] = _num(raw["every"], "every", lo=0.001)
        if "for" not in raw:
            raise ScheduleError("a flapping schedule needs for: (seconds down in each period)", "every")
        kw["for_"] = _num(raw["for"], "for", lo=0)
        if kw["for_"] > kw["every"]:
            raise ScheduleError("must not be longer than every:", "for")
    elif "for" in raw:
        raise ScheduleError("for: only goes with every:", "for")
    if "offset" in raw:
        kw["offset"] = _num(raw["offset"], "offset", lo=0)
    if "probability" in raw:
        kw["probability"] = _num(raw["probability"], "probability", lo=0, hi=1)
    if "per_call" in raw:
        kw["per_call"] = _num(raw["per_call"], "per_call", lo=1, integer=True)
    if "calls" in raw:
        if "per_call" not in raw:
            raise ScheduleError("calls: (the fraction of calls that fail) needs per_call:", "calls")
        kw["calls"] = _num(raw["calls"], "calls", lo=0, hi=1)
    if "sequence" in raw:
        seq = raw["sequence"]
        if not isinstance(seq, list) or not seq:
            raise ScheduleError("must be a non-empty list of fail/ok", "sequence")
        out = []
        for item in seq:
            if item in ("fail", True, 1):
                out.append(True)
            elif item in ("ok", False, 0):
                out.append(False)
            else:
                raise ScheduleError(f"items must be fail or ok (got {item!r})", "sequence")
        kw["sequence"] = tuple(out)
    if "repeat" in raw:
        if not isinstance(raw["repeat"], bool):
            raise ScheduleError("must be true or false", "repeat")
        kw["repeat"] = raw["repeat"]
    if "header" in raw:
        if not isinstance(raw["header"], bool):
            raise ScheduleError("must be true or false", "header")
        kw["header"] = raw["header"]
    if "max" in raw:
        kw["max"] = _num(raw["max"], "max", lo=0, integer=True)
    if "match" in raw:
        kw["match"] = _parse_match(raw["match"])
    return Schedule(**kw)
