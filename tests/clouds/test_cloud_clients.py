"""Every cloud surface with its official client, end to end through a lane.

Each surface runs twice: against a lane on the in-process simulator, and against a lane that
forwards to *another lane* over a real socket (so Bedrock's binary frames and Ollama's NDJSON
lines go through the forwarding lane's own decoder). The text must be the canonical answer,
streamed and not, and the journal must read the provider's usage, finish and end reason, with no
credential in it.
"""

from __future__ import annotations

import json

import pytest

from harness.journal import Journal
from harness.profile import LaneSpec, Profile
from tests.conftest import FAST, expected_answer

from .clients import LANE, PROMPT, SECRET, SURFACES, client, drive

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(params=["simulator", "forwarded"])
def lane_url(request, start_lanes):
    """``lane_url(dialect) -> (base_url, journal, lane_name)``."""

    def make(dialect: str) -> tuple[str, Journal, str]:
        sim = start_lanes(**{"origin": dialect})
        if request.param == "simulator":
            return sim.urls["origin"], sim.journal, "origin"
        front = Profile(name="front", lanes={"front": LaneSpec("front", dialect, upstream=sim.urls["origin"])})
        bg = start_lanes(front)
        return bg.urls["front"], bg.journal, "front"

    return make


@pytest.mark.parametrize("surface", SURFACES)
def test_official_client_gets_the_canonical_answer(lane_url, surface):
    url, journal, lane = lane_url(LANE[surface])
    c = client(surface, url)
    for stream in (False, True):
        seen = drive(surface, url, stream=stream, using=c)
        assert seen.exc is None, seen.exc
        assert seen.text == expected_answer(PROMPT), stream
    assert journal.wait_for(2, 30)
    whole, streamed = journal.attempts(lane)
    for a, stream in ((whole, False), (streamed, True)):
        assert a.status == 200 and a.end_reason == "complete" and a.outcome == "ok"
        assert a.stream is stream
        assert a.finish == "stop"
        assert a.usage is not None and a.usage["output_tokens"] == FAST.answer_tokens, a.usage
        assert a.usage["input_tokens"] > 0
        assert a.tokens == FAST.answer_tokens
        assert SECRET not in json.dumps(a.to_json())
    assert streamed.t_first_token is not None and streamed.events > 1


def test_bedrock_signature_and_session_token_never_reach_the_journal(start_lanes):
    bg = start_lanes(lane="bedrock")
    assert drive("bedrock-converse", bg.urls["lane"], stream=True).exc is None
    assert bg.journal.wait_for(1, 30)
    (a,) = bg.journal.attempts()
    assert a.headers["authorization"] == "[redacted]"
    assert a.headers["x-amz-security-token"] == "[redacted]"
    assert SECRET not in json.dumps(a.to_json())


def test_azure_key_header_is_redacted_and_the_deployment_names_the_model(start_lanes):
    bg = start_lanes(lane="azure")
    assert drive("azure-chat", bg.urls["lane"], stream=False).exc is None
    assert bg.journal.wait_for(1, 30)
    (a,) = bg.journal.attempts()
    assert a.headers["api-key"] == "[redacted]"
    assert a.path.startswith("/openai/deployments/gpt-4o/chat/completions?api-version=")
    assert a.model == "gpt-4o"


def test_same_conversation_same_fingerprint_on_every_surface(start_lanes):
    """A fallback from any cloud to any other is recognisably the same call."""
    bg = start_lanes(**{s.replace("-", "_"): LANE[s] for s in SURFACES})
    for s in SURFACES:
        assert drive(s, bg.urls[s.replace("-", "_")], stream=False).exc is None
    assert bg.journal.wait_for(len(SURFACES))
    assert len({a.fingerprint for a in bg.journal.attempts()}) == 1
