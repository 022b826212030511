"""The lane proxy as a client sees it: bad requests, disconnects, keep-alive, capacity."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import httpx
import pytest

from harness.journal import Journal
from harness.profile import LaneSpec, Profile
from harness.proxy import HttpUpstream, Lane, SimulatorUpstream
from harness.simulator import SimSettings, Simulator

SLOW = SimSettings(tokens_per_second=50.0, ttft=0.0, answer_tokens=200)


def test_malformed_json_gets_the_dialects_400_and_is_journaled(start_lanes):
    bg = start_lanes(oa="openai", an="anthropic")
    r = httpx.post(
        bg.urls["oa"] + "/v1/chat/completions", content=b"{not json", headers={"authorization": "Bearer sk-x"}
    )
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"
    r = httpx.post(bg.urls["an"] + "/v1/messages", json={"model": "c", "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 400
    assert r.json()["type"] == "error" and "max_tokens" in r.json()["error"]["message"]
    r = httpx.post(bg.urls["oa"] + "/v1/nothing-here", json={})
    assert r.status_code == 404
    assert bg.journal.wait_for(3)
    reasons = [a.end_reason for a in bg.journal.attempts()]
    assert reasons == ["bad_request"] * 3
    assert all(a.headers.get("authorization") in (None, "[redacted]") for a in bg.journal.attempts())


def test_keep_alive_connection_is_reused(start_lanes):
    bg = start_lanes(oa="openai")
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client() as c:
        for _ in range(3):
            assert c.post(bg.urls["oa"] + "/v1/chat/completions", json=body).status_code == 200
    assert bg.journal.wait_for(3)
    # one TCP connection served all three requests: the journal sees three attempts, not three hosts
    assert len(bg.journal.attempts()) == 3


def _leftovers(lane: Lane) -> tuple[int, int]:
    server = lane._server
    return len(lane._tasks), len(server.connections) if server else 0


async def _read_some_then_drop(url: str, path: str, body: dict) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", int(url.rsplit(":", 1)[1]))
    payload = json.dumps(body).encode()
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n".encode()
        + f"Content-Length: {len(payload)}\r\n\r\n".encode()
        + payload
    )
    await writer.drain()
    got = b""
    while got.count(b"data:") < 3:  # headers and a few events, then vanish
        got += await asyncio.wait_for(reader.read(4096), 5)
    writer.transport.abort()


async def _wait_until(cond, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        await asyncio.sleep(0.01)
    return cond()


async def test_client_disconnect_mid_stream_leaves_nothing_behind():
    """The client vanishes mid-stream: the attempt is journaled as client_gone, the simulator's
    slot is released, the forwarding lane's upstream request is cancelled, and no handler task
    or server connection is left on either lane."""
    journal = Journal()
    sim = Simulator(SimSettings(tokens_per_second=50.0, ttft=0.0, answer_tokens=200, slots=1, queue=0))
    origin = Lane("origin", "openai", SimulatorUpstream(sim), journal)
    await origin.start()
    front = Lane("front", "openai", HttpUpstream(origin.url), journal)
    await front.start()
    try:
        body = {"model": "m", "messages": [{"role": "user", "content": "long answer"}], "stream": True}
        await _read_some_then_drop(front.url, "/v1/chat/completions", body)
        assert await _wait_until(lambda: len(journal) == 2), journal.attempts()
        by_lane = {a.lane: a for a in journal.attempts()}
        assert by_lane["front"].end_reason == "client_gone"
        assert by_lane["front"].outcome == "unknown"
        assert by_lane["origin"].end_reason == "client_gone"  # the front lane hung up on it
        assert by_lane["origin"].tokens < 200
        assert await _wait_until(lambda: _leftovers(front) == (0, 0) and _leftovers(origin) == (0, 0))
        assert sim.capacity.active == 0
        # the single slot is free again: a new call is served, not refused
        async with httpx.AsyncClient() as c:
            r = await c.post(
                front.url + "/v1/chat/completions", json={**body, "stream": False, "max_tokens": 2}, timeout=10
            )
        assert r.status_code == 200
    finally:
        await front.stop()
        await origin.stop()
    assert _leftovers(front) == (0, 0) and _leftovers(origin) == (0, 0)


async def test_capacity_queue_then_provider_capacity_error():
    """Two slots and one queue place: the fourth concurrent call gets the capacity error."""
    journal = Journal()
    settings = SimSettings(tokens_per_second=1000.0, ttft=0.2, answer_tokens=5, slots=2, queue=1)
    lane = Lane("cap", "anthropic", SimulatorUpstream(Simulator(settings)), journal)
    await lane.start()
    try:
        body = {"model": "c", "max_tokens": 50, "messages": [{"role": "user", "content": "q"}]}
        async with httpx.AsyncClient() as c:
            rs = await asyncio.gather(*(c.post(lane.url + "/v1/messages", json=body, timeout=10) for _ in range(4)))
        statuses = sorted(r.status_code for r in rs)
        assert statuses == [200, 200, 200, 529]
        err = next(r for r in rs if r.status_code == 529).json()
        assert err["error"]["type"] == "overloaded_error"
    finally:
        await lane.stop()


def test_upstream_unreachable_is_a_502_from_the_lane(start_lanes):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    bg = start_lanes(Profile("p", {"x": LaneSpec("x", "openai", upstream=f"http://127.0.0.1:{dead_port}")}))
    r = httpx.post(
        bg.urls["x"] + "/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "q"}]}
    )
    assert r.status_code == 502
    assert bg.journal.wait_for(1)
    assert bg.journal.attempts()[0].end_reason == "upstream_error"


@pytest.mark.parametrize("dialect", ["openai-chat", "openai-responses", "anthropic", "gemini"])
def test_stream_is_never_buffered(start_lanes, dialect):
    """The first content event reaches the client long before the answer is complete."""
    from harness.clientkit import stream

    profile = Profile(
        "p",
        {
            "x": LaneSpec(
                "x",
                dialect,
                simulator=SimSettings(tokens_per_second=40, ttft=0.0, answer_tokens=20, max_events_per_second=0),
            )
        },
    )
    origin = start_lanes(profile)
    front = start_lanes(Profile("f", {"y": LaneSpec("y", dialect, upstream=origin.urls["x"])}))
    t0 = time.monotonic()
    first = None
    for kind, _ in stream(front.urls["y"], dialect, "pace me"):
        if kind == "content" and first is None:
            first = time.monotonic() - t0
    total = time.monotonic() - t0
    assert first is not None and total >= 0.4  # 20 tokens at 40/s
    assert first < total / 2
