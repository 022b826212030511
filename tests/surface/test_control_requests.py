"""Every malformed control request is a 4xx JSON error, and nothing it carries reaches the journal
as something that is not JSON.

Before: an unhashable ``lane`` or a deeply nested body was a ``text/plain`` 500, a huge integer
``duration`` was a 500, and ``NaN``/``Infinity`` were accepted and written into journal.jsonl as
a bare ``Infinity``.
"""

from __future__ import annotations

import json
import math

import httpx
import pytest

from harness.control import ControlServer
from harness.journal import Journal
from harness.lanes import BackgroundLanes, LaneSet
from harness.profile import profile_from_dict

from .conftest import FAST

JSON = {"Content-Type": "application/json"}
DEEP = b"[" * 100_000 + b"]" * 100_000

BAD_FAULTS = [
    ("unhashable lane", b'{"fault": "overloaded", "lane": ["a"]}', "faults[0].lane"),
    ("lane as an object", b'{"fault": "overloaded", "lane": {"a": 1}}', "faults[0].lane"),
    ("fault as a list", b'{"fault": ["overloaded"], "lane": "a"}', "faults[0].fault"),
    ("name as an object", b'{"fault": "overloaded", "lane": "a", "name": {"x": 1}}', "faults[0].name"),
    ("name with a slash", b'{"fault": "overloaded", "lane": "a", "name": "a/b"}', "faults[0].name"),
    ("schedule as a number", b'{"fault": "overloaded", "lane": "a", "schedule": 5}', None),
    ("schedule nested wrong", b'{"fault": "overloaded", "lane": "a", "schedule": {"window": [[1], {}]}}', None),
    ("NaN attribute", b'{"fault": "overloaded", "lane": "a", "retry_after": NaN}', None),
    ("Infinity attribute", b'{"fault": "overloaded", "lane": "a", "retry_after": Infinity}', None),
    ("overflowing float", b'{"fault": "overloaded", "lane": "a", "retry_after": 1e999}', None),
    ("huge integer", b'{"fault": "overloaded", "lane": "a", "retry_after": ' + b"9" * 400 + b"}", None),
    ("deep JSON", DEEP, None),
    (
        "deep inside a field",
        b'{"fault": "overloaded", "lane": "a", "schedule": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        None,
    ),
    ("lone surrogate", b'{"fault": "overloaded", "lane": "\\ud800"}', None),
    ("not UTF-8", b'{"fault": "\xff"}', None),
    ("not an object", b'["overloaded"]', None),
    ("empty body", b"", None),
]

BAD_CALLS = [
    ("huge integer duration", {"duration": 10**400}, None),
    ("big integer duration", {"duration": 10**300}, "duration"),
    ("negative duration", {"duration": -1}, "duration"),
    ("duration as a string", {"duration": "2s"}, "duration"),
    ("duration true", {"duration": True}, "duration"),
    ("NaN duration", b'{"duration": NaN}', None),
    ("Infinity started_at", b'{"started_at": Infinity, "ended_at": 1}', None),
    ("-Infinity ended_at", b'{"started_at": 1, "ended_at": -Infinity}', None),
    ("started_at from another century", {"started_at": 1.0, "ended_at": 2.0}, "started_at"),
    ("ended before started", "ENDS_BEFORE", "ended_at"),
    ("unhashable outcome", {"outcome": ["ok"]}, "outcome"),
    ("unknown outcome", {"outcome": "maybe"}, "outcome"),
    ("unhashable lane", {"lane": ["a"]}, "lane"),
    ("unknown lane", {"lane": "zzz"}, "lane"),
    ("text as an object", {"text": {"a": 1}}, "text"),
    ("complete as a string", {"complete": "yes"}, "complete"),
    ("id as a list", {"id": [1]}, "id"),
    ("huge integer id", {"id": 10**300}, "id"),
    ("error as a number", {"error": 5}, "error"),
    ("a typo", {"outcom": "ok"}, "outcom"),
    ("deep JSON", DEEP, None),
    ("lone surrogate in text", b'{"text": "\\ud800"}', None),
]


def _post(url: str, body: object) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(url, content=content, headers=JSON, timeout=10)


def _assert_json_4xx(r: httpx.Response, field: str | None) -> None:
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["status"] == r.status_code and body["error"]
    if field is not None:
        assert body.get("field") == field, body


@pytest.mark.parametrize("what,body,field", BAD_FAULTS, ids=[b[0] for b in BAD_FAULTS])
def test_a_malformed_fault_is_a_4xx_json_error(controlled, what, body, field):
    bg, control = controlled
    for method, path in (("POST", "/faults"), ("PUT", "/faults/x")):
        r = httpx.request(method, control.url + path, content=body, headers=JSON, timeout=10)
        _assert_json_4xx(r, field if method == "POST" or field != "faults[0].name" else None)
    assert bg.lanes.faults.entries == []  # type: ignore[union-attr]


@pytest.mark.parametrize("what,body,field", BAD_CALLS, ids=[b[0] for b in BAD_CALLS])
def test_a_malformed_call_report_is_a_4xx_json_error(controlled, what, body, field):
    bg, control = controlled
    if body == "ENDS_BEFORE":
        now = bg.journal.wall0 + bg.journal.now()
        body = {"started_at": now, "ended_at": now - 1}
    _assert_json_4xx(_post(control.url + "/calls", body), field)
    assert bg.journal.calls() == []


def test_since_must_be_a_plain_integer(controlled):
    _, control = controlled
    for since in ("-1", "1e3", "9" * 5000, "NaN", "١"):  # the last: an Arabic-Indic digit one
        _assert_json_4xx(httpx.get(control.url + "/journal", params={"since": since}), "since")
    assert httpx.get(control.url + "/journal", params={"since": "0"}).json() == []


def test_a_good_call_report_still_lands_with_its_times(controlled):
    bg, control = controlled
    wall0, elapsed = bg.journal.wall0, bg.journal.now()
    call = {"id": 7, "outcome": "error", "lane": "a", "started_at": wall0 + 0.001, "ended_at": wall0 + elapsed}
    r = _post(control.url + "/calls", call)
    assert r.status_code == 201 and r.json() == {"id": "7"}
    r = _post(control.url + "/calls", {"outcome": "ok", "text": "hi", "complete": True, "duration": 0.0})
    assert r.status_code == 201
    first, second = sorted(bg.journal.calls(), key=lambda c: c.id)
    assert (first.id, first.outcome, first.lane) == ("7", "error", "a")
    assert (first.t_start, first.t_end) == (pytest.approx(0.001, abs=1e-6), pytest.approx(elapsed, abs=1e-6))
    assert (second.id, second.text, second.complete, second.t_end - second.t_start) == ("reported-0002", "hi", True, 0)


def test_the_journal_file_stays_strict_json(tmp_path, start_lanes):
    """Whatever the control API was sent, journal.jsonl is JSON a strict reader (jq) accepts."""
    path = tmp_path / "journal.jsonl"
    bg = BackgroundLanes(
        LaneSet(profile_from_dict({"lanes": {"a": {"dialect": "openai", "simulator": FAST}}}), Journal(path))
    ).start()
    control = ControlServer(bg.lanes)
    try:
        bg.call(control.start)
        for _, body, _ in BAD_CALLS + BAD_FAULTS:
            if body != "ENDS_BEFORE":
                _post(control.url + "/calls", body)
                _post(control.url + "/faults", body)
        assert (
            _post(control.url + "/faults", {"fault": "overloaded", "lane": "a", "retry_after": 2.5}).status_code == 201
        )
        assert _post(control.url + "/calls", {"outcome": "ok", "duration": 1e-3}).status_code == 201
    finally:
        bg.call(control.stop)
        bg.stop()
        bg.journal.close()

    def no_constants(name: str) -> float:
        raise AssertionError(f"journal.jsonl holds a bare {name}")

    lines = path.read_text(encoding="utf-8").splitlines()
    for line in lines:
        obj = json.loads(line, parse_constant=no_constants)
        for value in obj.values():
            assert not (isinstance(value, float) and not math.isfinite(value))
    assert sum('"type": "call"' in line for line in lines) == 1
