"""Agent loops through official SDKs against the simulator's tool-call script.

Each loop runs against a lane whose upstream is the simulator, and against a lane forwarding to
another lane over a real socket (a real upstream's events, classified by the dialect). It must
get exactly ``tool_steps`` answers of ``parallel_tool_calls`` calls to offered tools, with
arguments valid for their schema, then the canonical answer of the final conversation; and the
journal must say so: each answer's ``tool_calls``, each request's ``tool_history`` and the
``parent_fingerprint`` chain that ties the steps together.
"""

from __future__ import annotations

import dataclasses

import jsonschema
import pytest

from harness.canonical import canonical_text
from harness.journal import Journal
from harness.profile import LaneSpec, Profile
from tests.conftest import FAST
from tests.engine import tool_loops

SCRIPT = dataclasses.replace(FAST, tool_steps=2, parallel_tool_calls=2)

LOOPS = {
    "chat": ("openai", tool_loops.chat),
    "chat_stream": ("openai", tool_loops.chat_stream),
    "chat_helper": ("openai", tool_loops.chat_helper),
}


@pytest.fixture(params=["simulator", "forwarded"])
def lane(request, start_lanes):
    def make(dialect: str) -> tuple[str, Journal, str]:
        origin = Profile(name="origin", lanes={"origin": LaneSpec("origin", dialect, simulator=SCRIPT)})
        sim = start_lanes(origin)
        if request.param == "simulator":
            return sim.urls["origin"], sim.journal, "origin"
        front = Profile(name="front", lanes={"front": LaneSpec("front", dialect, upstream=sim.urls["origin"])})
        bg = start_lanes(front)
        return bg.urls["front"], bg.journal, "front"

    return make


@pytest.mark.parametrize("style", list(LOOPS))
def test_agent_loop(lane, style):
    dialect, loop = LOOPS[style]
    url, journal, name = lane(dialect)
    calls, text = loop(url)

    steps = SCRIPT.tool_steps
    assert len(calls) == steps * SCRIPT.parallel_tool_calls
    assert [n for n, _ in calls] == ["read_file", "run_tests"] * steps  # every offered tool in turn
    for n, args in calls:
        jsonschema.validate(args, tool_loops.TOOLS[n])

    assert journal.wait_for(steps + 1)
    attempts = journal.attempts(name)
    assert len(attempts) == steps + 1
    assert text == canonical_text(attempts[-1].fingerprint, SCRIPT.answer_tokens)
    for k, a in enumerate(attempts):
        assert a.outcome == "ok" and a.tools_offered == ["read_file", "run_tests"]
        if k < steps:
            assert [c["name"] for c in a.tool_calls] == ["read_file", "run_tests"]
            assert all(c["arguments_complete"] and c["arguments_valid"] and c["offered"] for c in a.tool_calls)
        else:
            assert a.tool_calls is None
        if k == 0:
            assert a.parent_fingerprint is None and a.tool_history is None
        else:
            assert a.parent_fingerprint == attempts[k - 1].fingerprint
            # the history holds every call made so far, by the same digests the answers had
            made = [c["args_sha"] for b in attempts[:k] for c in b.tool_calls]
            assert [h["args_sha"] for h in a.tool_history] == made
            assert all(h["has_result"] and h["arguments_valid"] for h in a.tool_history)
