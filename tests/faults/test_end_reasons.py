"""A stream that lacks only its terminator is ``no_terminator`` (outcome ok), not ``cut``.

Seen on the lane that injects the fault and on a lane that forwards it (a lane whose upstream is
another lane, over a real socket): the forwarding lane knows nothing of the fault, only what the
wire carried. A stream cut mid-answer stays ``cut`` on both.
"""

from __future__ import annotations

import pytest

from harness.checks import evaluate_all, make_check
from harness.drill import Drill
from harness.lanes import BackgroundLanes, LaneSet
from harness.profile import LaneSpec, Profile

from .stream_helpers import DIALECTS, LANE_DIALECT, drive, expected, start

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def chain():
    """``chain(dialect, fault) -> (inner, outer)``: a faulty simulated lane and a lane forwarding to it."""
    started: list[BackgroundLanes] = []

    def make(dialect: str, fault: dict) -> tuple[BackgroundLanes, BackgroundLanes]:
        inner = start(dialect, fault)
        started.append(inner)
        spec = LaneSpec("front", LANE_DIALECT[dialect], upstream=inner.urls["lane"])
        outer = BackgroundLanes(LaneSet(Profile(name="front", lanes={"front": spec}))).start()
        started.append(outer)
        return inner, outer

    yield make
    for bg in reversed(started):
        bg.stop()


def _one(bg: BackgroundLanes):
    assert bg.journal.wait_for(1, 5)
    (a,) = bg.journal.attempts()
    return a


@pytest.mark.parametrize("dialect", DIALECTS)
def test_no_terminator_through_a_forwarding_lane(chain, dialect):
    inner, outer = chain(dialect, {"fault": "no_terminator"})
    seen = drive(dialect, outer.urls["front"])
    assert seen.exc is None and seen.text == expected()
    a = _one(inner)
    assert (a.end_reason, a.outcome) == ("no_terminator", "ok")
    b = _one(outer)
    if dialect in ("chat", "anthropic"):
        # the finish reason crossed the wire: the forwarding lane sees the same thing
        assert (b.end_reason, b.outcome) == ("no_terminator", "ok")
        assert b.finish == "stop"
    else:
        # Responses and Gemini carry the finish in the terminal event itself, and a forwarding
        # lane does not know how long the answer was: it cannot tell this from a cut
        assert (b.end_reason, b.outcome) == ("cut", "unknown")


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_cut_mid_answer_stays_cut_through_a_forwarding_lane(chain, dialect):
    inner, outer = chain(dialect, {"fault": "stream_cut", "after_tokens": 5, "mode": "clean"})
    seen = drive(dialect, outer.urls["front"])
    assert seen.exc is None and seen.text == expected(tokens=5)
    assert _one(inner).end_reason == "cut"
    b = _one(outer)
    assert (b.end_reason, b.outcome) == ("cut", "unknown")


def test_the_f22_profile_yields_no_terminator_and_no_call_is_lost():
    """On attempts alone (no call records), no_lost_calls must not count them as lost."""
    import openai

    with Drill("f22-missing-terminator", time_scale=0.05) as drill:
        client = openai.OpenAI(base_url=drill.base_url("primary"), api_key="sk-test", max_retries=0)
        for i in range(8):
            chunks = client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": f"question {i}"}], stream=True
            )
            assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        drill.settle()
        reasons = {a.end_reason for a in drill.journal.attempts()}
        faulted = [a for a in drill.journal.attempts() if a.fault_name == "no_terminator"]
    assert faulted, "the seeded schedule applied the fault to none of 8 attempts"
    assert {a.end_reason for a in faulted} == {"no_terminator"} and reasons <= {"complete", "no_terminator"}
    assert all(a.outcome == "ok" for a in faulted)
    report = evaluate_all(drill.profile_time_journal(), [make_check("no_lost_calls")])
    assert report.results[0].verdict == "pass", report.results[0].summary
