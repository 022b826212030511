"""The token-bucket limiter in virtual time: counts, continuous refill, truthful waits, slots."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.clock import VirtualClock
from harness.ratelimit import RateLimiter


def limiter(**kw: int | None) -> tuple[RateLimiter, VirtualClock]:
    clock = VirtualClock(100.0)
    return RateLimiter(clock=clock, **kw), clock  # type: ignore[arg-type]


def test_remaining_requests_count_down_per_request() -> None:
    rl, _ = limiter(requests_per_minute=5)
    seen = []
    for _ in range(5):
        d = rl.try_acquire()
        assert d.admitted
        seen.append(d.snapshot.requests_remaining)
    assert seen == [4, 3, 2, 1, 0]
    d = rl.try_acquire()
    assert not d.admitted and d.limited_by == "requests"
    assert d.snapshot.requests_remaining == 0 and d.snapshot.requests_limit == 5


def test_refill_is_continuous_limit_over_sixty_per_second() -> None:
    rl, clock = limiter(requests_per_minute=60)
    for _ in range(60):
        assert rl.try_acquire().admitted
    assert rl.snapshot().requests_remaining == 0
    assert rl.snapshot().requests_reset == pytest.approx(60.0)
    clock.advance(0.5)
    assert rl.snapshot().requests_remaining == 0  # half a request is not a request
    clock.advance(0.5)
    assert rl.snapshot().requests_remaining == 1
    clock.advance(9.0)
    snap = rl.snapshot()
    assert snap.requests_remaining == 10
    assert snap.requests_reset == pytest.approx(50.0)
    clock.advance(1000)
    assert rl.snapshot().requests_remaining == 60  # never above the limit
    assert rl.snapshot().requests_reset == 0.0


def test_retry_after_is_the_real_time_until_admission() -> None:
    rl, clock = limiter(requests_per_minute=3)
    for _ in range(3):
        assert rl.try_acquire().admitted
    clock.advance(7.0)  # 0.35 of a request refilled
    d = rl.try_acquire()
    assert not d.admitted
    assert d.wait == pytest.approx(13.0)
    clock.advance(d.wait - 0.01)
    early = rl.try_acquire()
    assert not early.admitted and early.wait == pytest.approx(0.01)
    clock.advance(early.wait)  # exactly what was advertised the second time
    assert rl.try_acquire().admitted


def test_retry_after_exact_advance_admits_from_the_first_answer() -> None:
    rl, clock = limiter(requests_per_minute=7)
    for _ in range(7):
        rl.try_acquire()
    d = rl.try_acquire()
    assert d.wait is not None
    clock.advance(d.wait)
    assert rl.try_acquire().admitted


@settings(max_examples=100, deadline=None)
@given(
    rpm=st.integers(1, 10_000),
    tpm=st.integers(1, 100_000),
    prompts=st.lists(st.integers(0, 5000), min_size=1, max_size=30),
    gaps=st.lists(st.floats(0, 5), min_size=1, max_size=30),
    completion=st.integers(0, 3000),
)
def test_advertised_wait_is_exact_for_any_history(
    rpm: int, tpm: int, prompts: list[int], gaps: list[float], completion: int
) -> None:
    """Whatever happened before, advancing by ``wait`` admits and advancing by a little less
    (when the wait is long enough to measure) does not. A refusal charges nothing, so probing
    early does not move the answer."""
    rl, clock = limiter(requests_per_minute=rpm, tokens_per_minute=tpm)
    for p, g in zip(prompts, gaps, strict=False):
        d = rl.try_acquire(p)
        if d.ticket is not None:
            rl.release(d.ticket, completion)
        clock.advance(g)
    d = rl.try_acquire(prompts[-1])
    if d.admitted:
        return
    assert d.wait is not None and d.wait > 0
    if d.wait > 1e-3:
        before = clock.now()
        clock.advance(d.wait * 0.999)
        assert not rl.try_acquire(prompts[-1]).admitted
        clock.set(before + d.wait)
    else:
        clock.advance(d.wait)
    assert rl.try_acquire(prompts[-1]).admitted


def test_tokens_prompt_at_admission_completion_at_release() -> None:
    rl, clock = limiter(tokens_per_minute=1000, input_tokens_per_minute=800, output_tokens_per_minute=500)
    d = rl.try_acquire(300)
    assert d.admitted and d.ticket is not None
    assert d.snapshot.tokens_remaining == 700
    assert d.snapshot.input_tokens_remaining == 500
    assert d.snapshot.output_tokens_remaining == 500
    rl.release(d.ticket, 400)
    snap = rl.snapshot()
    assert snap.tokens_remaining == 300
    assert snap.input_tokens_remaining == 500
    assert snap.output_tokens_remaining == 100
    rl.release(d.ticket, 400)  # twice: ignored
    assert rl.snapshot().tokens_remaining == 300
    # 400 prompt tokens do not fit in 300 tokens: wait for 100 more at 1000/60 per second
    d2 = rl.try_acquire(400)
    assert not d2.admitted and d2.limited_by == "tokens"
    assert d2.wait == pytest.approx(6.0)
    clock.advance(6.0)
    assert rl.try_acquire(400).admitted


def test_completion_debt_blocks_until_repaid() -> None:
    rl, clock = limiter(output_tokens_per_minute=60)
    d = rl.try_acquire(10)
    assert d.ticket is not None
    rl.release(d.ticket, 90)  # 30 tokens of debt
    assert rl.snapshot().output_tokens_remaining == 0
    refused = rl.try_acquire(10)
    assert not refused.admitted and refused.limited_by == "output_tokens"
    assert refused.wait == pytest.approx(31.0)  # repay 30, then one token of room
    clock.advance(31.0)
    assert rl.try_acquire(10).admitted


def test_a_request_larger_than_the_limit_waits_for_a_full_bucket() -> None:
    rl, clock = limiter(tokens_per_minute=100)
    assert rl.try_acquire(10).admitted
    d = rl.try_acquire(500)
    assert not d.admitted and d.wait == pytest.approx(6.0)
    clock.advance(6.0)
    assert rl.try_acquire(500).admitted
    assert rl.snapshot().tokens_remaining == 0


def test_longest_wait_names_the_limit() -> None:
    rl, _ = limiter(requests_per_minute=60, tokens_per_minute=60)
    assert rl.try_acquire(59).admitted
    d = rl.try_acquire(30)
    assert not d.admitted and d.limited_by == "tokens"
    assert (d.limit, d.used, d.requested) == (60, 59, 30)


def test_concurrency_slots_are_released() -> None:
    rl, _ = limiter(concurrent=2)
    a, b = rl.try_acquire(), rl.try_acquire()
    assert a.admitted and b.admitted and rl.active == 2
    c = rl.try_acquire()
    assert not c.admitted and c.limited_by == "concurrent" and c.wait is None
    assert a.ticket is not None
    rl.release(a.ticket)
    assert rl.active == 1
    assert rl.try_acquire().admitted
    rl.release(a.ticket)  # a second release of the same ticket frees nothing
    assert rl.active == 2


def test_buckets_are_checked_before_concurrency_so_the_wait_is_known() -> None:
    rl, _ = limiter(requests_per_minute=1, concurrent=1)
    assert rl.try_acquire().admitted
    d = rl.try_acquire()
    assert d.limited_by == "requests" and d.wait == pytest.approx(60.0)


def test_compressed_period_refills_faster() -> None:
    """At time_scale 0.1 a drill passes period=6: 60 per "minute" is 10 per real second."""
    clock = VirtualClock()
    rl = RateLimiter(requests_per_minute=60, period=6.0, clock=clock)
    for _ in range(60):
        rl.try_acquire()
    d = rl.try_acquire()
    assert d.wait == pytest.approx(0.1)
    assert rl.snapshot().requests_reset == pytest.approx(6.0)


def test_no_limits_admits_everything_with_an_empty_snapshot() -> None:
    rl, _ = limiter()
    d = rl.try_acquire(10**9)
    assert d.admitted and d.snapshot.requests_limit is None


@pytest.mark.parametrize("kw", [{"requests_per_minute": 0}, {"concurrent": 0}, {"tokens_per_minute": -5}])
def test_bad_limits_are_rejected(kw: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        RateLimiter(clock=VirtualClock(), **kw)  # type: ignore[arg-type]
