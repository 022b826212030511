"""Exact shared state without Ray: replicas of a lane that ask one coordinator make the decisions
of a one-process lane, attempt for attempt (real sockets, real SDK-shaped requests).

The coordinator and the replica hook are plain asyncio, so this runs on every install; the Ray
actors only carry the same calls across processes (tests/ray/test_engine.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from harness.journal import Journal
from harness.lanes import LaneSet
from harness.profile import profile_from_dict
from harness.ray.coordinator import Coordinator
from harness.ray.hook import CoordinatedHook, LocalClient

SIM = {"tokens_per_second": 4000, "ttft": 0.002, "answer_tokens": 6}


def _profile(faults: list[dict[str, Any]]) -> Any:
    lanes = {"primary": {"dialect": "openai-chat", "simulator": SIM}}
    return profile_from_dict({"name": "coord", "seed": 7, "lanes": lanes, "faults": faults})


FAULTS = [
    {"fault": "rate_limiter", "lane": "primary", "requests_per_minute": 6, "shared": "org"},
    {"fault": "http_error", "lane": "primary", "status": 503, "schedule": {"nth": [2, 5]}},
    {"fault": "http_error", "lane": "primary", "status": 500, "schedule": {"probability": 0.3}},
    {"fault": "overloaded", "lane": "primary", "schedule": {"per_call": 1, "calls": 0.5}},
    {"fault": "http_error", "lane": "primary", "status": 502, "schedule": {"sequence": ["ok", "ok", "ok", "fail"]}},
    {"fault": "http_error", "lane": "primary", "status": 504, "schedule": {"after": 20, "first": 22}},
]


def _body(i: int) -> dict[str, Any]:
    return {"model": "gpt-4o", "stream": i % 2 == 0, "messages": [{"role": "user", "content": f"q{i % 5}"}]}


def _seen(r: httpx.Response) -> tuple[Any, ...]:
    return (r.status_code, r.headers.get("x-ratelimit-remaining-requests"), "retry-after" in r.headers)


async def _run(lanesets: list[LaneSet], order: list[int], n: int) -> tuple[list[tuple[Any, ...]], list[Journal]]:
    for ls in lanesets:
        await ls.start()
    try:
        out = []
        async with httpx.AsyncClient(timeout=10) as http:
            for i in range(n):
                ls = lanesets[order[i] % len(lanesets)]
                r = await http.post(
                    ls.urls["primary"] + "/v1/chat/completions",
                    json=_body(i),
                    headers={"x-routechaos-call-id": f"c{i // 2}"},
                )
                await r.aread()
                out.append(_seen(r))
    finally:
        for ls in lanesets:
            await ls.stop()
    return out, [ls.journal for ls in lanesets]


def _faults(journals: list[Journal]) -> list[str | None]:
    attempts = sorted((a for j in journals for a in j.attempts()), key=lambda a: a.wall_start)
    return [a.fault_name for a in attempts]


async def test_two_replicas_decide_as_one_lane() -> None:
    n = 24
    order = [0, 1, 1, 0, 1, 0, 0, 1] * 3
    single, single_j = await _run([LaneSet(_profile(FAULTS), Journal())], [0] * n, n)

    coord = Coordinator(_profile(FAULTS))
    coord.start()
    replicas = []
    for r in range(2):
        j = Journal()
        profile = _profile(FAULTS)
        replicas.append(LaneSet(profile, j, faults=CoordinatedHook(profile, j, LocalClient(coord), f"primary.{r}")))
    spread, spread_j = await _run(replicas, order, n)
    await coord.stop()

    assert spread == single
    assert _faults(spread_j) == _faults(single_j)
    assert [len(j.attempts()) for j in spread_j] == [order.count(0), order.count(1)]
    statuses = [s for s, *_ in single]
    assert statuses.count(429) >= 1 and statuses.count(503) >= 1  # the profile really decided something
    # the coordinator saw the attempts in the order they were sent, each from its replica
    assert [replica for _, _, replica, _, _ in coord.decisions()] == [f"primary.{order[i] % 2}" for i in range(n)]
    assert not coord._held  # every admitted attempt handed its ticket back


async def test_concurrency_cap_queue_spans_replicas() -> None:
    faults = [{"fault": "concurrency_cap", "lane": "primary", "slots": 1, "queue": 1}]
    slow = {**SIM, "tokens_per_second": 40, "answer_tokens": 8}
    data = {"name": "cap", "lanes": {"primary": {"dialect": "openai-chat", "simulator": slow}}, "faults": faults}
    coord = Coordinator(profile_from_dict(data))
    coord.start()
    replicas = []
    for r in range(2):
        j = Journal()
        p = profile_from_dict(data)
        replicas.append(LaneSet(p, j, faults=CoordinatedHook(p, j, LocalClient(coord), f"primary.{r}")))
    for ls in replicas:
        await ls.start()
    try:
        async with httpx.AsyncClient(timeout=10) as http:

            async def one(i: int) -> int:
                await asyncio.sleep(0.03 * i)  # arrival order 0, 1, 2
                url = replicas[i % 2].urls["primary"] + "/v1/chat/completions"
                r = await http.post(url, json=_body(1))
                return r.status_code

            statuses = await asyncio.gather(*(one(i) for i in range(3)))
    finally:
        for ls in replicas:
            await ls.stop()
        await coord.stop()
    # one slot across both replicas: the first holds it, the second waits for it, the third overflows
    assert statuses == [200, 200, 429]
    attempts = sorted((a for ls in replicas for a in ls.journal.attempts()), key=lambda a: a.wall_start)
    assert [a.fault and ("queued" if a.fault.get("queued") else "overflow") for a in attempts] == [
        None,
        "queued",
        "overflow",
    ]
    assert not coord._held  # every slot and queue place was handed back


class _Gone:
    """A coordinator that cannot be reached."""

    async def decide(self, ask: Any) -> Any:
        raise ConnectionError("coordinator actor died")


async def test_an_unreachable_coordinator_is_a_server_error_with_the_reason_journaled() -> None:
    j = Journal()
    profile = _profile(FAULTS)
    lanes = LaneSet(profile, j, faults=CoordinatedHook(profile, j, _Gone(), "primary.0"))  # type: ignore[arg-type]
    await lanes.start()
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            r = await http.post(lanes.urls["primary"] + "/v1/chat/completions", json=_body(1))
    finally:
        await lanes.stop()
    assert r.status_code == 500
    (a,) = j.attempts()
    assert "fault coordinator unreachable" in a.error["message"]
