"""Record through a forwarding lane with the real SDKs, replay the cassette: the SDK reads the
very bytes it read from the live upstream; faults lay over a replay as over the simulator."""

from __future__ import annotations

import pytest

from harness.cassette import Cassette
from harness.profile import FaultSpec

from .clients import SURFACES, drive
from .tap import Tap

CASES = [(s, stream) for s in SURFACES for stream in (True, False)]


def _record(rig, surface: str, stream: bool, cassette) -> tuple[str, bytes]:
    url, live = rig.recording(SURFACES[surface], cassette)
    tap = Tap()
    text = drive(surface, url, tap, stream=stream)
    assert live.journal.wait_for(1)
    rig.stop(live)  # closes the cassette
    return text, bytes(tap.bodies[-1])


@pytest.mark.parametrize(("surface", "stream"), CASES)
def test_replay_gives_the_client_the_recorded_bytes(rig, tmp_path, surface, stream):
    cassette = tmp_path / "c.jsonl"
    text, live_bytes = _record(rig, surface, stream, cassette)
    exchanges = Cassette.load(cassette).exchanges
    assert len(exchanges) == 1 and exchanges[0].request.stream is stream
    if stream:
        assert len(exchanges[0].response.events or []) > 2
        assert all(e["t"] >= exchanges[0].response.t_headers for e in exchanges[0].response.events or [])
    url, rep = rig.replaying(SURFACES[surface], cassette)
    tap = Tap()
    assert drive(surface, url, tap, stream=stream) == text
    assert bytes(tap.bodies[-1]) == live_bytes
    assert rep.journal.wait_for(1)
    (a,) = rep.journal.attempts()
    assert a.outcome == "ok" and a.complete and a.answer is not None
    assert a.upstream == "cassette:c.jsonl"


@pytest.mark.parametrize("surface", list(SURFACES))
def test_stream_cut_inside_a_recorded_answer(rig, tmp_path, surface):
    cassette = tmp_path / "c.jsonl"
    text, _ = _record(rig, surface, True, cassette)
    cut = FaultSpec("stream_cut", "rep", attrs={"after_tokens": 10})
    url, rep = rig.replaying(SURFACES[surface], cassette, [cut])
    got = ""
    try:
        got = drive(surface, url, Tap(), stream=True)
    except Exception:  # each SDK raises its own error for a cut stream
        pass
    assert got != text
    assert rep.journal.wait_for(1)
    (a,) = rep.journal.attempts()
    assert a.end_reason == "cut" and a.fault_name == "stream_cut"
    assert 10 <= a.tokens < a.expected_tokens and not a.complete and a.answer is not None


@pytest.mark.parametrize("surface", list(SURFACES))
def test_429_before_a_recorded_answer_then_the_answer(rig, tmp_path, surface):
    cassette = tmp_path / "c.jsonl"
    text, live_bytes = _record(rig, surface, True, cassette)
    limit = FaultSpec("rate_limit", "rep", schedule={"first": 1}, attrs={"retry_after": 0.01})
    url, rep = rig.replaying(SURFACES[surface], cassette, [limit])
    tap = Tap()
    assert drive(surface, url, tap, stream=True, retries=2) == text
    assert tap.statuses == [429, 200]
    assert bytes(tap.bodies[-1]) == live_bytes
    assert rep.journal.wait_for(2)
    first, second = rep.journal.attempts()
    assert first.status == 429 and first.fault_name == "rate_limit"
    assert second.complete and second.fault_name is None


def test_stall_inside_a_recorded_answer_then_resume(rig, tmp_path):
    cassette = tmp_path / "c.jsonl"
    text, _ = _record(rig, "openai-chat", True, cassette)
    stall = FaultSpec("stall", "rep", attrs={"after_tokens": 5, "duration": 1.0})
    url, rep = rig.replaying("openai", cassette, [stall])
    assert drive("openai-chat", url, Tap(), stream=True) == text  # an event split at the stall is re-encoded
    assert rep.journal.wait_for(1)
    (a,) = rep.journal.attempts()
    assert a.fault_name == "stall" and a.complete
    # the silence sits inside the answer: between the 5th token and the rest (1 s x time_scale)
    assert a.t_last_token - a.t_first_token >= 1.0 * 0.05 * 0.9


def test_unmatched_request_gets_a_provider_error_naming_the_nearest(rig, tmp_path):
    import openai

    cassette = tmp_path / "c.jsonl"
    _record(rig, "openai-chat", True, cassette)
    url, _ = rig.replaying("openai", cassette)
    with pytest.raises(openai.BadRequestError) as err:
        drive("openai-chat", url, Tap(), stream=True, prompt="A question never recorded")
    msg = str(err.value)
    assert "no exchange in c.jsonl matches this request" in msg
    assert "the nearest recorded request is #1" in msg and "differs in conversation" in msg


def test_unmatched_request_falls_through_to_the_simulator(rig, tmp_path):
    from tests.conftest import expected_answer

    cassette = tmp_path / "c.jsonl"
    text, _ = _record(rig, "openai-chat", True, cassette)
    url, rep = rig.replaying("openai", cassette, fallthrough="simulator")
    assert drive("openai-chat", url, Tap(), stream=True) == text
    other = "A question never recorded"
    assert drive("openai-chat", url, Tap(), stream=True, prompt=other) == expected_answer(other, 32)
    assert rep.journal.wait_for(2)
    recorded, simulated = rep.journal.attempts()
    assert recorded.answer is not None and simulated.answer is None and simulated.complete


def test_set_pace(rig, tmp_path):
    cassette = tmp_path / "c.jsonl"
    text, live_bytes = _record(rig, "openai-chat", True, cassette)
    url, rep = rig.replaying("openai", cassette, pace=400.0)
    tap = Tap()
    assert drive("openai-chat", url, tap, stream=True) == text
    assert bytes(tap.bodies[-1]) == live_bytes
    assert rep.journal.wait_for(1)
    (a,) = rep.journal.attempts()
    # every token after the first event at 400 tokens/s: far slower than the recording x 0.05
    from harness.dialects import dialects_for
    from harness.playback import decode

    played = decode(Cassette.load(cassette).exchanges[0], dialects_for("openai")[0])
    after_first = sum(ev.tokens for _, batch in played.batches[1:] for ev in batch if ev.tokens)
    assert after_first > 10
    assert a.t_last_token - a.t_headers >= 0.9 * after_first / 400.0
