"""A request's cost on the lane does not grow with the drill or the conversation, counted in work.

Time is not measured (a loaded machine would make that flaky): the tests count the Python
function calls the lane makes to serve one request (``sys.setprofile``) and the bytes it hashes
to fingerprint it. Serving the same small request costs the same calls after 5 and after 300
earlier requests, on a lane with a fault plan (whose per-call counters grow with the drill), and
recognising the 50th request of a growing conversation hashes bytes in proportion to its body.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
from typing import Any

from harness import canonical
from harness.journal import Journal
from harness.profile import profile_from_dict
from harness.proxy import Lane, SimulatorUpstream
from harness.simulator import SimSettings, Simulator

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Tell me about the lane."}]}


async def _post(port: int, body: dict[str, Any]) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    data = json.dumps(body).encode()
    writer.write(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: lane\r\nContent-Type: application/json\r\n"
        + f"Connection: close\r\nContent-Length: {len(data)}\r\n\r\n".encode()
        + data
    )
    out = b""
    while chunk := await reader.read(65536):
        out += chunk
    writer.close()
    return out


def _lane(journal: Journal) -> Lane:
    from harness.faults.plan import FaultPlan

    profile = profile_from_dict(
        {
            "lanes": {"lane": {"dialect": "openai-chat"}},
            "faults": [
                {"fault": "rate_limit", "lane": "lane", "schedule": {"nth": [1000000]}},
                {"fault": "stream_cut", "lane": "lane", "schedule": {"probability": 0.5}},
            ],
        }
    )
    sim = Simulator(SimSettings(tokens_per_second=1e9, ttft=0.0, answer_tokens=8))
    return Lane("lane", "openai-chat", SimulatorUpstream(sim), journal, faults=FaultPlan(profile, journal))


async def _calls_for_one_request(port: int, body: dict[str, Any]) -> int:
    """Python function calls made (lane and client, one event loop) while one request is served."""
    count = 0

    def prof(frame: Any, event: str, arg: Any) -> None:
        nonlocal count
        if event == "call":
            count += 1

    sys.setprofile(prof)
    try:
        await _post(port, body)
        await asyncio.sleep(0)
    finally:
        sys.setprofile(None)
    return count


async def test_the_same_request_costs_the_same_work_after_300_earlier_ones() -> None:
    journal = Journal()
    lane = _lane(journal)
    await lane.start()
    try:
        for i in range(5):  # warm-up: imports, caches, the first connection
            await _post(lane.port, {**BODY, "messages": [{"role": "user", "content": f"warm {i}"}]})
        early = min([await _calls_for_one_request(lane.port, BODY) for _ in range(3)])
        for i in range(300):  # a drill going on: other conversations, each with its own counters
            await _post(lane.port, {**BODY, "messages": [{"role": "user", "content": f"other {i}"}]})
        late = min([await _calls_for_one_request(lane.port, BODY) for _ in range(3)])
    finally:
        await lane.stop()
    assert len(journal.attempts()) >= 311
    # a few calls of slack for the event loop's own bookkeeping; growth per earlier request would be 100s
    assert late <= early * 1.05 + 20, (early, late)


def test_recognising_a_request_hashes_bytes_in_proportion_to_its_body(monkeypatch) -> None:
    """The 50th step of a growing conversation: fingerprinting it and its parent (in an agent
    loop) hashes its body's bytes once, in one hash per tool call and one more."""
    from harness.dialects import dialects_for

    hashed: list[int] = []  # one entry per hash, the bytes it was fed (its updates included)
    real = hashlib.sha256

    class Counting:
        def __init__(self, h: Any, i: int) -> None:
            self.h, self.i = h, i

        def update(self, data: bytes) -> None:
            hashed[self.i] += len(data)
            self.h.update(data)

        def copy(self) -> Any:
            return self.h.copy()  # what a copy is fed is not more of the body

        def hexdigest(self) -> str:
            return self.h.hexdigest()

    def counting(data: bytes = b"") -> Any:
        hashed.append(len(data))
        return Counting(real(data), len(hashed) - 1)

    monkeypatch.setattr(canonical.hashlib, "sha256", counting)
    dialect = dialects_for("openai-chat")[0]
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Fix the failing test."}]
    per_step = []
    for step in range(50):
        call = {"id": f"call_{step}", "type": "function", "function": {"name": "run", "arguments": f'{{"n": {step}}}'}}
        messages += [
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": f"call_{step}", "content": "result " * 40},
        ]
        body = json.dumps(
            {"model": "m", "messages": messages, "tools": [{"type": "function", "function": {"name": "run"}}]}
        ).encode()
        hashed.clear()
        dialect.parse_request("POST", "/v1/chat/completions", {}, {}, body)
        per_step.append((len(hashed), sum(hashed), len(body)))
    for step, (calls, nbytes, size) in enumerate(per_step, 1):
        # the conversation's fingerprint with its parent's, and each tool call's arguments once
        assert calls <= step + 2, per_step
        assert nbytes <= size, per_step
