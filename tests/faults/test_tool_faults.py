"""Faults inside tool calls, as each SDK sees them and as the journal records them.

Every surface (streamed and not, in every dialect) runs against a lane whose upstream is the
simulator and against one that forwards to another lane, so the fault acts on a real upstream's
events as on the simulator's.
"""

from __future__ import annotations

import json

import pytest

from tests.faults import tool_drive
from tests.faults.tool_drive import SURFACES, dialect_of, only_attempt


def _json(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return None


@pytest.mark.parametrize("surface", SURFACES)
def test_no_fault_baseline(tool_lane, surface):
    bg = tool_lane(surface, None)
    seen = tool_drive.step(surface, bg.urls["lane"])
    assert seen.exc is None
    ((name, args),) = seen.calls
    assert name == "read_file" and set(_json(args)) == {"path", "lines"}
    (call,) = only_attempt(bg).tool_calls
    assert call["arguments_complete"] and call["arguments_valid"] and call["offered"]


@pytest.mark.parametrize("surface", SURFACES)
def test_invalid_json_arguments(tool_lane, surface):
    bg = tool_lane(surface, {"fault": "malformed_tool_arguments", "kind": "invalid_json"})
    seen = tool_drive.step(surface, bg.urls["lane"])
    a = only_attempt(bg)
    assert a.fault is not None and a.fault["name"] == "malformed_tool_arguments"
    dialect = dialect_of(surface)
    if dialect == "gemini":
        # Gemini never sends such a call: the answer says why there is none
        assert seen.exc is None and seen.calls == [] and seen.finish == "MALFORMED_FUNCTION_CALL"
        assert a.tool_calls is None and a.finish == "malformed_function_call"
        return
    if surface == "anthropic_stream":
        # the SDK parses input_json_delta as it comes, and raises the error users report
        assert seen.exc is not None and "Unable to parse tool parameter JSON" in str(seen.exc)
    elif surface == "anthropic":
        assert seen.exc is None and seen.calls == [("read_file", "{}")]  # a body always carries an object
    else:
        assert seen.exc is None
        ((name, args),) = seen.calls
        assert name == "read_file" and _json(args) is None and args.rstrip().endswith(",}")
    (call,) = a.tool_calls
    assert call["arguments_complete"] and not call["arguments_valid"] and call["offered"]
    if surface == "anthropic_stream":  # the SDK hangs up as it raises: before the terminator, or after
        assert a.outcome == "ok" or a.end_reason == "client_gone"
    else:
        assert a.outcome == "ok"


@pytest.mark.parametrize("surface", SURFACES)
def test_missing_required_property(tool_lane, surface):
    bg = tool_lane(surface, {"fault": "malformed_tool_arguments", "kind": "missing_required"})
    seen = tool_drive.step(surface, bg.urls["lane"])
    assert seen.exc is None
    ((name, args),) = seen.calls
    assert name == "read_file" and set(_json(args)) == {"lines"}  # "path" is the first required
    (call,) = only_attempt(bg).tool_calls
    assert call["arguments_complete"] and not call["arguments_valid"]


@pytest.mark.parametrize("surface", SURFACES)
def test_call_to_a_tool_not_offered(tool_lane, surface):
    bg = tool_lane(surface, {"fault": "unoffered_tool_call", "tool": "delete_branch"})
    seen = tool_drive.step(surface, bg.urls["lane"])
    assert seen.exc is None
    a = only_attempt(bg)
    if dialect_of(surface) == "gemini":
        assert seen.calls == [] and seen.finish == "UNEXPECTED_TOOL_CALL"
        assert a.tool_calls is None
        return
    ((name, args),) = seen.calls
    assert name == "delete_branch" and set(_json(args)) == {"path", "lines"}
    (call,) = a.tool_calls
    assert call["name"] == "delete_branch" and not call["offered"] and call["arguments_complete"]


def test_a_text_answer_goes_through_untouched(tool_lane):
    """No tool offered, no call: the fault has nothing to change."""
    import openai

    bg = tool_lane("chat", {"fault": "malformed_tool_arguments"})
    client = openai.OpenAI(base_url=bg.urls["lane"] + "/v1", api_key="k", max_retries=0)
    r = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].finish_reason == "stop" and r.choices[0].message.content
    assert only_attempt(bg).tool_calls is None


def test_second_call_of_parallel_calls():
    bg = tool_drive.start("chat", {"fault": "malformed_tool_arguments", "call": 1}, parallel_tool_calls=3)
    try:
        seen = tool_drive.step("chat_stream", bg.urls["lane"])
        assert [_json(args) is not None for _, args in seen.calls] == [True, False, True]
        assert [c["arguments_valid"] for c in only_attempt(bg).tool_calls] == [True, False, True]
    finally:
        tool_drive.stop(bg)


@pytest.mark.parametrize(
    ("profile", "surface", "bad"),
    [
        ("t01-tool-arguments-invalid-json", "anthropic", lambda c: not c["arguments_valid"]),
        ("t02-tool-arguments-missing-required", "chat", lambda c: not c["arguments_valid"]),
        ("t03-tool-call-unoffered", "chat", lambda c: not c["offered"]),
        ("t04-tool-arguments-stream-cut", "chat_stream", lambda c: not c["arguments_complete"]),
        ("t05-tool-arguments-stall", "anthropic_stream", lambda c: False),  # resumed: the call is whole
        ("t06-tool-call-finish-length", "chat", lambda c: not c["arguments_complete"]),
    ],
)
def test_shipped_profiles_hit_a_tool_using_agent(profile, surface, bad):
    """The catalogue's tool-call profiles, as shipped (seeded schedules), fault some of a tool
    agent's answers on the primary lane and leave the others alone."""
    from harness.lanes import BackgroundLanes, LaneSet
    from harness.profile import load_profile

    bg = BackgroundLanes(LaneSet(load_profile(profile), time_scale=0.05)).start()
    try:
        for _ in range(9):
            tool_drive.step(surface, bg.urls["primary"])
        assert bg.journal.wait_for(9)
        attempts = bg.journal.attempts("primary")
        faulted = [a for a in attempts if a.fault is not None]
        assert 0 < len(faulted) < len(attempts)
        assert all(bad(a.tool_calls[0]) for a in faulted if "stall" not in profile)
        assert not any(bad(a.tool_calls[0]) for a in attempts if a.fault is None)
        if "stall" in profile:  # 30 s of silence, at time scale 0.05, inside each faulted answer
            assert all(a.duration >= 1.5 for a in faulted)
    finally:
        bg.stop()
