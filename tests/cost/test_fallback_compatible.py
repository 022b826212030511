"""``fallback_compatible``: the conversation agents on the capability profiles. The correct agent
passes every check; the one that forwards foreign state fails exactly ``fallback_compatible``;
the reference router (one prompt per call, no state) passes the same profiles."""

from __future__ import annotations

from typing import Any

import pytest

from examples.agents.router import Router
from examples.agents.stateful import ConversationAgent, ForwardsForeignState, RetriesWholeConversation
from examples.workload import router_for
from harness.checks import Verdict
from harness.drill import Drill

TIME_SCALE = 0.25  # an agent's real-time cost is magnified 1/TIME_SCALE in profile time
LONG = "Please keep this whole paragraph in mind for what follows. " * 12  # ~180 tokens a turn


def _converse(profile: str, agent_cls: type, turns: int = 5, prompt: str = "turn {i}: go on") -> Any:
    with Drill(profile, time_scale=TIME_SCALE) as drill:
        lanes = [(n, drill.url(n), spec.dialect) for n, spec in drill.profile.lanes.items()]
        agent = agent_cls(lanes, time_scale=TIME_SCALE)
        for i in range(turns):
            drill.call(agent.turn, prompt.format(i=i))
        return drill.evaluate()


def _fails(report: Any) -> set[str]:
    return {r.name for r in report.results if r.verdict is Verdict.FAIL}


def _result(report: Any, name: str) -> Any:
    return next(r for r in report.results if r.name == name)


@pytest.mark.parametrize("profile", ["c01-thinking-signature-on-fallback", "c02-previous-response-id-across-lanes"])
def test_correct_agent_passes_and_the_one_forwarding_state_fails_exactly_fallback_compatible(profile: str) -> None:
    good = _converse(profile, ConversationAgent)
    assert _fails(good) == set(), good.render()
    compat = _result(good, "fallback_compatible")
    assert compat.verdict is Verdict.PASS and "accepted" in compat.evidence[0].what, good.render()
    bad = _converse(profile, ForwardsForeignState)
    assert _fails(bad) == {"fallback_compatible"}, bad.render()
    (problem,) = _result(bad, "fallback_compatible").problems()
    words = "Invalid `signature` in `thinking` block" if "c01" in profile else "Previous response with id"
    assert "rejected for state another lane minted" in problem.what and words in problem.what, problem.what
    assert problem.attempts and problem.lane == "stable"


def test_smaller_context_on_fallback_is_adapted_to_by_trimming() -> None:
    report = _converse("c03-fallback-smaller-context", ConversationAgent, turns=6, prompt=LONG + " ({i})")
    assert _fails(report) == set(), report.render()
    compat = _result(report, "fallback_compatible")
    adapted = [e for e in compat.evidence if "the conversation is over its context window" in e.what]
    assert adapted and "the agent adapted" in adapted[0].what, report.render()


def test_strict_budget_fails_an_agent_that_needed_to_trim() -> None:
    with Drill("c03-fallback-smaller-context", time_scale=TIME_SCALE) as drill:
        lanes = [(n, drill.url(n), spec.dialect) for n, spec in drill.profile.lanes.items()]
        agent = ConversationAgent(lanes, time_scale=TIME_SCALE)
        for i in range(6):
            drill.call(agent.turn, LONG + f" ({i})")
        report = drill.evaluate({"fallback_compatible": {"adapt_within": 0}})
    assert _fails(report) == {"fallback_compatible"}, report.render()


@pytest.mark.parametrize(
    "profile",
    [
        "c01-thinking-signature-on-fallback",
        "c02-previous-response-id-across-lanes",
        "c03-fallback-smaller-context",
        "c04-retries-whole-conversation",
        "c05-cache-flush-then-failover",
    ],
)
def test_reference_router_passes_the_capability_profiles(profile: str) -> None:
    with Drill(profile, time_scale=TIME_SCALE) as drill:
        router = router_for(drill, Router)
        for i in range(6):
            drill.call(router.complete, f"question {i}")
        report = drill.evaluate()
    assert _fails(report) == set(), report.render()
    names = {r.name for r in report.results}
    assert names & {"fallback_compatible", "cost_budget"}, report.render()


def test_no_move_is_unknown() -> None:
    with Drill("base-two-lanes", time_scale=TIME_SCALE) as drill:
        router = router_for(drill, Router)
        drill.call(router.complete, "hello")
        report = drill.evaluate({"fallback_compatible": {}})
    assert report.results[0].verdict is Verdict.UNKNOWN
    assert "no call moved" in report.results[0].summary


def test_retrying_whole_conversations_fails_exactly_cost_budget() -> None:
    profile = "c04-retries-whole-conversation"
    good = _converse(profile, ConversationAgent, turns=8, prompt=LONG + " ({i})")
    assert _fails(good) == set(), good.render()
    bad = _converse(profile, RetriesWholeConversation, turns=8, prompt=LONG + " ({i})")
    assert _fails(bad) == {"cost_budget"}, bad.render()
    (problem,) = _result(bad, "cost_budget").problems()
    assert "amplification" in problem.what and problem.measured > 2.0 and problem.attempts, problem.what
    assert _result(good, "cost_budget").evidence[-1].measured < 2.0


def test_cache_flush_and_cold_fallback_are_billed_and_shown() -> None:
    """Turns 2-3 read the instructions from primary's cache; attempt 4 finds it flushed; from
    primary's sixth attempt the conversation is on stable, cold: the cache it lost is counted."""
    system = "Follow the routing handbook exactly, every rule of it, in order. " * 100
    with Drill("c05-cache-flush-then-failover", time_scale=TIME_SCALE) as drill:
        lanes = [(n, drill.url(n), spec.dialect) for n, spec in drill.profile.lanes.items()]
        agent = ConversationAgent(lanes, system=system, time_scale=TIME_SCALE)
        for i in range(8):
            drill.call(agent.turn, f"turn {i}")
        report = drill.evaluate()
        attempts = drill.journal.attempts()
    assert _fails(report) == set(), report.render()
    cached = [int((a.usage or {}).get("cached_input_tokens") or 0) for a in attempts if a.lane == "primary"]
    assert cached[0] == 0 and cached[1] > 1000 and cached[2] > 1000 and cached[3] == 0 and cached[4] > 1000, cached
    assert attempts[3].fault_name == "cache_flush"
    summary = _result(report, "cost_budget").summary
    lost = int(summary.split("cache lost to failover: ")[1].split(" tok")[0])
    assert lost > 1000, summary
