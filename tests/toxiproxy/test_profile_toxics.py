"""A profile's `toxics:` through the Toxiproxy API, seen by the openai SDK going through a lane."""

from __future__ import annotations

import time

import openai
import pytest

from harness.drill import Drill
from harness.profile import profile_from_dict
from harness.toxiproxy.client import ToxiproxyClient

LANES = {"a": {"dialect": "openai", "simulator": {"tokens_per_second": 5000, "ttft": 0.0, "answer_tokens": 8}}}


def _ask(drill: Drill, timeout: float = 10.0) -> tuple[float, str]:
    client = openai.OpenAI(base_url=drill.base_url("a"), api_key="k", max_retries=0, timeout=timeout)
    t0 = time.monotonic()
    r = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    return time.monotonic() - t0, r.choices[0].message.content


def test_latency_toxic_slows_the_sdk_and_goes_through_the_proxy(toxiproxy_url):
    profile = profile_from_dict(
        {"lanes": LANES, "toxics": [{"lane": "a", "type": "latency", "attributes": {"latency": 250}}]}
    )
    with Drill(profile, toxiproxy_url=toxiproxy_url) as drill:
        lane_port = drill._bg.lanes.lanes["a"].port  # the agent is given the proxy, not the lane
        assert not drill.url("a").endswith(f":{lane_port}")
        elapsed, text = _ask(drill)
    assert elapsed >= 0.25 * 0.9
    assert text and drill.journal.attempts()[0].status == 200


def test_windowed_toxic_and_time_scale(toxiproxy_url):
    """A `down` toxic in window [1 s, 2 s) of profile time, compressed 2x: refused, then back."""
    profile = profile_from_dict(
        {
            "time_scale": 0.5,
            "lanes": LANES,
            "toxics": [{"lane": "a", "type": "down", "schedule": {"window": [1.0, 2.0]}}],
        }
    )
    with Drill(profile, toxiproxy_url=toxiproxy_url) as drill:
        deadline = time.monotonic() + 5

        def wait_for_mark(kind: str) -> None:
            while not drill.journal.marks(kind) and time.monotonic() < deadline:
                time.sleep(0.01)

        wait_for_mark("toxic_window_open")
        with pytest.raises(openai.APIConnectionError):
            _ask(drill, timeout=2)
        wait_for_mark("toxic_window_close")
        assert _ask(drill)[1]
    kinds = [m.kind for m in drill.journal.marks() if m.kind.startswith("toxic_window")]
    assert kinds == ["toxic_window_open", "toxic_window_close"]


def test_drill_removes_its_proxies_even_when_the_test_fails(embedded):
    profile = profile_from_dict(
        {"lanes": LANES, "toxics": [{"lane": "a", "type": "latency", "attributes": {"latency": 10}}]}
    )
    client = ToxiproxyClient(embedded.url)
    before = set(client.proxies())
    with pytest.raises(RuntimeError, match="agent blew up"), Drill(profile, toxiproxy_url=embedded.url) as drill:
        assert set(client.proxies()) - before  # our proxy exists while the drill runs
        _ask(drill)
        raise RuntimeError("agent blew up")
    assert set(client.proxies()) == before
