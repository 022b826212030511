"""Each flawed agent fails exactly the check that names its flaw, on a profile chosen for it,
while the reference router passes the same profile and checks."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from examples.agents.flawed import (
    AcceptsCutStream,
    AppRetriesAroundSdk,
    IgnoresRetryAfter,
    NeverReturnsToPrimary,
    NoStreamIdleTimeout,
    RetriesForever,
)
from examples.agents.router import Router
from examples.workload import drive, router_for
from harness.checks import Verdict
from harness.drill import Drill
from harness.profile import Profile, load_profile, profile_from_dict

ROOT = Path(__file__).resolve().parents[2]
BASE_CHECKS: dict[str, Any] = {"no_lost_calls": {}, "no_truncated_success": {}}


def two_lanes(*faults: dict[str, Any], seed: int = 7) -> dict[str, Any]:
    """The catalogue's base shape (primary openai-chat, stable anthropic) with ``faults``."""
    return {
        "name": "flaw-drill",
        "seed": seed,
        "lanes": {
            "primary": {
                "dialect": "openai-chat",
                "simulator": {"tokens_per_second": 200, "ttft": 0.2, "answer_tokens": 48},
            },
            "stable": {
                "dialect": "anthropic",
                "simulator": {"tokens_per_second": 60, "ttft": 0.4, "answer_tokens": 48},
            },
        },
        "faults": list(faults),
    }


@dataclass
class Case:
    agent: type[Router]
    flaw_check: str
    profile: dict[str, Any] | str
    checks: dict[str, Any]
    calls: int = 6
    horizon: float = 8.0
    time_scale: float = 0.05
    agent_kw: dict[str, Any] = field(default_factory=dict)

    def load(self) -> Profile:
        if isinstance(self.profile, str):
            return load_profile(ROOT / "fault_profiles" / self.profile)
        return profile_from_dict(copy.deepcopy(self.profile))


CASES = {
    "retries_forever": Case(
        RetriesForever,
        "retries_bounded",
        two_lanes({"fault": "server_error", "lane": "primary"}),
        {**BASE_CHECKS, "retries_bounded": {"max_attempts_per_call": 4}},
        calls=3,
    ),
    "ignores_retry_after": Case(
        IgnoresRetryAfter,
        "honors_retry_after",
        "f01-rate-limit-retry-after.yaml",
        {
            **BASE_CHECKS,
            "honors_retry_after": {"tolerance": 0.9},
            "retries_bounded": {"max_attempts_per_call": 4},
            "fallback_within": {"primary": "primary", "fallback": "stable", "within": 10},
        },
    ),
    "no_stream_idle_timeout": Case(
        NoStreamIdleTimeout,
        "latency_budget",
        two_lanes(
            {
                "fault": "stall",
                "lane": "primary",
                "schedule": {"nth": [1, 3]},
                "after_tokens": 8,
                "duration": 8,
                "keepalive": "none",
                "then": "resume",
            }
        ),
        {**BASE_CHECKS, "latency_budget": {"total_p95": 6.0}},
    ),
    "accepts_cut_stream": Case(
        AcceptsCutStream,
        "no_truncated_success",
        "f16-stream-cut.yaml",
        {**BASE_CHECKS, "retries_bounded": {"max_attempts_per_call": 4}},
        calls=8,
    ),
    "never_returns_to_primary": Case(
        NeverReturnsToPrimary,
        "recovers_within",
        two_lanes({"fault": "overloaded", "lane": "primary", "schedule": {"window": [2, 6]}}),
        {
            **BASE_CHECKS,
            "fallback_within": {"primary": "primary", "fallback": "stable", "within": 5},
            "recovers_within": {"lane": "primary", "within": 6},
        },
        calls=14,
        horizon=18.0,
    ),
    "app_retries_around_sdk": Case(
        AppRetriesAroundSdk,
        "retries_bounded",
        # a tiny retry-after-ms keeps the SDK's own sleeps short (it honours it); still 3 x 3
        two_lanes({"fault": "server_error", "lane": "primary", "retry_after": 0.1, "retry_after_ms": True}),
        {**BASE_CHECKS, "retries_bounded": {"max_attempts_per_call": 10, "max_amplification": 1}},
        calls=2,
    ),
}


def run(case: Case, agent: type[Router], *, header: bool = False) -> Any:
    """One drill of ``case`` with ``agent``; ``header`` makes the agent send x-routechaos-call-id
    (without it, the drill ties attempts to calls by itself: the agent as it is)."""
    profile = case.load()
    with Drill(profile, time_scale=case.time_scale) as drill:
        router = router_for(drill, agent, **case.agent_kw)
        drive(drill, router, case.calls, case.horizon, **({} if header else {"headers": {}}))
        return drill.evaluate(case.checks)


def fails(report: Any) -> set[str]:
    return {r.name for r in report.results if r.verdict is Verdict.FAIL}


def verdicts(report: Any) -> dict[str, Verdict]:
    return {r.name: r.verdict for r in report.results}


@pytest.mark.parametrize("name", list(CASES))
def test_flawed_agent_fails_exactly_its_check_with_or_without_the_header(name: str) -> None:
    case = CASES[name]
    bare = run(case, case.agent)
    assert fails(bare) == {case.flaw_check}, bare.render()
    tagged = run(case, case.agent, header=True)
    assert verdicts(tagged) == verdicts(bare), tagged.render()


@pytest.mark.parametrize("name", list(CASES))
def test_reference_router_passes_the_same_drill_with_or_without_the_header(name: str) -> None:
    case = CASES[name]
    bare = run(case, Router)
    assert fails(bare) == set(), bare.render()
    tagged = run(case, Router, header=True)
    assert verdicts(tagged) == verdicts(bare), tagged.render()


def test_sdk_amplification_is_what_fails() -> None:
    """The SDK agent's failure is the retry-layer one (``x-stainless-retry-count`` restarts)."""
    case = CASES["app_retries_around_sdk"]
    report = run(case, case.agent)
    (result,) = [r for r in report.results if r.name == "retries_bounded"]
    assert result.verdict is Verdict.FAIL
    assert any("SDK retry loop restarted 3 times" in e.what for e in result.problems()), report.render()


@pytest.mark.parametrize("agent", ["router", "accepts_cut_stream"])
def test_agents_run_as_a_subprocess(agent: str, tmp_path: Path) -> None:
    """``python -m examples.agents.run`` reads its lanes from the drill's environment."""
    import sys

    profile = load_profile(ROOT / "fault_profiles" / "f16-stream-cut.yaml")
    out = tmp_path / "out.txt"
    with Drill(profile, time_scale=0.05) as drill, out.open("w") as fh:
        rc = drill.run_command(
            [sys.executable, "-m", "examples.agents.run", "--agent", agent, "--calls", "6", "--interval", "0.3"],
            timeout=60,
            cwd=ROOT,
            stdout=fh,
        )
        report = drill.evaluate({"no_lost_calls": {}, "no_truncated_success": {}})
    assert rc == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 6 and all(line.startswith("call ") for line in lines), lines
    assert len(report.journal.attempts()) >= 6
