"""Checks on what a fallback lane accepts: a call that moves to another lane is not refused there
for what that lane is (its context window, a feature it lacks) or for state another lane minted
(a ``previous_response_id``, a thinking block's signature, a Gemini thought signature)."""

from __future__ import annotations

from dataclasses import dataclass

from ..capabilities import rejection_reason
from ..journal import Attempt, Journal
from ._calls import CallView, call_views, doubt, ids
from .base import Check, CheckResult, Evidence, Verdict, register

PASS, FAIL, UNKNOWN = Verdict.PASS, Verdict.FAIL, Verdict.UNKNOWN

_WORDS = {
    "context_length": "the conversation is over its context window",
    "unsupported_feature": "a feature it does not support",
    "foreign_state": "state another lane minted",
}


def _what(a: Attempt) -> str:
    err = a.error or {}
    msg = str(err.get("message") or err.get("code") or "")
    return f"{a.status} {msg[:120]}".strip()


@register("fallback_compatible")
@dataclass(frozen=True)
class FallbackCompatible(Check):
    """When a call moves to another lane, its first attempt there is not rejected for a
    capability or foreign-state reason; if it is, the agent adapts (trims the conversation, drops
    the foreign state, re-sends the whole conversation) within ``adapt_within`` further attempts.

    Catches the router whose fallback is refused on its first attempt for what it forwarded:
    the thinking blocks another deployment signed, a ``previous_response_id`` the fallback never
    issued, a conversation longer than the fallback's window (C01-C03, F25 on failover).

    A move is an attempt on a lane other than the call's previous attempt's, or a call whose first
    attempt is refused for state another lane minted (its conversation moved between calls: an
    earlier turn was answered elsewhere). Rejections are read from the provider's own words in
    the journal (``context_length_exceeded``, ``prompt is too long``, ``Invalid `signature` in
    `thinking` block``, ``previous_response_not_found``, ``Corrupted thought signature.``,
    ``unsupported_parameter`` ...), so real providers are judged as the simulator is.
    ``adapt_within: 0`` asks that the first attempt on the new lane be accepted. ``UNKNOWN`` when
    no call moved."""

    adapt_within: int = 2

    def validate(self) -> None:
        self._require(
            isinstance(self.adapt_within, int) and self.adapt_within >= 0, "adapt_within must be an integer >= 0"
        )

    def _moves(self, v: CallView) -> list[int]:
        """Indexes of the attempts that start the call's stay on a new lane."""
        out = []
        for i, a in enumerate(v.attempts):
            if i == 0:
                if rejection_reason(a.error) == "foreign_state":
                    out.append(i)
            elif a.lane != v.attempts[i - 1].lane:
                out.append(i)
        return out

    def _judge(self, v: CallView, i: int) -> Evidence:
        first = v.attempts[i]
        came_from = v.attempts[i - 1].lane if i else "an earlier turn's lane"
        reason = rejection_reason(first.error) if first.status is not None and first.status >= 400 else None
        if reason is None:
            return Evidence(
                f"moved from {came_from} to {first.lane}: first attempt {first.id} accepted (status {first.status})",
                PASS,
                v.key,
                (first.id,),
                first.lane,
                first.t_start,
            )
        said = f"first attempt {first.id} on {first.lane} rejected for {_WORDS[reason]} ({_what(first)})"
        later = v.attempts[i + 1 :]
        for n, a in enumerate(later[: self.adapt_within], start=1):
            if rejection_reason(a.error) is None or (a.status is not None and a.status < 400):
                return Evidence(
                    f"moved from {came_from}: {said}; the agent adapted: attempt {a.id} on {a.lane} "
                    f"was accepted ({n} attempt{'s' if n > 1 else ''} later)",
                    PASS,
                    v.key,
                    ids([first, *later[:n]]),
                    first.lane,
                    first.t_start,
                    float(n),
                    float(self.adapt_within),
                )
        tried = later[: self.adapt_within]
        if self.adapt_within == 0:
            how = "its first attempt there had to be accepted"
            if later:
                how += f" (the call went on with attempt {later[0].id})"
        elif tried:
            how = f"the next {len(tried)} attempt(s) ({', '.join(a.id for a in tried)}) were rejected too"
        else:
            how = "the call made no further attempt"
        return doubt(
            Evidence(
                f"moved from {came_from}: {said}; {how} (adapt within {self.adapt_within})",
                FAIL,
                v.key,
                ids([first, *tried]),
                first.lane,
                first.t_start,
                float(len(tried)),
                float(self.adapt_within),
            ),
            v,
        )

    def evaluate(self, journal: Journal) -> CheckResult:
        ev = [self._judge(v, i) for v in call_views(journal) for i in self._moves(v)]
        if not ev:
            return self.result(UNKNOWN, "no call moved to another lane: fallback compatibility was not tested")
        bad = [e for e in ev if e.verdict is FAIL]
        rejected = [e for e in ev if "rejected" in e.what]
        if bad:
            return self.judge(ev, f"{len(bad)} of {len(ev)} moves to another lane were refused and not adapted to")
        return self.judge(
            ev, f"{len(ev)} moves to another lane, {len(rejected)} refused at first and adapted to within budget"
        )
