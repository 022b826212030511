"""The journal's records: attempts, calls and marks, how an attempt ended, and the journal's errors.

The shapes every check, report and cassette reads (:class:`Attempt` above all), apart from the
:class:`~harness.journal.Journal` that stores them; import them from :mod:`harness.journal`,
which re-exports them.
"""

from __future__ import annotations

import enum
import errno
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .journalstore import Headers

__all__ = [
    "Attempt",
    "Call",
    "EndReason",
    "JournalError",
    "JournalExistsError",
    "Mark",
    "Outcome",
    "outcome_of",
]


def _shallow(obj: Any) -> dict[str, Any]:
    """A record's fields as a dict (dicts copied one level): ``asdict`` deep-copies, and the
    journal serialises thousands of attempts a second in a benchmark."""
    return {
        name: (dict(v) if isinstance(v := getattr(obj, name), dict | Headers) else v)
        for name in obj.__dataclass_fields__
    }


class EndReason(enum.StrEnum):
    COMPLETE = "complete"  # the dialect's terminator (or a whole non-stream body) was delivered
    ERROR_RESPONSE = "error_response"  # an HTTP error status was delivered in full
    INBAND_ERROR = "inband_error"  # a 200 stream that carried an error event
    CUT = "cut"  # the stream ended before its terminator
    NO_TERMINATOR = "no_terminator"  # the whole answer and its finish came, the body ended, no terminator
    CLIENT_GONE = "client_gone"  # the client disconnected first
    UPSTREAM_ERROR = "upstream_error"  # the upstream could not be reached or broke
    TIMEOUT = "timeout"  # the proxy gave up waiting
    RESET = "reset"  # connection reset (a fault, or the upstream)
    REFUSED = "refused"  # the lane refused the connection (recorded by the fault that did it)
    BLACKHOLE = "blackhole"  # accepted, never answered
    BAD_REQUEST = "bad_request"  # the proxy could not parse the request
    UNKNOWN = "unknown"  # still open when the lane stopped


class Outcome(enum.StrEnum):
    OK = "ok"
    ERROR = "error"
    UNKNOWN = "unknown"


_OUTCOME = {
    EndReason.COMPLETE: Outcome.OK,
    EndReason.NO_TERMINATOR: Outcome.OK,
    EndReason.ERROR_RESPONSE: Outcome.ERROR,
    EndReason.INBAND_ERROR: Outcome.ERROR,
    EndReason.BAD_REQUEST: Outcome.ERROR,
    EndReason.REFUSED: Outcome.ERROR,
}


def outcome_of(reason: EndReason, status: int | None) -> Outcome:
    """Map how an attempt ended to what is known about its effect."""
    if reason == EndReason.COMPLETE and status is not None and status >= 400:
        return Outcome.ERROR
    return _OUTCOME.get(reason, Outcome.UNKNOWN)


@dataclass(slots=True)
class Attempt:
    """One HTTP exchange seen by a lane. Times are seconds since the journal started."""

    id: str
    lane: str
    t_start: float
    wall_start: float
    method: str = "POST"
    path: str = ""
    dialect: str | None = None
    operation: str | None = None
    model: str | None = None
    stream: bool = False
    fingerprint: str | None = None
    call_id: str | None = None
    retry_count: int | None = None
    #: request headers, redacted (a read-only :class:`~harness.journalstore.Headers` once recorded)
    headers: Mapping[str, str] = field(default_factory=dict)
    upstream: str = ""
    t_headers: float | None = None
    t_first_token: float | None = None
    t_last_token: float | None = None
    t_end: float | None = None
    status: int | None = None
    end_reason: str = EndReason.UNKNOWN.value
    outcome: str = Outcome.UNKNOWN.value
    events: int = 0
    tokens: int = 0
    text_chars: int = 0
    expected_tokens: int | None = None
    finish: str | None = None
    usage: dict[str, int] | None = None
    fault: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    retry_after: float | None = None
    request_id: str | None = None
    #: tool calls the answer carried: ``{"id", "name", "arguments_complete", "arguments_valid",
    #: "args_sha", "arguments_chars", "offered"}`` each (None: the answer carried none)
    tool_calls: list[dict[str, Any]] | None = None
    #: tool calls in the request's conversation: ``{"id", "name", "args_sha",
    #: "arguments_valid", "has_result", "offered"}`` each (None: the conversation has none)
    tool_history: list[dict[str, Any]] | None = None
    #: the fingerprint of the conversation without its trailing tool calls and results: the
    #: request this one continues, in an agent loop, has this fingerprint
    parent_fingerprint: str | None = None
    #: names of the function tools the request offered (None: it offered none)
    tools_offered: list[str] | None = None
    #: a replayed answer: the id of its text in the journal's ``recorded_answer`` marks (None:
    #: the simulator's canonical answer, or a live upstream)
    answer: str | None = None
    type: str = "attempt"

    @property
    def duration(self) -> float | None:
        return None if self.t_end is None else self.t_end - self.t_start

    @property
    def ttft(self) -> float | None:
        return None if self.t_first_token is None else self.t_first_token - self.t_start

    @property
    def generation_time(self) -> float | None:
        if self.t_first_token is None or self.t_last_token is None:
            return None
        return self.t_last_token - self.t_first_token

    @property
    def complete(self) -> bool:
        """The attempt delivered the whole answer: outcome ok and, where the simulator says how
        long the answer is, every token of it."""
        whole = self.expected_tokens is None or self.tokens >= self.expected_tokens
        return self.outcome == Outcome.OK.value and whole

    @property
    def fault_name(self) -> str | None:
        return None if not self.fault else self.fault.get("name")

    def to_json(self) -> dict[str, Any]:
        return _shallow(self)


@dataclass(slots=True)
class Call:
    """One logical request of the agent, as reported by the workload (``chaos.call``)."""

    id: str
    t_start: float
    t_end: float | None = None
    outcome: str = Outcome.UNKNOWN.value
    fingerprint: str | None = None
    lane: str | None = None
    text: str | None = None
    error: str | None = None
    error_type: str | None = None
    complete: bool | None = None
    t_first_token: float | None = None
    #: who recorded it: ``drill`` (in-process ``Drill.call``) or ``control`` (``POST /calls``)
    source: str | None = None
    thread: str | None = None  # the thread (and asyncio task) that ran it, in-process
    task: str | None = None
    type: str = "call"

    def to_json(self) -> dict[str, Any]:
        return _shallow(self)


@dataclass(slots=True)
class Mark:
    """Something that happened to the drill rather than to an attempt: a fault window opening or
    closing, a lane going down or coming back, a phase of the schedule."""

    t: float
    kind: str
    lane: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    type: str = "mark"

    def to_json(self) -> dict[str, Any]:
        return _shallow(self)


_FREE_TEXT = ("model", "call_id", "request_id")
#: what each ``type`` of journal line is read back as (``journal`` is the header line)
_RECORDS: dict[str, type[Attempt] | type[Call] | type[Mark]] = {"attempt": Attempt, "call": Call, "mark": Mark}
_CHOICES = {"attempt": {"end_reason": EndReason, "outcome": Outcome}, "call": {"outcome": Outcome}}


class JournalError(ValueError):
    """A journal file holds a line that is not a journal record: the message names file and line."""


class JournalExistsError(FileExistsError):
    """A journal file is already there: a drill never appends to another's journal."""

    def __init__(self, path: Path) -> None:
        super().__init__(errno.EEXIST, "already exists", str(path))
        self.path = path

    def __str__(self) -> str:
        return (
            f"journal {self.path} already exists: a drill never appends to another's journal "
            "(choose a new path, or remove it)"
        )
