"""The journal's memory does not grow with the drill: what it keeps per attempt is compact and
shared, and past a window only where each attempt's line is stays in memory. Structural
properties (what is stored, how many copies), never a timing or a byte count of the machine."""

from __future__ import annotations

import pytest

from harness.journal import Call, Journal
from harness.journalstore import Headers

SDK_HEADERS = {
    "authorization": "Bearer sk-test-0000000000000000000000",
    "content-type": "application/json",
    "user-agent": "OpenAI/Python 1.54.4",
    "x-stainless-lang": "python",
    "x-stainless-retry-count": "0",
}


def _record(j: Journal, i: int, **kw: object) -> None:
    from harness.redact import redact_headers

    a = j.new_attempt(
        "ultraspeed",
        method="POST",
        path="/v1/chat/completions",
        headers=redact_headers(dict(SDK_HEADERS)),
        model="".join(["gpt-4o", "-mini"]),  # a fresh string each time, as a JSON parser makes it
        fingerprint=f"fp{i % 7}",
        **kw,
    )
    a.status, a.end_reason, a.tokens = 200, "complete", 5
    a.usage = {"input_tokens": 12, "output_tokens": 5}
    a.fault = {"name": "rate_limit", "retry_after": 1.0} if i % 3 == 0 else None
    j.record(a)


def test_identical_calls_store_one_copy_of_the_answer_text():
    j = Journal()
    answer = "The canonical answer, " * 50
    for i in range(50):
        text = "".join(answer.split(",", 1)[0] + "," + answer.split(",", 1)[1])  # equal, not the same object
        assert text == answer and (i == 0 or text is not answer)
        j.record_call(Call(id=f"c{i}", t_start=float(i), t_end=float(i) + 1, outcome="ok", text=text))
    calls = j.calls()
    assert len(calls) == 50 and all(c.text == answer for c in calls)
    assert len({id(c.text) for c in calls}) == 1


def test_attempts_with_the_same_headers_share_them_and_their_strings():
    j = Journal()
    for i in range(40):
        _record(j, i)
    atts = j.attempts()
    assert all(isinstance(a.headers, Headers) for a in atts)
    assert len({id(a.headers) for a in atts}) == 1  # one header set, stored once
    assert atts[0].headers["authorization"] == "[redacted]"
    assert dict(atts[0].headers) == {**SDK_HEADERS, "authorization": "[redacted]"}
    assert atts[0].headers == {**SDK_HEADERS, "authorization": "[redacted]"}
    assert len({id(a.model) for a in atts}) == 1
    assert len({id(a.usage) for a in atts}) == 1
    assert len({id(a.fault) for a in atts if a.fault}) == 1


@pytest.mark.parametrize("on_disk", [False, True])
def test_past_the_window_only_the_newest_attempts_are_objects_and_all_read_back(tmp_path, on_disk):
    path = tmp_path / "journal.jsonl" if on_disk else None
    j = Journal(path, hot_limit=16)
    recorded = []
    for i in range(200):
        _record(j, i, call_id=f"c{i}")
        recorded.append(j._attempts.hot()[-1].to_json())
        assert j.held_attempts <= 16 + 4  # the window and one chunk, however many were recorded
    assert len(j) == 200
    back = j.attempts()
    assert [a.to_json() for a in back] == sorted(recorded, key=lambda r: (r["t_start"], r["id"]))
    assert [a.call_id for a in j.attempts(fingerprint="fp3")] == [f"c{i}" for i in range(200) if i % 7 == 3]
    assert all(isinstance(a.headers, Headers) for a in back)
    # a read keeps the decoded attempts until more are evicted; then only the window again
    for i in range(200, 240):
        _record(j, i)
    assert j.held_attempts <= 16 + 4
    assert len(j.attempts()) == 240
    tally, last = j.tally()
    assert tally["ultraspeed"][:2] == (240, 240) and tally["ultraspeed"][4] == 80 and last is None
    j.close()
    if on_disk:
        assert [a.to_json() for a in Journal.load(path).attempts()] == [a.to_json() for a in j.attempts()]


def test_a_loaded_journal_reads_cold_attempts_from_its_file(tmp_path):
    path = tmp_path / "journal.jsonl"
    j = Journal(path)
    for i in range(30):
        _record(j, i)
    j.close()
    loaded = Journal.load(path)
    assert [a.to_json() for a in loaded.attempts()] == [a.to_json() for a in j.attempts()]
    assert loaded.tally()[0]["ultraspeed"][0] == 30


def test_reading_again_decodes_and_sorts_nothing_until_an_attempt_is_recorded(tmp_path):
    """Checks read every attempt many times: past the window only the first read decodes."""
    j = Journal(tmp_path / "journal.jsonl", hot_limit=16)
    for i in range(100):
        _record(j, i, call_id=f"c{i}")
    decoded = []
    decode = j._attempts._decode
    j._attempts._decode = lambda raw: decoded.append(raw) or decode(raw)
    first = j.attempts()
    assert len(decoded) == j._attempts.cold > 0
    decoded.clear()
    again = j.attempts()
    assert not decoded and again == first and again is not first
    again.pop()  # the caller's own list: changing it changes no later read
    assert len(j.attempts()) == 100
    assert [a.call_id for a in j.attempts(fingerprint="fp3")] == [f"c{i}" for i in range(100) if i % 7 == 3]
    # an attempt recorded drops the kept order (and with it the decoded attempts) and is read next
    late = j.new_attempt("ultraspeed", call_id="early")
    late.t_start = 0.0  # started before every other one: the order is sorted again, not appended
    for i in range(100, 120):
        _record(j, i)
        assert j._in_order is None
    assert j.held_attempts <= 16 + 4  # once more were evicted, only the window again
    j.record(late)
    atts = j.attempts()
    assert len(atts) == 121 and atts[0].call_id == "early"
    j.close()
