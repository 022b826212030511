"""Calls as the checks and the bill see them: each call record joined with the attempts it caused.

Outside :mod:`harness.checks` because the bill (:mod:`harness.billing`) groups attempts the same
way, and the checks' cost check imports the bill: this module imports neither.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .attribution import attribution_of, call_keys, text_matches
from .journal import Attempt, Call, Journal

__all__ = ["CallView", "call_views", "is_complete"]


def is_complete(a: Attempt) -> bool:
    """The attempt delivered the whole answer (:attr:`Attempt.complete`)."""
    return a.complete


@dataclass
class CallView:
    """One call: its attempts in start order and, when the workload reported it, its record.

    ``ambiguous_with`` names the other calls that could have made some of these attempts (the
    same conversation sent by several calls at once, settled by timing: see
    :mod:`harness.attribution`); empty when every attempt is tied to this call for certain."""

    key: str
    attempts: list[Attempt] = field(default_factory=list)
    call: Call | None = None
    ambiguous_with: tuple[str, ...] = ()

    @property
    def t_start(self) -> float:
        if self.call is not None:
            return self.call.t_start
        return self.attempts[0].t_start

    @property
    def t_end(self) -> float | None:
        if self.call is not None and self.call.t_end is not None:
            return self.call.t_end
        ends = [a.t_end for a in self.attempts if a.t_end is not None]
        return max(ends) if ends else None

    @property
    def fingerprint(self) -> str | None:
        if self.call is not None and self.call.fingerprint:
            return self.call.fingerprint
        return next((a.fingerprint for a in self.attempts if a.fingerprint), None)

    @property
    def attempt_ids(self) -> tuple[str, ...]:
        return tuple(a.id for a in self.attempts)

    def complete_attempts(self) -> list[Attempt]:
        return [a for a in self.attempts if is_complete(a)]

    def serving_attempt(self) -> Attempt | None:
        """The complete attempt whose answer the agent took: the one whose canonical answer the
        call returned, else the last complete one on the lane the call record names, else the
        last complete one."""
        done = self.complete_attempts()
        if self.call is not None and self.call.text:
            said = [a for a in done if text_matches(self.call.text, a.fingerprint, a.expected_tokens, a.answer)]
            if said:
                return said[-1]
        if self.call is not None and self.call.lane:
            on_lane = [a for a in done if a.lane == self.call.lane]
            if on_lane:
                return on_lane[-1]
        return done[-1] if done else None

    @property
    def outcome(self) -> str:
        """The call record's outcome; without one, ok if some attempt was complete, error if every
        attempt was an error, else unknown."""
        if self.call is not None:
            return self.call.outcome
        if self.complete_attempts():
            return "ok"
        if self.attempts and all(a.outcome == "error" for a in self.attempts):
            return "error"
        return "unknown"

    def on(self, lane: str) -> list[Attempt]:
        return [a for a in self.attempts if a.lane == lane]

    def lanes(self) -> list[str]:
        return sorted({a.lane for a in self.attempts})

    def attributed(self) -> str:
        """A note for evidence when the attempts were tied to this call by timing alone."""
        if not self.ambiguous_with:
            return ""
        return f" (attributed by timing: calls {', '.join(self.ambiguous_with[:4])} had the same conversation)"


def call_views(journal: Journal) -> list[CallView]:
    """Every call, in start order: each call record with the attempts it caused, and the calls
    seen from the wire alone (attempts tied to no record). One record, one view; one attempt, at
    most one view. Attempts outside every call record are left out: :func:`unattributed`."""
    att = attribution_of(journal)
    # every check asks for the views: built once per attribution (itself once per journal state)
    cached = getattr(journal, "_routechaos_views", None)
    if cached is not None and cached[0] is att:
        return list(cached[1])
    attempts = journal.attempts()
    groups: dict[str, list[Attempt]] = {}
    for a in attempts:
        key = att.call_of.get(a.id)
        if key is not None:
            groups.setdefault(key, []).append(a)
    records = journal.calls()
    views = [CallView(k, groups.pop(k, []), c) for c, k in zip(records, call_keys(records), strict=True)]
    views += [CallView(k, atts) for k, atts in groups.items()]
    for v in views:
        v.ambiguous_with = att.ambiguous_calls(v.attempt_ids)
    views.sort(key=lambda v: (v.t_start, v.key))
    journal._routechaos_views = (att, views)  # type: ignore[attr-defined]
    return list(views)
