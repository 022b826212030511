"""Every attempt tied to its call with no header, in every workload shape an agent really has.

Each drill runs an agent on the plain SDKs (tests/e2e/plain_agents.py) through f16-stream-cut, where
half the primary's streams are cut after 12 tokens: a correct agent falls back, a flawed one keeps
the cut text. The agent sends nothing routechaos reads; a test-only header records which call
really made each attempt, and attribution must agree with it (for identical prompts sent at once,
where nothing on the wire can tell two calls apart, it must agree on how many attempts each call
made and never count one twice). Verdicts must be those the agent deserves, counted per call.
"""

from __future__ import annotations

import asyncio
import json
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from harness.checks import Verdict, call_views
from harness.drill import Drill

from .plain_agents import PlainAgent, ground_truth, truth

PROFILE = "f16-stream-cut"
SCALE = 0.05
CHECKS = {"no_lost_calls": {}, "no_truncated_success": {}, "retries_bounded": {"max_attempts_per_call": 4}}


def _assert_attributed(drill: Drill, calls: int, *, exact: bool = True) -> None:
    journal = drill.profile_time_journal()
    views = call_views(journal)
    assert len(views) == calls, [v.key for v in views]
    assert all(v.call is not None for v in views)
    seen = [a for v in views for a in v.attempt_ids]
    assert len(seen) == len(set(seen)) == len(journal.attempts())  # every attempt once, none twice
    truth_of = ground_truth(drill)
    got = {a: v.key for v in views for a in v.attempt_ids}
    if exact:
        wrong = {a: (got[a], t) for a, t in truth_of.items() if got[a] != t}
        assert not wrong, wrong
    else:  # the same conversation from several calls at once: nothing on the wire tells them apart, but
        # every call gets at least one attempt, and the ambiguity is said (views name the other calls)
        assert all(v.attempts for v in views)
        assert any(v.ambiguous_with for v in views)


def _verdicts(drill: Drill) -> dict[str, Verdict]:
    report = drill.evaluate(CHECKS)
    return {r.name: r.verdict for r in report.results}


def _run(shape: str, accept_cut: bool) -> tuple[Drill, dict[str, Verdict], str]:
    with Drill(PROFILE, time_scale=SCALE) as drill:
        agent = PlainAgent(drill, accept_cut=accept_cut)

        def one(i: int, prompt: str) -> None:
            def work() -> object:
                with truth(f"call-{i:04d}"):
                    return agent.complete(prompt)

            drill.call(work, call_id=f"call-{i:04d}")

        if shape == "sequential":
            for i in range(12):
                one(i + 1, f"question {i}")
        else:
            identical = shape == "threads-identical"
            with ThreadPoolExecutor(8) as pool:
                futures = [pool.submit(one, i + 1, "the same question" if identical else f"q {i}") for i in range(16)]
                for f in futures:
                    f.result()
        report = drill.evaluate(CHECKS)
    return drill, {r.name: r.verdict for r in report.results}, report.summary()


@pytest.mark.parametrize("shape", ["sequential", "threads-distinct", "threads-identical"])
def test_correct_agent_passes_and_every_attempt_is_its_calls(shape: str) -> None:
    drill, verdicts, summary = _run(shape, accept_cut=False)
    _assert_attributed(drill, 12 if shape == "sequential" else 16, exact=shape != "threads-identical")
    assert verdicts == {k: Verdict.PASS for k in CHECKS}, summary
    n = 12 if shape == "sequential" else 16
    assert f"{n}/{n} calls ended cleanly" in summary  # one call counted once


@pytest.mark.parametrize("shape", ["sequential", "threads-distinct", "threads-identical"])
def test_agent_that_accepts_cut_streams_is_caught_without_a_header(shape: str) -> None:
    drill, verdicts, summary = _run(shape, accept_cut=True)
    assert verdicts["no_truncated_success"] is Verdict.FAIL, summary
    assert verdicts["no_lost_calls"] is Verdict.PASS, summary  # it lost nothing: it truncated
    cut = sum(1 for a in drill.journal.attempts() if a.end_reason == "cut")
    assert f"{cut} truncated" in summary


def test_asyncio_agent_with_acall() -> None:
    with Drill(PROFILE, time_scale=SCALE) as drill:
        agent = PlainAgent(drill, accept_cut=False)

        async def one(i: int) -> None:
            async def work() -> object:
                with truth(f"call-{i:04d}"):
                    return await agent.acomplete(f"async question {i}")

            await drill.acall(work, call_id=f"call-{i:04d}")

        async def main() -> None:
            await asyncio.gather(*(one(i + 1) for i in range(12)))

        asyncio.run(main())
        verdicts = _verdicts(drill)
    _assert_attributed(drill, 12)
    assert {c.task for c in drill.journal.calls()} and all(c.task for c in drill.journal.calls())
    assert verdicts == {k: Verdict.PASS for k in CHECKS}


def test_sdk_retries_that_add_a_retry_count_header_stay_with_their_call() -> None:
    """A 503 on the primary's first two attempts of each call: the openai SDK retries them itself
    (``x-stainless-retry-count`` 1, 2); the retries change nothing else in the request."""
    profile = {
        "name": "sdk-retries",
        "seed": 3,
        "lanes": {
            "primary": {"dialect": "openai-chat", "simulator": {"tokens_per_second": 400, "ttft": 0.05}},
            "stable": {"dialect": "anthropic", "simulator": {"tokens_per_second": 200, "ttft": 0.05}},
        },
        "faults": [{"fault": "server_error", "lane": "primary", "schedule": {"per_call": 2}, "retry_after": 0.01}],
    }
    from harness.profile import profile_from_dict

    with Drill(profile_from_dict(profile), time_scale=0.2) as drill:
        agent = PlainAgent(drill, max_retries=2)

        def one(i: int) -> None:
            def work() -> object:
                with truth(f"call-{i:04d}"):
                    return agent.complete(f"retry question {i}")

            drill.call(work, call_id=f"call-{i:04d}")

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(one, range(1, 9)))
        report = drill.evaluate({"retries_bounded": {"max_attempts_per_call": 3, "max_amplification": 1}})
    _assert_attributed(drill, 8)
    counts = [a.retry_count for a in drill.journal.attempts()]
    assert counts.count(2) == 8, counts
    assert report.passed, report.render()


AGENT = textwrap.dedent(
    """
    import json, os, sys, time, urllib.request
    import openai
    client = openai.OpenAI(max_retries=0)
    def report(body):
        req = urllib.request.Request(os.environ["ROUTECHAOS_CONTROL_URL"] + "/calls", data=json.dumps(body).encode(),
                                     headers={"content-type": "application/json"})
        urllib.request.urlopen(req, timeout=5).read()
    for i in range(int(sys.argv[1])):
        started = time.time()
        text = ""
        try:
            for ch in client.chat.completions.create(model="gpt-4o", stream=True,
                                                     messages=[{"role": "user", "content": f"sub {i}"}]):
                if ch.choices:
                    text += ch.choices[0].delta.content or ""
            report({"id": f"sub-{i}", "outcome": "ok", "text": text, "lane": "primary",
                    "started_at": started, "ended_at": time.time()})
        except Exception as exc:
            report({"id": f"sub-{i}", "outcome": "ok" if text else "error", "text": text or None,
                    "error_type": type(exc).__name__, "lane": "primary",
                    "started_at": started, "ended_at": time.time()})
    """
)


def test_subprocess_agent_reporting_calls(tmp_path: Path) -> None:
    """An agent in another process, plain openai SDK, no header, reporting each call to the control
    API: its attempts are tied to its reported calls, and keeping cut text fails the check."""
    script = tmp_path / "agent.py"
    script.write_text(AGENT)
    with Drill(PROFILE, time_scale=SCALE, control=True) as drill:
        rc = drill.run_command([sys.executable, str(script), "10"], timeout=60)
        report = drill.evaluate(CHECKS)
    assert rc == 0
    views = call_views(drill.profile_time_journal())
    assert [v.key for v in views] == [f"sub-{i}" for i in range(10)]
    assert all(len(v.attempts) == 1 for v in views), [(v.key, v.attempt_ids) for v in views]
    truncated = sum(1 for a in drill.journal.attempts() if a.end_reason == "cut")
    results = {r.name: r for r in report.results}
    assert results["no_truncated_success"].verdict is (Verdict.FAIL if truncated else Verdict.PASS)
    assert "10/10 calls" in results["no_lost_calls"].summary, json.dumps(report.to_json())[:500]
