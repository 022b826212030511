"""The reference router and the client kit on every cloud lane, and a drill's environment for them."""

from __future__ import annotations

import pytest

from examples.agents.router import Router
from harness.clientkit import complete
from harness.drill import Drill
from harness.profile import profile_from_dict
from tests.conftest import expected_answer

CLOUD_FORMS = [
    ("azure", "azure"),
    ("openrouter", "openrouter"),
    ("bedrock", "bedrock"),
    ("vertex", "vertex"),
    ("ollama", "ollama"),
    ("ollama", "ollama-native"),
]


@pytest.mark.parametrize(("lane", "form"), CLOUD_FORMS, ids=[f for _, f in CLOUD_FORMS])
def test_router_and_client_kit_read_each_cloud_to_a_whole_answer(start_lanes, lane, form):
    bg = start_lanes(x=lane)
    result = Router([("x", bg.urls["x"], form)]).complete("q")
    assert result.complete and result.text == expected_answer("q"), result.attempts
    assert result.usage == {"input_tokens": 1, "output_tokens": 24}
    for stream in (True, False):
        ans = complete(bg.urls["x"], form, "q", stream_=stream)
        assert ans.text == expected_answer("q") and ans.complete and ans.error is None


def test_router_falls_back_from_a_throttle_inside_a_bedrock_stream(start_lanes):
    profile = profile_from_dict(
        {
            "lanes": {"br": {"dialect": "bedrock"}, "stable": {"dialect": "anthropic"}},
            "faults": [{"fault": "inband_error", "lane": "br", "kind": "rate_limit", "after_tokens": 3}],
        }
    )
    bg = start_lanes(profile)
    result = Router(
        [("br", bg.urls["br"], "bedrock"), ("stable", bg.urls["stable"], "anthropic")], backoff_base=0.01
    ).complete("q")
    assert result.complete and result.lane == "stable", result.attempts
    assert result.attempts[0].startswith("br: in-band error") and "throttlingexception" in result.attempts[0]


def test_drill_environment_names_each_cloud_as_its_clients_read_it():
    profile = profile_from_dict(
        {"lanes": {n: {"dialect": n} for n in ("azure", "bedrock", "vertex", "openrouter", "ollama")}}
    )
    with Drill(profile) as drill:
        env = drill.env()
        assert env["AZURE_OPENAI_ENDPOINT"] == drill.url("azure")
        assert env["AWS_ENDPOINT_URL_BEDROCK_RUNTIME"] == env["ANTHROPIC_BEDROCK_BASE_URL"] == drill.url("bedrock")
        assert env["GOOGLE_VERTEX_BASE_URL"] == drill.url("vertex")
        assert env["ANTHROPIC_VERTEX_BASE_URL"] == drill.url("vertex") + "/v1"
        assert env["OPENROUTER_BASE_URL"] == drill.base_url("openrouter") == drill.url("openrouter") + "/api/v1"
        assert env["OLLAMA_HOST"] == drill.url("ollama")
        assert env["AWS_REGION"] and env["AWS_ACCESS_KEY_ID"] and env["OPENAI_API_VERSION"]
