"""After a fault holds a stream, the rest of the answer keeps the upstream's pace.

``slow_first_token`` and ``stall`` with ``then: resume`` hold the stream; the tokens after the
hold must be spaced as without it, not delivered in one burst. Asserted from the journal (the
times the lane wrote the first and last token), which a loaded machine can only stretch, never
compress, so the lower bounds cannot fail because the machine is slow; the upper bounds are
loose and only catch a hold applied more than once.

Every dialect, on a lane whose upstream is the simulator and on a lane that forwards to another
lane over a real socket (the fault on the forwarding lane, which used to buffer), and once with
the fault behind the forwarding lane.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from harness.journal import Attempt
from harness.lanes import BackgroundLanes, LaneSet
from harness.profile import profile_from_dict

from .stream_helpers import DIALECTS, LANE_DIALECT, drive, expected, start

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SCALE = 0.1
TOKENS = 30
TPS = 10.0  # profile tokens/s: 100 real tokens/s, one event per token
SIM: dict[str, Any] = {"answer_tokens": TOKENS, "tokens_per_second": TPS, "ttft": 0.0}
HOLD = 3.0  # profile seconds: 0.3 s real
PACED = (TOKENS - 1) / (TPS / SCALE)  # real seconds from the first token to the last, unheld
SLOW_FIRST = {"fault": "slow_first_token", "delay": HOLD}
STALL = {"fault": "stall", "after_tokens": 3, "duration": HOLD}


@pytest.fixture
def lanes():
    started: list[BackgroundLanes] = []

    def direct(dialect: str, fault: dict[str, Any]) -> BackgroundLanes:
        bg = start(dialect, fault, time_scale=SCALE, **SIM)
        started.append(bg)
        return bg

    def forwarded(dialect: str, fault: dict[str, Any], *, behind: bool = False) -> BackgroundLanes:
        """A lane forwarding to a simulated lane; the fault on the front lane, or ``behind`` it."""
        inner = start(dialect, fault if behind else None, time_scale=SCALE, **SIM)
        started.append(inner)
        front = profile_from_dict(
            {
                "time_scale": SCALE,
                "lanes": {"lane": {"dialect": LANE_DIALECT[dialect], "upstream": inner.urls["lane"]}},
                "faults": [] if behind else [{**fault, "lane": "lane"}],
            }
        )
        bg = BackgroundLanes(LaneSet(front)).start()
        started.append(bg)
        return bg

    yield direct, forwarded
    for bg in reversed(started):
        bg.stop()


def _attempt(bg: BackgroundLanes, dialect: str) -> Attempt:
    seen = drive(dialect, bg.urls["lane"])
    assert seen.exc is None and seen.text == expected(tokens=TOKENS)
    assert bg.journal.wait_for(1, 5)
    (a,) = bg.journal.attempts()
    assert a.end_reason == "complete" and a.ttft is not None and a.generation_time is not None
    return a


def _assert_slow_first_token_paced(a: Attempt) -> None:
    hold = HOLD * SCALE
    assert a.ttft >= hold * 0.8, f"first token after {a.ttft:.3f}s, held {hold:.3f}s"
    assert a.generation_time >= PACED * 0.6, f"generation {a.generation_time:.3f}s: a burst after the hold"
    assert a.generation_time < PACED + 5.0


def _assert_stall_paced(a: Attempt) -> None:
    hold = HOLD * SCALE
    rest = (TOKENS - 3) / (TPS / SCALE)  # the tokens after the stall
    assert a.generation_time >= hold * 0.8 + rest * 0.6, f"generation {a.generation_time:.3f}s: a burst"
    assert a.generation_time < hold + PACED + 5.0


@pytest.mark.parametrize("dialect", DIALECTS)
def test_slow_first_token_keeps_the_pace(lanes, dialect):
    direct, _ = lanes
    _assert_slow_first_token_paced(_attempt(direct(dialect, SLOW_FIRST), dialect))


@pytest.mark.parametrize("dialect", DIALECTS)
def test_stall_then_resume_keeps_the_pace(lanes, dialect):
    direct, _ = lanes
    _assert_stall_paced(_attempt(direct(dialect, STALL), dialect))


@pytest.mark.parametrize("dialect", DIALECTS)
def test_slow_first_token_on_a_forwarding_lane_keeps_the_pace(lanes, dialect):
    _, forwarded = lanes
    _assert_slow_first_token_paced(_attempt(forwarded(dialect, SLOW_FIRST), dialect))


@pytest.mark.parametrize("dialect", ["chat", "anthropic"])
def test_stall_on_a_forwarding_lane_keeps_the_pace(lanes, dialect):
    _, forwarded = lanes
    _assert_stall_paced(_attempt(forwarded(dialect, STALL), dialect))


def test_a_hold_behind_a_forwarding_lane_is_forwarded_as_paced(lanes):
    _, forwarded = lanes
    _assert_slow_first_token_paced(_attempt(forwarded("chat", SLOW_FIRST, behind=True), "chat"))


def test_a_client_leaving_during_the_paced_rest_leaves_nothing_running(lanes):
    """The read-ahead task stops with the response: the attempt ends, the simulator's slot is free."""
    import httpx

    direct, _ = lanes
    bg = direct("chat", SLOW_FIRST)
    body = {"model": "m", "messages": [{"role": "user", "content": "hello"}], "stream": True}
    with httpx.stream("POST", bg.urls["lane"] + "/v1/chat/completions", json=body, timeout=10) as r:
        for line in r.iter_lines():
            if '"content":"' in line and '"content":""' not in line:
                break  # the first token arrived after the hold: hang up during the paced rest
    assert bg.journal.wait_for(1, 5)
    (a,) = bg.journal.attempts()
    assert a.end_reason == "client_gone" and 0 < a.tokens < TOKENS
    lane = bg.lanes.lanes["lane"]
    deadline = time.monotonic() + 5  # the handler leaves its sets just after journaling
    while (lane._open or lane._tasks) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not lane._open and not lane._tasks
    assert lane.upstream.simulator.capacity.active == 0
