"""Faults flipped live on running lanes through the control API."""

from __future__ import annotations

import httpx
import pytest

from harness.control import ControlServer
from harness.profile import profile_from_dict

FAST = {"tokens_per_second": 5000, "ttft": 0.0, "answer_tokens": 8}
BODY = {"model": "m", "messages": [{"role": "user", "content": "q"}]}


@pytest.fixture
def live(start_lanes):
    bg = start_lanes(
        profile_from_dict(
            {"lanes": {"a": {"dialect": "openai", "simulator": FAST}, "b": {"dialect": "anthropic", "simulator": FAST}}}
        )
    )
    control = ControlServer(bg.lanes)
    url = bg.call(control.start)
    yield bg, url
    bg.call(control.stop)


def _chat(bg) -> int:
    return httpx.post(bg.urls["a"] + "/v1/chat/completions", json=BODY, timeout=10).status_code


def test_add_change_and_remove_a_fault_while_lanes_run(live):
    bg, url = live
    assert _chat(bg) == 200
    r = httpx.post(url + "/faults", json={"fault": "overloaded", "lane": "a", "name": "storm"})
    assert r.status_code == 201 and r.json()["name"] == "storm"
    assert _chat(bg) == 503
    r = httpx.put(url + "/faults/storm", json={"fault": "rate_limit", "lane": "a", "retry_after": 3})
    assert r.status_code == 200
    assert _chat(bg) == 429
    assert [f["fault"] for f in httpx.get(url + "/faults").json()] == ["rate_limit"]
    assert httpx.delete(url + "/faults/storm").status_code == 204
    assert _chat(bg) == 200
    kinds = [m["kind"] for m in httpx.get(url + "/marks").json() if m["kind"].startswith("fault")]
    assert kinds == ["fault_added", "fault_changed", "fault_removed"]
    journal = httpx.get(url + "/journal").json()
    assert [a["status"] for a in journal] == [200, 503, 429, 200]


@pytest.mark.parametrize(
    "body,field",
    [
        ({"fault": "nope", "lane": "a"}, "faults[0].fault"),
        ({"fault": "overloaded", "lane": "zzz"}, "faults[0].lane"),
        ({"fault": "overloaded", "lane": "a", "retry_after": "soon"}, "faults[0].retry_after"),
        ({"fault": "overloaded", "lane": "a", "schedule": {"first": -2}}, "faults[0].schedule.first"),
    ],
)
def test_bad_fault_is_a_400_naming_the_field(live, body, field):
    _, url = live
    r = httpx.post(url + "/faults", json=body)
    assert r.status_code == 400
    assert r.json()["field"] == field and r.json()["status"] == 400


def test_unknown_fault_name_is_404_and_lanes_are_listed(live):
    _, url = live
    assert httpx.delete(url + "/faults/ghost").status_code == 404
    lanes = httpx.get(url + "/lanes").json()
    assert [(x["name"], x["dialect"], x["listening"]) for x in lanes] == [
        ("a", "openai", True),
        ("b", "anthropic", True),
    ]
    bad = httpx.post(url + "/faults", content=b"not json", headers={"content-type": "application/json"})
    assert bad.status_code == 400


def test_an_agent_in_another_process_reports_its_calls(live):
    bg, url = live
    r = httpx.post(url + "/calls", json={"id": "c1", "outcome": "ok", "text": "hello", "lane": "a", "duration": 0.02})
    assert r.status_code == 201
    assert httpx.post(url + "/calls", json={"outcome": "maybe"}).json()["field"] == "outcome"
    (call,) = bg.journal.calls()
    assert (call.id, call.text, call.lane) == ("c1", "hello", "a")
    assert call.t_end - call.t_start == pytest.approx(0.02, abs=0.005)
