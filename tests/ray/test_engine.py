"""The Ray engine on this machine: a local Ray (2 CPUs) started once for the module.

A lane with 2 replicas and 2 agent actors makes the decisions of a single-process drill with the
same attempt order; the merged journal holds every attempt (counted by the clients, by each
replica and by the coordinator); a replica killed mid-drill is reported and what it had open is
journaled as unknown. Skipped where the ``ray`` extra is not installed.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

ray = pytest.importorskip("ray")

from harness.drill import Drill  # noqa: E402
from harness.profile import profile_from_dict  # noqa: E402
from harness.ray.agents import LightAgent  # noqa: E402
from harness.ray.engine import RayDrill  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, logging_level="warning")
    yield
    ray.shutdown()


def _profile(tps: float = 4000, tokens: int = 8, faults: list[dict[str, Any]] | None = None) -> Any:
    sim = {"tokens_per_second": tps, "ttft": 0.002, "answer_tokens": tokens}
    lanes = {"primary": {"dialect": "openai-chat", "replicas": 2, "simulator": sim}}
    return profile_from_dict({"name": "ray-drill", "seed": 5, "lanes": lanes, "faults": faults or []})


#: 6 a minute, shared: at most 6 admissions in the drill's few seconds (refill: 0.1 a second)
FAULTS = [
    {"fault": "rate_limiter", "lane": "primary", "requests_per_minute": 6, "shared": "org"},
    {"fault": "http_error", "lane": "primary", "status": 503, "schedule": {"nth": [3, 8]}},
    {"fault": "http_error", "lane": "primary", "status": 500, "schedule": {"probability": 0.2}},
]
PROMPTS = [f"question {i}" for i in range(14)]


def _request(prompt: str) -> dict[str, Any]:
    return {"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": prompt}]}


def test_replicated_drill_decides_as_one_process_and_journals_every_attempt(tmp_path: Path) -> None:
    agent = functools.partial(LightAgent, attempts=3, max_wait=0.02)
    with RayDrill(_profile(faults=FAULTS), journal_path=tmp_path / "journal.jsonl") as drill:
        with httpx.Client(timeout=10) as http:  # two attempts through the spreading front as well
            for k in range(2):
                r = http.post(
                    drill.url("primary") + "/v1/chat/completions",
                    json=_request("front"),
                    headers={"x-routechaos-call-id": f"front-{k}"},
                )
                assert r.status_code in (200, 429, 500, 503)
        ran = drill.run_agents(agent, PROMPTS, actors=2, concurrency=3)
    assert ran["dead"] == {}
    journal = drill.journal
    attempts = {a.id: a for a in journal.attempts()}

    # every attempt, counted on every side: clients, replicas, coordinator, merged journal
    sent = sum(r["attempts_sent"] for r in drill._agent_results.values()) + 2
    per_replica = drill.merge_counts["attempts"]
    assert sent == len(attempts) == len(drill.decisions) == per_replica["primary.0"] + per_replica["primary.1"]
    assert per_replica["primary.0"] > 0 and per_replica["primary.1"] > 0  # both replicas served
    assert len({c.id for c in journal.calls()}) == len(PROMPTS)
    assert {m.kind for m in journal.marks()} >= {"drill_start", "journal_merge", "drill_stop"}
    merge = journal.marks("journal_merge")[0].detail
    for name, err in merge["monotonic_error"].items():  # one machine: alignment within its round trip
        assert abs(err) <= merge["uncertainty"][name] + 0.005, (name, err, merge)

    # the same attempts, in the coordinator's order, through one single-process lane
    prompts = {f"call-{i:05d}": p for i, p in enumerate(PROMPTS)} | {"front-0": "front", "front-1": "front"}
    order = [attempts[aid] for _, aid, _, _, _ in sorted(drill.decisions)]
    single = Drill(_profile(faults=FAULTS))
    with single, httpx.Client(timeout=10) as http:
        for a in order:
            assert a.call_id is not None
            r = http.post(
                single.url("primary") + "/v1/chat/completions",
                json=_request(prompts[a.call_id]),
                headers={"x-routechaos-call-id": a.call_id},
            )
            r.read()
        single.settle()
    ray_seen = [(a.status, a.fault_name) for a in order]
    one_seen = [(a.status, a.fault_name) for a in single.journal.attempts()]
    assert ray_seen == one_seen
    statuses = [s for s, _ in ray_seen]
    # the profile really decided: admissions capped at 6 for both replicas together, nth and draws applied
    assert statuses.count(200) <= 6 and statuses.count(429) >= 1 and statuses.count(503) >= 1 and 500 in statuses


def test_replica_killed_mid_drill_is_reported_and_its_open_attempts_are_unknown(tmp_path: Path) -> None:
    agent = functools.partial(LightAgent, attempts=4, backoff=0.02)
    killed: list[str] = []

    def kill_once(drill: RayDrill) -> None:  # mid-drill: while it serves streams
        if not killed and drill.open_attempts("primary", 1) >= 2:
            killed.append(drill.kill_replica("primary", 1))
        elif len(killed) == 1 and drill.agent_progress(1) >= 8:  # then an agent actor, its shard half done
            killed.append(drill.kill_agent(1))

    with RayDrill(_profile(tps=60, tokens=20), journal_path=tmp_path / "journal.jsonl") as drill:
        ran = drill.run_agents(agent, [f"p{i}" for i in range(48)], actors=2, concurrency=6, on_progress=kill_once)
    assert killed == ["primary.1", "agents.1"]
    assert set(ran["dead"]) == {"primary.1", "agents.1"}
    died = {m.detail["actor"]: m.detail for m in drill.journal.marks("actor_died")}
    assert set(died) == {"primary.1", "agents.1"}
    assert died["primary.1"]["journal_recovered"] is True  # its journal file, on this machine
    assert died["agents.1"]["journal_recovered"] is True
    # every call given to the agents is in the journal: finished, or unknown for the dead actor's
    calls = drill.journal.calls()
    assert sorted(c.id for c in calls) == [f"call-{i:05d}" for i in range(48)]
    lost_calls = [c for c in calls if c.error == "agent actor agents.1 died"]
    assert len(lost_calls) == died["agents.1"]["journaled_unknown"] >= 1
    assert all(c.outcome == "unknown" for c in lost_calls)
    unknown = [a for a in drill.journal.attempts() if a.error and "primary.1 died" in a.error.get("message", "")]
    assert len(unknown) == died["primary.1"]["journaled_unknown"] >= 1  # streams were in flight when it died
    assert all(a.outcome == "unknown" for a in unknown)
    # nothing lost: every attempt the coordinator saw begin is in the merged journal
    assert len(drill.journal.attempts()) == len(drill.decisions)
    assert any("primary.1" in line for line in drill.died_summary())
    # the agent actor that lived (its shard: the even calls) carried on through the other replica
    assert [c.outcome for c in calls if int(c.id[-5:]) % 2 == 0] == ["ok"] * 24
