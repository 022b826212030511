"""A small builder for hand-made journals: explicit times, no sockets, no sleeps."""

from __future__ import annotations

from typing import Any

from harness.canonical import canonical_text
from harness.checks import CheckResult, make_check
from harness.clock import VirtualClock
from harness.journal import Attempt, Call, Journal


class JB:
    """``JB().ok("fast", 0.0, 0.5, call="c1")`` records an attempt that ran from 0.0 to 0.5."""

    def __init__(self) -> None:
        self.clock = VirtualClock()
        self.j = Journal(clock=self.clock)

    def attempt(
        self,
        lane: str,
        t: float,
        end: float,
        *,
        call: str | None = "c1",
        reason: str = "complete",
        status: int | None = 200,
        fault: str | None = None,
        fingerprint: str | None = None,
        **kw: Any,
    ) -> Attempt:
        a = Attempt(
            id=self.j.next_id("a"),
            lane=lane,
            t_start=t,
            wall_start=0.0,
            call_id=call,
            fingerprint=fingerprint if fingerprint is not None else (f"fp-{call}" if call else None),
            t_end=end,
            end_reason=reason,
            status=status,
            fault=None if fault is None else {"name": fault},
            **kw,
        )
        self.j.record(a)
        return a

    def ok(self, lane: str, t: float, end: float, *, ttft: float = 0.1, tokens: int = 10, **kw: Any) -> Attempt:
        kw.setdefault("expected_tokens", tokens)
        kw.setdefault("usage", {"input_tokens": 5, "output_tokens": tokens})
        kw.setdefault("t_first_token", t + ttft)
        kw.setdefault("t_last_token", end)
        return self.attempt(lane, t, end, tokens=tokens, finish="stop", stream=True, **kw)

    def err(self, lane: str, t: float, end: float, status: int = 503, **kw: Any) -> Attempt:
        kw.setdefault("error", {"type": "server_error", "status": status, "message": "boom"})
        return self.attempt(lane, t, end, reason="error_response", status=status, **kw)

    def cut(self, lane: str, t: float, end: float, *, tokens: int = 3, expected: int = 10, **kw: Any) -> Attempt:
        kw.setdefault("fault", "stream_cut")
        return self.attempt(
            lane, t, end, reason="cut", tokens=tokens, expected_tokens=expected, t_first_token=t + 0.1, **kw
        )

    def timeout(self, lane: str, t: float, end: float, **kw: Any) -> Attempt:
        kw.setdefault("fault", "blackhole")
        return self.attempt(lane, t, end, reason="timeout", status=None, **kw)

    def call(self, id: str, t: float, end: float | None, outcome: str = "ok", **kw: Any) -> Call:
        kw.setdefault("fingerprint", f"fp-{id}")
        if outcome == "ok":
            kw.setdefault("complete", True)
        c = Call(id=id, t_start=t, t_end=end, outcome=outcome, **kw)
        self.j.record_call(c)
        return c

    def mark(self, kind: str, t: float, lane: str | None = None, **detail: Any) -> None:
        self.clock.set(t)
        self.j.mark(kind, lane, **detail)

    def window(self, lane: str, t_open: float, t_close: float, fault: str = "overloaded") -> None:
        self.mark("fault_window_open", t_open, lane, fault=fault)
        self.mark("fault_window_close", t_close, lane, fault=fault)

    def check(self, name: str, **params: Any) -> CheckResult:
        return make_check(name, params).evaluate(self.j)


def text(call: str, n: int = 10) -> str:
    """The canonical answer of ``n`` tokens for the builder's fingerprint of ``call``."""
    return canonical_text(f"fp-{call}", n)
