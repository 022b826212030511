"""reset, close_before_headers, blackhole and refuse through real lanes and real clients.

The client must see its transport failure (``APIConnectionError``, ``APITimeoutError``, httpx's
transport errors for Gemini), never a status code, after the SDK's own retries; the journal must
show one attempt per try for the per-attempt faults, and none (only ``lane_down`` / ``lane_up``
marks) for a lane that refuses connections. Lower bounds on elapsed time only, plus loose upper
bounds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anthropic
import httpx
import openai
import pytest

from harness.clientkit import build_request
from harness.lanes import BackgroundLanes
from harness.profile import profile_from_dict

FAST_SIM = {"tokens_per_second": 2000.0, "ttft": 0.005, "answer_tokens": 24}
SDK_KINDS = ["chat", "responses", "anthropic"]
LANE_DIALECT = {"chat": "openai", "responses": "openai", "anthropic": "anthropic", "gemini": "gemini"}
CONNECTION_ERROR = {
    "chat": openai.APIConnectionError,
    "responses": openai.APIConnectionError,
    "anthropic": anthropic.APIConnectionError,
}
TIMEOUT_ERROR = {
    "chat": openai.APITimeoutError,
    "responses": openai.APITimeoutError,
    "anthropic": anthropic.APITimeoutError,
}

Starter = Callable[..., BackgroundLanes]


def drill(
    start: Starter,
    faults: list[dict[str, Any]],
    *,
    time_scale: float = 1.0,
    sim: dict[str, Any] | None = None,
    **lanes: str,
) -> BackgroundLanes:
    lanes = lanes or {"lane": "openai"}
    return start(
        profile_from_dict(
            {
                "time_scale": time_scale,
                "lanes": {n: {"dialect": d, "simulator": sim or FAST_SIM} for n, d in lanes.items()},
                "faults": faults,
            }
        )
    )


def send(kind: str, url: str, *, max_retries: int = 0, timeout: float = 10.0) -> httpx.Response:
    """One non-streamed call with the real client (Gemini: plain httpx)."""
    if kind in ("chat", "responses"):
        oc = openai.OpenAI(base_url=url + "/v1", api_key="sk-test", max_retries=max_retries, timeout=timeout)
        if kind == "chat":
            raw = oc.chat.completions.with_raw_response.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
            )
        else:
            raw = oc.responses.with_raw_response.create(model="gpt-4o-mini", input="hi")
        return raw.http_response  # type: ignore[return-value]
    if kind == "anthropic":
        ac = anthropic.Anthropic(base_url=url, api_key="sk-ant-test", max_retries=max_retries, timeout=timeout)
        raw = ac.messages.with_raw_response.create(
            model="claude-opus-4-6", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        )
        return raw.http_response  # type: ignore[return-value]
    path, body = build_request("gemini", "hi", stream=False)
    return httpx.post(url + path, json=body, timeout=timeout)


def settle(bg: BackgroundLanes, n: int, *, extra_wait: float = 0.1) -> list[Any]:
    """Exactly the attempts recorded once ``n`` are in (and a moment more, to catch extras)."""
    assert bg.journal.wait_for(n, timeout=5.0), bg.journal.attempts()
    time.sleep(extra_wait)
    return bg.journal.attempts()


def wait_until(pred: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.01)
    return pred()


# -- reset / close_before_headers ---------------------------------------------------------------


@pytest.mark.parametrize(("kind", "retries"), [("chat", 2), ("anthropic", 2), ("responses", 1)])
def test_reset_is_a_connection_error_after_the_sdks_retries(start_lanes: Starter, kind: str, retries: int) -> None:
    bg = drill(start_lanes, [{"fault": "reset"}], lane=LANE_DIALECT[kind])
    with pytest.raises(CONNECTION_ERROR[kind]) as exc:
        send(kind, bg.urls["lane"], max_retries=retries)
    assert not isinstance(exc.value, TIMEOUT_ERROR[kind])
    attempts = settle(bg, retries + 1)
    assert len(attempts) == retries + 1
    assert [a.retry_count for a in attempts] == list(range(retries + 1))
    assert all(a.end_reason == "reset" and a.status is None for a in attempts)
    assert all(a.fault is not None and a.fault["name"] == "reset" for a in attempts)
    assert all(a.outcome == "unknown" for a in attempts)  # the request may have been processed


def test_reset_gemini_over_httpx(start_lanes: Starter) -> None:
    bg = drill(start_lanes, [{"fault": "reset"}], lane="gemini")
    with pytest.raises(httpx.TransportError):
        send("gemini", bg.urls["lane"])
    (a,) = settle(bg, 1)
    assert a.end_reason == "reset" and a.dialect == "gemini"


def test_reset_after_a_delay(start_lanes: Starter) -> None:
    bg = drill(start_lanes, [{"fault": "reset", "delay": 3.0}], time_scale=0.1)  # 0.3 s real
    t0 = time.monotonic()
    with pytest.raises(openai.APIConnectionError):
        send("chat", bg.urls["lane"])
    assert 0.29 <= time.monotonic() - t0 < 10


def test_reset_after_upstream_duplicates_the_work(start_lanes: Starter) -> None:
    """F33: the upstream produced (and would bill) the whole answer, the client never saw it,
    and its retry makes the upstream do it again."""
    slow = {"tokens_per_second": 100.0, "ttft": 0.005, "answer_tokens": 24}  # 0.24 s a non-streamed answer
    bg = drill(start_lanes, [{"fault": "reset", "after_upstream": True, "schedule": {"first": 1}}], sim=slow)
    r = send("chat", bg.urls["lane"], max_retries=2)
    assert r.status_code == 200
    first, retry = settle(bg, 2)
    assert first.end_reason == "reset" and first.fault is not None and first.fault["after_upstream"] is True
    assert first.usage == {"input_tokens": 1, "output_tokens": 24}  # the work was done
    assert first.t_end is not None and first.t_end - first.t_start >= 0.2
    assert retry.status == 200 and retry.retry_count == 1 and retry.fingerprint == first.fingerprint


def test_reset_after_upstream_drains_a_stream_first(start_lanes: Starter) -> None:
    """F33 on a stream: the whole answer is generated upstream before the reset; the SDK's
    retry (the stream had not started) gets it again, and the journal shows the lost work."""
    slow = {"tokens_per_second": 100.0, "ttft": 0.005, "answer_tokens": 24}
    bg = drill(start_lanes, [{"fault": "reset", "after_upstream": True, "schedule": {"first": 1}}], sim=slow)
    client = openai.OpenAI(base_url=bg.urls["lane"] + "/v1", api_key="k", max_retries=2)
    chunks = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "q"}], stream=True, stream_options={"include_usage": True}
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    first, retry = settle(bg, 2)
    assert first.end_reason == "reset" and first.tokens == 0
    assert first.usage is not None and first.usage["output_tokens"] == 24  # generated, then lost
    assert first.t_end - first.t_start >= 0.2
    assert retry.status == 200 and retry.retry_count == 1 and retry.end_reason == "complete"


@pytest.mark.parametrize(("kind", "retries"), [("chat", 2), ("anthropic", 0)])
def test_close_before_headers_is_a_connection_error(start_lanes: Starter, kind: str, retries: int) -> None:
    bg = drill(start_lanes, [{"fault": "close_before_headers"}], lane=LANE_DIALECT[kind])
    with pytest.raises(CONNECTION_ERROR[kind]):
        send(kind, bg.urls["lane"], max_retries=retries)
    attempts = settle(bg, retries + 1)
    assert [a.retry_count for a in attempts] == list(range(retries + 1))
    assert all(a.end_reason == "cut" and a.fault and a.fault["name"] == "close_before_headers" for a in attempts)


def test_close_before_headers_gemini(start_lanes: Starter) -> None:
    bg = drill(start_lanes, [{"fault": "close_before_headers"}], lane="gemini")
    with pytest.raises(httpx.RemoteProtocolError):
        send("gemini", bg.urls["lane"])


# -- blackhole ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", SDK_KINDS)
def test_blackhole_is_a_timeout_at_the_clients_deadline(start_lanes: Starter, kind: str) -> None:
    bg = drill(start_lanes, [{"fault": "blackhole"}], lane=LANE_DIALECT[kind])
    t0 = time.monotonic()
    with pytest.raises(TIMEOUT_ERROR[kind]):
        send(kind, bg.urls["lane"], max_retries=0, timeout=0.3)
    assert 0.29 <= time.monotonic() - t0 < 10
    (a,) = settle(bg, 1)  # ends when the client gives up and closes
    assert a.end_reason == "blackhole" and a.status is None and a.t_headers is None
    assert a.fault is not None and a.fault["name"] == "blackhole"
    assert a.t_end is not None and a.t_end - a.t_start >= 0.25


def test_blackhole_retried_once(start_lanes: Starter) -> None:
    bg = drill(start_lanes, [{"fault": "blackhole"}])
    t0 = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        send("chat", bg.urls["lane"], max_retries=1, timeout=0.3)
    # two 0.3 s timeouts and one backoff of at least 0.375 s
    assert 0.95 <= time.monotonic() - t0 < 15
    attempts = settle(bg, 2)
    assert [a.retry_count for a in attempts] == [0, 1]
    assert all(a.end_reason == "blackhole" for a in attempts)


def test_blackhole_gemini(start_lanes: Starter) -> None:
    bg = drill(start_lanes, [{"fault": "blackhole"}], lane="gemini")
    with pytest.raises(httpx.ReadTimeout):
        send("gemini", bg.urls["lane"], timeout=0.3)
    (a,) = settle(bg, 1)
    assert a.end_reason == "blackhole"


def test_blackhole_only_when_scheduled(start_lanes: Starter) -> None:
    bg = drill(start_lanes, [{"fault": "blackhole", "schedule": {"first": 1}}])
    r = send("chat", bg.urls["lane"], max_retries=1, timeout=0.3)  # the retry is answered
    assert r.status_code == 200
    assert [a.end_reason for a in settle(bg, 2)] == ["blackhole", "complete"]


# -- refuse ---------------------------------------------------------------------------------------


def test_refuse_window_every_dialect_then_the_lane_comes_back(start_lanes: Starter) -> None:
    # down from drill start for 20 profile seconds = 10 real seconds: the five refused calls
    # below (about 1.5 s of it the SDK's backoff) must all be made inside the window, and a
    # loaded machine took more than the 4 s a shorter window left them
    bg = drill(
        start_lanes,
        [{"fault": "refuse", "lane": "*", "schedule": {"window": [0, 20]}}],
        time_scale=0.5,
        oa="openai",
        an="anthropic",
        ge="gemini",
    )
    assert wait_until(lambda: len(bg.journal.marks("lane_down")) == 3)
    t0 = time.monotonic()
    with pytest.raises(openai.APIConnectionError) as exc:
        send("chat", bg.urls["oa"], max_retries=2)
    # refused at once, three times, with backoff waits of at least 0.375 s and 0.75 s between
    assert 1.1 <= time.monotonic() - t0 < 10
    assert not isinstance(exc.value, openai.APITimeoutError)
    with pytest.raises(openai.APIConnectionError):
        send("responses", bg.urls["oa"])
    with pytest.raises(anthropic.APIConnectionError):
        send("anthropic", bg.urls["an"])
    with pytest.raises(httpx.ConnectError):
        send("gemini", bg.urls["ge"])
    refused_until = bg.journal.now()
    assert len(bg.journal) == 0  # refused connections never reached a lane: no attempts
    downs = bg.journal.marks("lane_down")
    assert {m.lane for m in downs} == {"oa", "an", "ge"}
    assert all(m.detail["fault"] == "refuse@*" for m in downs)

    assert wait_until(lambda: len(bg.journal.marks("lane_up")) == 3, timeout=20), bg.journal.marks()
    ups = bg.journal.marks("lane_up")
    assert all(m.t >= 9.9 for m in ups) and refused_until < 10.0
    for kind, lane in (("chat", "oa"), ("responses", "oa"), ("anthropic", "an"), ("gemini", "ge")):
        assert send(kind, bg.urls[lane]).status_code == 200
    assert [a.status for a in settle(bg, 4)] == [200] * 4


def test_refuse_always_and_other_lanes_unaffected(start_lanes: Starter) -> None:
    bg = drill(start_lanes, [{"fault": "refuse", "lane": "down"}], down="openai", up="openai")
    assert wait_until(lambda: bool(bg.journal.marks("lane_down")))
    with pytest.raises(openai.APIConnectionError):
        send("chat", bg.urls["down"])
    assert send("chat", bg.urls["up"]).status_code == 200
    assert [a.lane for a in settle(bg, 1)] == ["up"]


def test_refuse_with_drop_connections_resets_open_streams(start_lanes: Starter) -> None:
    """A crash: the lane stops listening and every open connection is reset."""
    # a 20 s stream, and a crash 3 s into the drill: the stream has certainly begun by then
    # (a loaded machine took more than the 0.4 s a shorter wait left it) and is far from done
    slow = {"tokens_per_second": 2.0, "ttft": 0.005, "answer_tokens": 40}
    bg = drill(
        start_lanes, [{"fault": "refuse", "drop_connections": True, "schedule": {"window": [3.0, 3.5]}}], sim=slow
    )
    path, body = build_request("openai", "crash", stream=True)
    received = 0
    with pytest.raises(httpx.TransportError), httpx.stream("POST", bg.urls["lane"] + path, json=body, timeout=30) as r:
        assert r.status_code == 200
        for chunk in r.iter_bytes():
            received += len(chunk)
    assert received > 0  # it was streaming when the lane crashed
    (a,) = settle(bg, 1)
    assert a.end_reason in ("reset", "client_gone") and a.status == 200
    assert bg.journal.marks("lane_down")[0].detail["drop_connections"] is True
    assert wait_until(lambda: bool(bg.journal.marks("lane_up")))
    with httpx.stream("POST", bg.urls["lane"] + path, json=body, timeout=5) as r:
        assert r.status_code == 200  # back up (headers are enough: the slow answer takes 20 s)


def test_lane_flap_is_refuse_with_a_flapping_schedule(start_lanes: Starter) -> None:
    # every 1 s down for 0.4 s, at time_scale 0.5: a 0.5 s period, 0.2 s down
    bg = drill(start_lanes, [{"fault": "refuse", "schedule": {"every": 1, "for": 0.4}}], time_scale=0.5)
    assert wait_until(lambda: len(bg.journal.marks("lane_up")) >= 2, timeout=10)
    marks = [m for m in bg.journal.marks() if m.kind in ("lane_down", "lane_up")]
    kinds = [m.kind for m in marks][:4]
    assert kinds == ["lane_down", "lane_up", "lane_down", "lane_up"]
    # marks are written when the lane actually went down / came back: never before the schedule
    ups = [m.t for m in marks if m.kind == "lane_up"]
    assert ups[0] >= 0.19 and ups[1] >= 0.69, marks
    # the lane answers while it is up: retry through the short outages
    assert send("chat", bg.urls["lane"], max_retries=3).status_code == 200
