"""Stream faults, seen by the real clients an agent uses (openai, anthropic, an httpx Gemini reader).

Every test runs a lane on the simulator with one fault in its profile, streams one answer with
each client, and asserts what the client observed (text so far, the exception class it raised,
timing) and what the journal recorded. Times are compressed (``time_scale`` 0.1) and bounded
loosely from above only, so a slow machine cannot fail them.
"""

from __future__ import annotations

import json
import time

import anthropic
import httpx
import httpx2
import openai
import pytest

from harness.faults import make_fault
from harness.journal import Attempt
from harness.lanes import BackgroundLanes

from .stream_helpers import DIALECTS, PROMPT, GeminiStreamError, Seen, chain, drive, expected, start, utf8_prompt

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def lane():
    """``lane(dialect, fault, **kw) -> BackgroundLanes``, stopped after the test."""
    started: list[BackgroundLanes] = []

    def make(dialect: str, fault: dict, **kw) -> BackgroundLanes:
        bg = start(dialect, fault, **kw)
        started.append(bg)
        return bg

    yield make
    for bg in reversed(started):
        bg.stop()


def only_attempt(bg: BackgroundLanes, fault: str) -> Attempt:
    """The single attempt of the test, with the fault recorded (no SDK retried it)."""
    assert bg.journal.wait_for(1, 5)
    attempts = bg.journal.attempts()
    assert len(attempts) == 1, attempts
    a = attempts[0]
    assert a.fault is not None and a.fault["name"] == fault, a.fault
    assert a.status == 200 and a.stream
    return a


def words(text: str) -> int:
    return len(text.split())


def is_prefix(seen: Seen, tokens: int) -> None:
    assert seen.text == expected(tokens=tokens), (seen.text, expected(tokens=tokens))


# -- F16 stream_cut ---------------------------------------------------------------------------
#: what a FIN without the chunked body's last chunk / an RST surfaces as, per client
CUT_EXC = {
    # openai wraps transport errors raised while iterating (Stream._iter_events)
    ("chat", "fin"): (openai.APIConnectionError, httpx2.RemoteProtocolError),
    ("responses", "fin"): (openai.APIConnectionError, httpx2.RemoteProtocolError),
    ("chat", "reset"): (openai.APIConnectionError, httpx2.ReadError),
    ("responses", "reset"): (openai.APIConnectionError, httpx2.ReadError),
    # anthropic does not: the raw httpx2 exception escapes the iterator
    ("anthropic", "fin"): (httpx2.RemoteProtocolError, httpx2.RemoteProtocolError),
    ("anthropic", "reset"): (httpx2.ReadError, httpx2.ReadError),
    ("gemini", "fin"): (httpx.RemoteProtocolError, httpx.RemoteProtocolError),
    ("gemini", "reset"): (httpx.ReadError, httpx.ReadError),
}


@pytest.mark.parametrize("mode", ["fin", "reset"])
@pytest.mark.parametrize("dialect", DIALECTS)
def test_stream_cut_transport(lane, dialect, mode):
    bg = lane(dialect, {"fault": "stream_cut", "after_tokens": 5, "mode": mode})
    seen = drive(dialect, bg.urls["lane"])
    outer, inner = CUT_EXC[(dialect, mode)]
    assert isinstance(seen.exc, outer), repr(seen.exc)
    assert any(isinstance(e, inner) for e in chain(seen.exc)), list(chain(seen.exc))
    is_prefix(seen, 5)
    assert seen.finish is None
    a = only_attempt(bg, "stream_cut")
    assert a.end_reason == "cut" and a.outcome == "unknown" and a.tokens == 5


@pytest.mark.parametrize("dialect", DIALECTS)
def test_stream_cut_clean_ends_silently(lane, dialect):
    """A clean EOF without the terminator raises nothing in any client: the truncated answer
    looks like a success unless the caller checks for a finish reason."""
    bg = lane(dialect, {"fault": "stream_cut", "after_tokens": 5, "mode": "clean"})
    seen = drive(dialect, bg.urls["lane"])
    assert seen.exc is None
    is_prefix(seen, 5)
    assert seen.finish is None
    assert only_attempt(bg, "stream_cut").end_reason == "cut"


def test_stream_cut_after_events_zero_sends_only_headers(lane):
    bg = lane("anthropic", {"fault": "stream_cut", "after_events": 0, "mode": "clean"})
    seen = drive("anthropic", bg.urls["lane"])
    assert seen.exc is None and seen.events == []
    a = only_attempt(bg, "stream_cut")
    assert a.end_reason == "cut" and a.events == 0


# -- F19/F20 inband_error ---------------------------------------------------------------------
@pytest.mark.parametrize("after", [0, 5])
@pytest.mark.parametrize("dialect", DIALECTS)
def test_inband_error(lane, dialect, after):
    bg = lane(dialect, {"fault": "inband_error", "after_tokens": after})
    seen = drive(dialect, bg.urls["lane"])
    is_prefix(seen, after)
    if dialect == "chat":
        assert type(seen.exc) is openai.APIError  # raised by the iterator, not a status error
        assert seen.exc.body["type"] == "service_unavailable_error"
    elif dialect == "responses":
        # the raw Responses iterator raises nothing: response.failed is just one more event
        assert seen.exc is None and seen.finish == "response.failed"
    elif dialect == "anthropic":
        assert type(seen.exc) is anthropic.APIStatusError  # never OverloadedError: the status is 200
        assert seen.exc.status_code == 200
        assert seen.exc.body["error"]["type"] == "overloaded_error"
    else:
        assert isinstance(seen.exc, GeminiStreamError) and seen.exc.error["status"] == "UNAVAILABLE"
    a = only_attempt(bg, "inband_error")  # one attempt: SDKs never retry an in-band error
    assert a.end_reason == "inband_error" and a.outcome == "error" and a.tokens == after


def test_inband_error_responses_stream_helper(lane):
    """``responses.stream()`` ends the iteration quietly, then ``get_final_response`` raises."""
    bg = lane("responses", {"fault": "inband_error", "after_tokens": 3, "kind": "rate_limit"})
    client = openai.OpenAI(base_url=bg.urls["lane"] + "/v1", api_key="sk-test", max_retries=0)
    failed = None
    with client.responses.stream(model="gpt-4o-mini", input=PROMPT) as stream:
        for ev in stream:
            if ev.type == "response.failed":
                failed = ev.response
        with pytest.raises(RuntimeError, match=r"response\.completed"):
            stream.get_final_response()
    assert failed is not None and failed.error.code == "rate_limit_exceeded"
    assert only_attempt(bg, "inband_error").error == {"inband": True, "kind": "rate_limit"}


# -- F21 malformed_event ----------------------------------------------------------------------
@pytest.mark.parametrize("dialect", DIALECTS)
def test_malformed_event_crashes_the_stream(lane, dialect):
    """No client skips a bad event: each raises a bare ``json.JSONDecodeError`` (not an SDK
    exception class) and the rest of the answer is lost, though the lane sent it all."""
    bg = lane(dialect, {"fault": "malformed_event", "after_events": 2})
    seen = drive(dialect, bg.urls["lane"])
    assert type(seen.exc) is json.JSONDecodeError, repr(seen.exc)
    full = expected()
    assert full.startswith(seen.text)
    a = only_attempt(bg, "malformed_event")
    # the client hangs up at the bad event: the lane may or may not have written the rest by then
    assert a.end_reason in ("complete", "client_gone")


def test_malformed_event_payload_override(lane):
    bg = lane("chat", {"fault": "malformed_event", "after_events": 1, "payload": "data: {not json"})
    seen = drive("chat", bg.urls["lane"])
    assert type(seen.exc) is json.JSONDecodeError and seen.text == ""
    only_attempt(bg, "malformed_event")


# -- F21 split_utf8 ---------------------------------------------------------------------------
@pytest.mark.parametrize("dialect", DIALECTS)
def test_split_utf8_arrives_intact(lane, dialect):
    prompt = utf8_prompt()
    want = expected(prompt)
    assert "café" in want or "naïve" in want
    bg = lane(dialect, {"fault": "split_utf8"})
    seen = drive(dialect, bg.urls["lane"], prompt)
    assert seen.exc is None and seen.text == want
    a = only_attempt(bg, "split_utf8")
    assert a.end_reason == "complete" and a.tokens == 12


def test_split_utf8_really_splits_characters(lane):
    """On the wire, some read ends inside a character: a client decoding each read alone fails."""
    prompt = utf8_prompt()
    bg = lane("chat", {"fault": "split_utf8", "gap": 0.3}, time_scale=0.1)  # 30 ms between halves
    body = {"model": "m", "messages": [{"role": "user", "content": prompt}], "stream": True}
    reads: list[bytes] = []
    with httpx.stream("POST", bg.urls["lane"] + "/v1/chat/completions", json=body, timeout=10) as r:
        reads.extend(r.iter_raw())
    assert any(_bad_utf8(chunk) for chunk in reads), reads
    assert "é".encode() in b"".join(reads) or "ï".encode() in b"".join(reads)  # raw UTF-8, not \\u escapes
    only_attempt(bg, "split_utf8")


def _bad_utf8(chunk: bytes) -> bool:
    try:
        chunk.decode()
    except UnicodeDecodeError:
        return True
    return False


# -- F22 no_terminator ------------------------------------------------------------------------
@pytest.mark.parametrize("dialect", DIALECTS)
def test_no_terminator(lane, dialect):
    bg = lane(dialect, {"fault": "no_terminator"})
    seen = drive(dialect, bg.urls["lane"])
    assert seen.exc is None and seen.text == expected()
    # the finish survives where it is not the terminator (Chat, Anthropic); Responses and Gemini
    # lose it with their terminal event
    assert seen.finish == {"chat": "stop", "anthropic": "end_turn", "responses": None, "gemini": None}[dialect]
    a = only_attempt(bg, "no_terminator")
    assert a.end_reason == "no_terminator" and a.outcome == "ok"  # nothing is missing but the terminator


def test_no_terminator_sdk_helpers(lane):
    """anthropic's ``messages.stream()`` builds the final message without ``message_stop``;
    openai's ``responses.stream()`` refuses without ``response.completed``."""
    bg = lane("anthropic", {"fault": "no_terminator"})
    client = anthropic.Anthropic(base_url=bg.urls["lane"], api_key="sk-test", max_retries=0)
    with client.messages.stream(
        model="claude-opus-4-6", max_tokens=100, messages=[{"role": "user", "content": PROMPT}]
    ) as stream:
        message = stream.get_final_message()
    assert message.stop_reason == "end_turn" and message.content[0].text == expected()
    only_attempt(bg, "no_terminator")

    bg2 = lane("responses", {"fault": "no_terminator"})
    oai = openai.OpenAI(base_url=bg2.urls["lane"] + "/v1", api_key="sk-test", max_retries=0)
    with oai.responses.stream(model="gpt-4o-mini", input=PROMPT) as rstream:
        for _ in rstream:
            pass
        with pytest.raises(RuntimeError, match=r"response\.completed"):
            rstream.get_final_response()
    only_attempt(bg2, "no_terminator")


# -- F23 linger -------------------------------------------------------------------------------
@pytest.mark.parametrize("dialect", DIALECTS)
def test_linger(lane, dialect):
    """Only Chat Completions has a terminator the SDK stops on (``[DONE]``, then it closes the
    connection). The Responses, Anthropic and Gemini readers wait for EOF: latency inflated by
    the whole linger."""
    # Chat's linger is long (30 s) so that "did not wait for it" is told from "waited" by a
    # margin no loaded machine closes; the others wait for theirs, so it stays short (0.6 s).
    duration = 30.0 if dialect == "chat" else 0.6  # seconds at time_scale 0.1
    bg = lane(dialect, {"fault": "linger", "duration": duration * 10})
    seen = drive(dialect, bg.urls["lane"])
    assert seen.exc is None and seen.text == expected()
    a = only_attempt(bg, "linger")
    assert a.end_reason == "complete" and a.outcome == "ok"
    if dialect == "chat":
        assert seen.elapsed < duration / 2
        assert a.duration is not None and a.duration < duration / 2  # the SDK hung up at [DONE]
    else:
        assert seen.elapsed >= duration * 0.8
        assert a.duration is not None and a.duration >= duration * 0.8


def test_linger_anthropic_helper_can_stop_on_message_stop(lane):
    """A caller that breaks on ``message_stop`` is immune; the lane still records ``complete``."""
    bg = lane("anthropic", {"fault": "linger", "duration": None})
    client = anthropic.Anthropic(base_url=bg.urls["lane"], api_key="sk-test", max_retries=0)
    t0 = time.monotonic()
    with client.messages.stream(
        model="claude-opus-4-6", max_tokens=100, messages=[{"role": "user", "content": PROMPT}]
    ) as stream:
        for ev in stream:
            if ev.type == "message_stop":
                break
    assert time.monotonic() - t0 < 2.0
    a = only_attempt(bg, "linger")
    assert a.end_reason == "complete"


# -- F14 slow_first_token ---------------------------------------------------------------------
@pytest.mark.parametrize("dialect", DIALECTS)
def test_slow_first_token(lane, dialect):
    bg = lane(dialect, {"fault": "slow_first_token", "delay": 3.0})  # 0.3 s
    seen = drive(dialect, bg.urls["lane"])
    assert seen.exc is None and seen.text == expected()
    assert seen.t_first is not None and 0.24 <= seen.t_first < 0.3 + 2.0
    a = only_attempt(bg, "slow_first_token")
    assert a.end_reason == "complete"
    assert a.t_headers is not None and a.t_first_token is not None
    assert a.t_first_token - a.t_headers >= 0.24  # headers went out at once


@pytest.mark.parametrize("dialect", DIALECTS)
def test_slow_first_token_read_timeout(lane, dialect):
    """With ``keepalive: auto`` only Anthropic pings during the wait, and a 0.3 s read timeout
    cannot fire there; every other client times out before the first token."""
    bg = lane(dialect, {"fault": "slow_first_token", "delay": 10.0, "ping_interval": 1.0})  # 1 s, pings 0.1 s
    seen = drive(dialect, bg.urls["lane"], timeout=0.3)
    if dialect == "anthropic":
        assert seen.exc is None and seen.text == expected()
        assert seen.t_first is not None and seen.t_first >= 0.8
        assert bg.journal.wait_for(1) and bg.journal.attempts()[0].events > 8  # ~9 pings
    else:
        _assert_read_timeout(dialect, seen)
        assert seen.text == ""
    only_attempt(bg, "slow_first_token")


def _assert_read_timeout(dialect: str, seen: Seen) -> None:
    if dialect in ("chat", "responses"):
        assert isinstance(seen.exc, openai.APITimeoutError), repr(seen.exc)
    elif dialect == "anthropic":
        assert isinstance(seen.exc, httpx2.ReadTimeout), repr(seen.exc)  # not wrapped while iterating
    else:
        assert isinstance(seen.exc, httpx.ReadTimeout), repr(seen.exc)


def test_slow_first_token_non_stream_is_late(lane):
    bg = lane("chat", {"fault": "slow_first_token", "delay": 3.0})
    client = openai.OpenAI(base_url=bg.urls["lane"] + "/v1", api_key="sk-test", max_retries=0)
    t0 = time.monotonic()
    resp = client.chat.completions.create(model="m", messages=[{"role": "user", "content": PROMPT}])
    assert time.monotonic() - t0 >= 0.24
    assert resp.choices[0].message.content == expected()
    assert bg.journal.wait_for(1) and bg.journal.attempts()[0].fault_name == "slow_first_token"


# -- F15 throughput_collapse ------------------------------------------------------------------
@pytest.mark.parametrize("dialect", DIALECTS)
def test_throughput_collapse(lane, dialect):
    # 20 tokens/s at time_scale 0.1 = 200 tokens/s: the last 8 of 12 tokens take >= 40 ms
    bg = lane(dialect, {"fault": "throughput_collapse", "after_tokens": 4, "tokens_per_second": 2.0})
    seen = drive(dialect, bg.urls["lane"])
    assert seen.exc is None and seen.text == expected()
    assert seen.t_first is not None
    # 2 tokens/s * 10 = 20 tokens/s: 8 paced tokens take 0.4 s, one event each
    assert seen.elapsed - seen.t_first >= 0.32
    assert seen.elapsed < 0.4 + 2.0
    assert len(seen.t_marks) >= 9
    a = only_attempt(bg, "throughput_collapse")
    assert a.end_reason == "complete" and a.generation_time is not None and a.generation_time >= 0.32


# -- F17/F18 stall ----------------------------------------------------------------------------
@pytest.mark.parametrize("dialect", DIALECTS)
def test_stall_resumes(lane, dialect):
    bg = lane(dialect, {"fault": "stall", "after_tokens": 3, "duration": 3.0})  # 0.3 s
    seen = drive(dialect, bg.urls["lane"])
    assert seen.exc is None and seen.text == expected()
    gaps = [b - a for a, b in zip(seen.t_marks, seen.t_marks[1:], strict=False)]
    assert max(gaps) >= 0.24
    assert only_attempt(bg, "stall").end_reason == "complete"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_silent_stall_trips_read_timeout(lane, dialect):
    bg = lane(dialect, {"fault": "stall", "after_tokens": 3, "duration": None})  # forever
    seen = drive(dialect, bg.urls["lane"], timeout=0.3)
    _assert_read_timeout(dialect, seen)
    is_prefix(seen, 3)
    a = only_attempt(bg, "stall")
    assert a.end_reason == "client_gone" and a.outcome == "unknown"


@pytest.mark.parametrize("keepalive", ["ping", "comment"])
@pytest.mark.parametrize("dialect", DIALECTS)
def test_masked_stall_defeats_read_timeout(lane, dialect, keepalive):
    """Keep-alives every 0.1 s hold a 0.3 s read timeout off for the whole 1 s stall: byte-idle
    timeouts cannot see a stall that pings; only a content-idle watchdog can."""
    fault = {"fault": "stall", "after_tokens": 3, "duration": 10.0, "keepalive": keepalive, "interval": 1.0}
    bg = lane(dialect, fault)
    seen = drive(dialect, bg.urls["lane"], timeout=0.3)
    assert seen.exc is None and seen.text == expected()
    assert seen.elapsed >= 0.8
    a = only_attempt(bg, "stall")
    assert a.end_reason == "complete" and a.events >= 9


@pytest.mark.parametrize("dialect", DIALECTS)
def test_stall_then_cut(lane, dialect):
    bg = lane(dialect, {"fault": "stall", "after_tokens": 3, "duration": 2.0, "then": "cut"})
    seen = drive(dialect, bg.urls["lane"])
    outer, inner = CUT_EXC[(dialect, "fin")]
    assert isinstance(seen.exc, outer) and any(isinstance(e, inner) for e in chain(seen.exc))
    assert seen.elapsed >= 0.16
    is_prefix(seen, 3)
    assert only_attempt(bg, "stall").end_reason == "cut"


# -- the catalogue itself ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "attrs", "field"),
    [
        ("stream_cut", {"mode": "half"}, "mode"),
        ("stream_cut", {"after_tokens": -1}, "after_tokens"),
        ("stall", {"keepalive": "loud"}, "keepalive"),
        ("stall", {"then": "explode"}, "then"),
        ("throughput_collapse", {"tokens_per_second": 0}, "tokens_per_second"),
        ("inband_error", {"kind": "nope"}, "kind"),
        ("slow_first_token", {"keepalive": "comment"}, "keepalive"),
    ],
)
def test_bad_attributes_name_their_field(name, attrs, field):
    from harness.faults import FaultAttrError

    with pytest.raises(FaultAttrError) as info:
        make_fault(name, attrs)
    assert info.value.field == field


def test_stream_cut_default_point_and_describe():
    fault = make_fault("stream_cut", {})
    assert fault.describe() == {"name": "stream_cut", "after_tokens": 8, "mode": "fin"}
    assert make_fault("stall", {"duration": None}).describe()["name"] == "stall"


def test_non_stream_requests_pass_untouched(lane):
    """Faults with no non-stream analogue leave a whole answer alone."""
    for i, fault in enumerate(("stream_cut", "inband_error", "malformed_event", "no_terminator", "split_utf8")):
        bg = lane("anthropic", {"fault": fault})
        client = anthropic.Anthropic(base_url=bg.urls["lane"], api_key="sk-test", max_retries=0)
        msg = client.messages.create(
            model="claude-opus-4-6", max_tokens=100, messages=[{"role": "user", "content": PROMPT}]
        )
        assert msg.content[0].text == expected(), (i, fault)
        a = only_attempt_any(bg)
        assert a.end_reason == "complete" and a.fault_name == fault


def only_attempt_any(bg: BackgroundLanes) -> Attempt:
    assert bg.journal.wait_for(1, 5)
    (a,) = bg.journal.attempts()
    return a
