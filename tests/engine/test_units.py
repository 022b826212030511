"""Pure pieces of the engine: SSE codec, fingerprints, journal, redaction, simulator pacing."""

from __future__ import annotations

import asyncio
import json

import pytest

from harness.canonical import canonical_text, canonical_tokens, fingerprint
from harness.dialects import dialects_for
from harness.dialects.base import go_duration
from harness.journal import Call, Journal, redact_headers, redact_url
from harness.simulator import Capacity, CapacityFull, SimSettings, Simulator
from harness.sse import SSEDecoder, encode_comment, encode_event


def test_sse_decoder_handles_any_split_and_keeps_raw_bytes():
    wire = encode_event('{"a": "é"}', event="x") + encode_comment("keep-alive") + encode_event("[DONE]")
    for cut in range(1, len(wire)):
        dec = SSEDecoder()
        evs = dec.feed(wire[:cut]) + dec.feed(wire[cut:])
        assert [e.event for e in evs] == ["x", None, None]
        assert b"".join(e.raw for e in evs) == wire
        assert json.loads(evs[0].data) == {"a": "é"}
        assert evs[1].is_comment_only and evs[2].data == "[DONE]"


def test_sse_decoder_reports_a_partial_event():
    dec = SSEDecoder()
    assert dec.feed(b'data: {"half": ') == []
    assert dec.pending == b'data: {"half": '


def test_canonical_answer_prefixes_and_fingerprint_ignores_whitespace():
    fp = fingerprint("", [("user", "hello")])
    assert fp == fingerprint(" ", [("user", " hello ")])
    assert fp != fingerprint("", [("user", "hello!")])
    assert canonical_text(fp, 10).startswith(canonical_text(fp, 4))
    assert len(canonical_tokens(fp, 300)) == 300


@pytest.mark.parametrize("seconds,text", [(0, "0s"), (0.012, "12ms"), (1.7, "1.7s"), (360, "6m0s"), (3725, "1h2m5s")])
def test_go_duration(seconds, text):
    assert go_duration(seconds) == text


def test_redaction():
    h = redact_headers(
        {"Authorization": "Bearer sk-1", "X-Api-Key": "a", "api-key": "b", "x-goog-api-key": "c", "x": "y"}
    )
    assert set(h.values()) == {"[redacted]", "y"}
    assert redact_url("/v1beta/models/m:generateContent?alt=sse&key=AIza123") == (
        "/v1beta/models/m:generateContent?alt=sse&key=[redacted]"
    )


def test_journal_writes_each_attempt_once_and_loads_back(tmp_path):
    path = tmp_path / "j.jsonl"
    j = Journal(path)
    a = j.new_attempt("lane", headers=redact_headers({"authorization": "Bearer sk-secret"}))
    a.status, a.end_reason = 200, "complete"
    j.record(a)
    b = j.new_attempt("lane")
    b.end_reason = "cut"
    j.record(b)
    j.record_call(Call(id="c1", t_start=0.0, t_end=1.0, outcome="ok"))
    j.mark("fault_window_open", lane="lane", fault="overloaded")
    j.close()
    text = path.read_text()
    assert "sk-secret" not in text
    back = Journal.load(path)
    assert [x.outcome for x in back.attempts()] == ["ok", "unknown"]  # a cut stream is never a success
    assert back.calls()[0].id == "c1" and back.marks()[0].detail == {"fault": "overloaded"}


def test_journal_load_names_the_bad_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"type": "attempt", "id": "a", "lane": "x", "t_start": 0, "wall_start": 0}\nnot json\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2"):
        Journal.load(path)


async def test_capacity_queue_order_and_overflow():
    cap = Capacity(slots=1, queue=1)
    assert await cap.acquire() == 0.0
    waiter = asyncio.ensure_future(cap.acquire())
    await asyncio.sleep(0)
    with pytest.raises(CapacityFull):
        await cap.acquire()
    cap.release()
    await waiter
    assert cap.active == 1 and cap.waiting == 0
    cap.release()
    assert cap.active == 0


async def test_simulator_paces_without_drift():
    """200 tokens at 1000 tokens/s take at least 0.2 s (never early) and all arrive, grouped."""
    sim = Simulator(SimSettings(tokens_per_second=1000.0, ttft=0.0, answer_tokens=200, max_events_per_second=100))
    d = dialects_for("openai-chat")[0]
    req = d.parse_request(
        "POST",
        "/v1/chat/completions",
        {},
        {},
        b'{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]}',
    )
    r = await sim.respond(req, d)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    tokens = content_events = 0
    async for batch in r.events:
        for ev in batch:
            if ev.kind == "content":
                tokens += ev.tokens
                content_events += 1
    elapsed = loop.time() - t0
    assert tokens == 200
    assert elapsed >= 0.199 - 0.002
    assert content_events <= 200 / 10 + 2  # ~10 tokens per event at 100 events/s
    assert sim.capacity.active == 0


def test_simulator_max_tokens_gives_length():
    sim = Simulator(SimSettings(answer_tokens=20))
    d = dialects_for("openai-chat")[0]
    req = d.parse_request(
        "POST",
        "/v1/chat/completions",
        {},
        {},
        b'{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}]}',
    )
    c = sim.completion_for(req)
    assert c.finish == "length" and c.usage.output_tokens == 5


def test_lazy_canonical_tokens_match_the_eager_ones():
    from itertools import islice

    from harness.canonical import iter_canonical_tokens

    for n in (0, 1, 31, 32, 33, 500):
        assert list(islice(iter_canonical_tokens("fp"), n)) == canonical_tokens("fp", n)


def test_per_call_key_stays_with_a_conversation_while_other_calls_start_and_end():
    """A header-less agent's retries keep the key their conversation got first: a retry that
    arrives after other calls have started must not count from 1 again (one fault too many)."""
    j = Journal()
    c1, c2, c3 = Call(id="c1", t_start=0.0), Call(id="c2", t_start=0.0), Call(id="c3", t_start=0.0)
    j.call_started(c1)
    assert j.call_key("fp-a") == "c1"  # alone: the attempt is c1's
    j.call_started(c2)
    assert j.call_key("fp-a") == "c1"  # c1's retry, now that c2 runs too
    assert j.call_key("fp-b") == "fp-b"  # two running: only the conversation is known
    j.record_call(c1)
    assert j.call_key("fp-b") == "fp-b"  # stable while the calls it was chosen under run
    assert j.call_key("fp-a") == "c2"  # c1 ended: the same prompt, alone now, is c2's
    j.record_call(c2)
    j.call_started(c3)
    assert j.call_key("fp-b") == "c3"  # a later call with that prompt starts its own count
    assert Journal().call_key(None) is None
