"""Bedrock's binary event-stream recorded and replayed with boto3; the profile settings' errors."""

from __future__ import annotations

import base64

import httpx
import pytest

from harness.cassette import Cassette
from harness.profile import FaultSpec, ProfileError, load_profile_text
from tests.clouds.clients import SECRET, drive


@pytest.mark.parametrize("stream", [True, False])
def test_bedrock_converse_recorded_and_replayed_with_boto3(rig, tmp_path, stream):
    cassette = tmp_path / "bedrock.jsonl"
    url, live = rig.recording("bedrock", cassette)
    seen = drive("bedrock-converse", url, stream=stream)
    assert seen.exc is None and seen.text
    assert live.journal.wait_for(1)
    rig.stop(live)
    raw = cassette.read_text()
    assert SECRET not in raw and "AKIDROUTECHAOS" not in raw  # SigV4: key id, session token
    (ex,) = Cassette.load(cassette).exchanges
    url, rep = rig.replaying("bedrock", cassette)
    again = drive("bedrock-converse", url, stream=stream)
    assert again.exc is None and (again.text, again.finish) == (seen.text, seen.finish)
    if stream:  # binary frames, kept as base64, come back byte for byte
        assert ex.response.events and all("b64" in e for e in ex.response.events)
        body = (ex.request.body or "").encode()
        got = httpx.post(url + ex.request.path, content=body, headers={"content-type": "application/json"})
        assert got.content == b"".join(base64.b64decode(e["b64"]) for e in ex.response.events)
        cut = FaultSpec("stream_cut", "rep", attrs={"after_tokens": 5})
        url, rep = rig.replaying("bedrock", cassette, [cut])
        drive("bedrock-converse", url, stream=True)
        assert rep.journal.wait_for(1)
        (a,) = rep.journal.attempts()
        assert a.end_reason == "cut" and a.answer is not None and not a.complete


def test_replay_and_record_settings_are_checked_where_they_are_written(tmp_path):
    cassette = tmp_path / "c.jsonl"
    cassette.write_text('{"type": "cassette", "version": 1}\n')
    ok = load_profile_text(f"lanes:\n  a: {{dialect: openai, replay: {{cassette: '{cassette}', pace: 50}}}}\n")
    assert ok.lanes["a"].replay is not None and ok.lanes["a"].replay.pace == 50.0
    cases = {
        "lanes:\n  a: {dialect: openai, replay: nowhere.jsonl}\n": "lanes.a.replay.cassette: no cassette at",
        f"lanes:\n  a: {{dialect: openai, replay: {{cassette: '{cassette}', pace: fast}}}}\n": "lanes.a.replay.pace",
        f"lanes:\n  a: {{dialect: openai, replay: {{cassette: '{cassette}', fall: x}}}}\n": "unknown replay setting",
        "lanes:\n  a: {dialect: openai, record: x.jsonl}\n": "give upstream: too",
        f"lanes:\n  a: {{dialect: openai, upstream: 'http://h', replay: '{cassette}'}}\n": "not both",
    }
    for text, want in cases.items():
        with pytest.raises(ProfileError) as err:
            load_profile_text(text)
        assert want in str(err.value) and ":2" in str(err.value), str(err.value)
