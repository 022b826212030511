"""A drill never judges a journal that lacks an attempt that has ended.

A streamed answer reaches the client (``[DONE]`` and the end of the body) before the lane's
handler has journaled the attempt, so a workload can finish and call ``evaluate()`` in between.
``settle()`` waits for the lanes' open attempts; an attempt must therefore be in the journal
before it leaves the open set. A pause inside ``Journal.record`` widens the gap from microseconds
to a quarter of a second, which is what made it reproducible.
"""

from __future__ import annotations

import time

import openai

from harness.drill import Drill
from harness.journal import Journal
from harness.profile import profile_from_dict

PAUSE = 0.25


def test_evaluate_waits_for_an_attempt_being_journaled(monkeypatch):
    record = Journal.record

    def slow_record(self: Journal, attempt) -> None:
        time.sleep(PAUSE)  # on the lanes' loop thread, as a slow disk would
        record(self, attempt)

    monkeypatch.setattr(Journal, "record", slow_record)
    profile = profile_from_dict(
        {
            "lanes": {"primary": {"dialect": "openai", "simulator": {"ttft": 0, "tokens_per_second": 5000}}},
            "checks": ["no_lost_calls"],
        }
    )
    with Drill(profile) as drill:
        client = openai.OpenAI(base_url=drill.base_url("primary"), api_key="sk-test", max_retries=0)

        def ask() -> str:
            chunks = client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hello"}], stream=True
            )
            return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

        drill.call(ask)
        report = drill.evaluate()  # the client has its answer; the lane is still journaling it
        assert len(drill.journal) == 1, "evaluate() judged a journal missing an ended attempt"
        (result,) = report.results
        assert result.verdict == "pass", result.summary
