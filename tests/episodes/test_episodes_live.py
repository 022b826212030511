"""Episodes of real loops through lanes: an SDK's tool loop, spans marked in-process and over
the control API."""

from __future__ import annotations

import time

import httpx
import pytest

from harness.drill import Drill
from harness.episodes import episodes, pacing_of
from harness.profile import profile_from_dict
from tests.engine import tool_loops

SIM = {"tokens_per_second": 2000, "ttft": 0.0, "answer_tokens": 8, "tool_steps": 2}


def _profile(**primary: object) -> object:
    return profile_from_dict(
        {
            "name": "loop",
            "lanes": {
                "premium": {"dialect": "openai", "simulator": {**SIM, **primary}},
                "stable": {"dialect": "anthropic", "simulator": {**SIM, "tokens_per_second": 500}},
            },
        }
    )


def test_an_sdk_tool_loop_is_one_episode_with_marked_tools():
    with Drill(_profile()) as drill:
        real_run = tool_loops.result_for

        def result_for(name, args):  # the loop's tools, marked as an agent would
            with drill.tool(name):
                time.sleep(0.01)
            return real_run(name, args)

        tool_loops.result_for = result_for
        try:
            seen, text = drill.call(tool_loops.chat, drill.url("premium"))
        finally:
            tool_loops.result_for = real_run
    assert len(seen) == 2 and text
    (ep,) = episodes(drill.journal)
    assert len(ep.steps) == 3 and ep.final and ep.lanes == ["premium"]
    assert [s.asked_for_tools for s in ep.steps] == [True, True, False]
    m = ep.metrics()
    assert m["tool_wait"] >= m["tool_marked"] >= 0.02
    assert ep.steps[0].tool_names == [seen[0][0]]
    pacing, order = pacing_of(drill.journal)
    assert order == ["premium", "stable"] and pacing["stable"]["tokens_per_second"] == 500


def test_an_agent_in_another_process_marks_tool_spans_over_the_control_api():
    with Drill(_profile(), control=True) as drill:
        url = drill.control_url
        now = time.time()
        r = httpx.post(url + "/tools", json={"name": "run_tests", "started_at": now, "ended_at": now + 0.5})
        assert r.status_code == 201 and r.json()["span"]
        assert httpx.post(url + "/tools", json={"started_at": now}).json()["field"] == "name"
        assert httpx.post(url + "/tools", json={"name": "x", "when": 1}).json()["field"] == "when"
        bad = httpx.post(url + "/tools", json={"name": "x", "started_at": now, "ended_at": now - 1})
        assert bad.status_code == 400 and bad.json()["field"] == "ended_at"
        no_token = httpx.post(url.rsplit("/", 1)[0] + "/tools", json={"name": "x", "duration": 1})
        assert no_token.status_code == 403
    from harness.episodes import tool_spans

    (span,) = tool_spans(drill.journal)
    assert span.name == "run_tests" and span.source == "control"
    assert span.duration == pytest.approx(0.5, abs=0.03)
