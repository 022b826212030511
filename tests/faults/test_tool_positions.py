"""stream_cut, stall and finish_length inside a tool call's arguments (``in: tool_arguments``):
what each SDK sees and what the journal records, against the simulator and through a forwarding
lane."""

from __future__ import annotations

import itertools
import json
import time

import pytest

from tests.faults import tool_drive
from tests.faults.tool_drive import SURFACES, dialect_of, only_attempt

CUT = {"fault": "stream_cut", "in": "tool_arguments", "after_fraction": 0.5}
STALL = {"fault": "stall", "in": "tool_arguments", "after_fraction": 0.5, "duration": 0.4}
LENGTH = {"fault": "finish_length", "in": "tool_arguments", "after_fraction": 0.5}


@pytest.mark.parametrize("surface", SURFACES)
def test_token_limit_halfway_through_the_arguments(tool_lane, surface):
    bg = tool_lane(surface, LENGTH)
    seen = tool_drive.step(surface, bg.urls["lane"])
    a = only_attempt(bg)
    assert a.finish == "length" and a.outcome == "ok" and a.fault["in"] == "tool_arguments"
    dialect = dialect_of(surface)
    if dialect == "gemini":  # a cut call is never sent
        assert seen.exc is None and seen.calls == [] and seen.finish == "MAX_TOKENS"
        assert a.tool_calls is None
        return
    (call,) = a.tool_calls
    assert call["name"] == "read_file" and not call["arguments_complete"]
    if surface == "anthropic":
        # a whole body carries the cut call's input as an object: what parsed of it, or nothing
        assert seen.calls == [("read_file", "{}")] and seen.finish == "max_tokens"
        return
    if surface == "chat_stream":
        # the stream helper refuses to hand over a length-cut answer when tools were given
        assert type(seen.exc).__name__ == "LengthFinishReasonError"
        return
    if surface == "responses_stream":
        # the stream helper's final response needs response.completed; this one is incomplete
        assert "response.completed" in str(seen.exc)
        return
    assert seen.exc is None, seen.exc
    ((name, args),) = seen.calls
    assert name == "read_file"
    if surface == "anthropic_stream":
        # the SDK parses input_json_delta partially: it hands over what the cut left of the object
        assert set(json.loads(args)) < {"path", "lines"}
    else:
        assert call["arguments_chars"] == len(args) > 0
        with pytest.raises(ValueError):
            json.loads(args)
    want = {"chat": "length", "responses": "incomplete", "anthropic": "max_tokens"}
    assert seen.finish == want[surface.removesuffix("_stream")]


@pytest.mark.parametrize("surface", SURFACES)
def test_stream_cut_halfway_through_the_arguments(tool_lane, surface):
    bg = tool_lane(surface, CUT)
    seen = tool_drive.step(surface, bg.urls["lane"])
    a = only_attempt(bg)
    if not surface.endswith("_stream"):  # a whole body has nothing to cut inside
        assert seen.exc is None and [n for n, _ in seen.calls] == ["read_file"]
        assert a.end_reason == "complete" and a.tool_calls[0]["arguments_complete"]
        return
    assert seen.exc is not None  # the connection closed mid-body: every SDK raises
    assert a.end_reason == "cut" and a.outcome == "unknown"
    if dialect_of(surface) == "gemini":  # the call comes whole: the cut is before it
        assert a.tool_calls is None
        return
    (call,) = a.tool_calls
    assert not call["arguments_complete"] and not call["arguments_valid"]
    assert 0 < call["arguments_chars"] < 60  # half of the simulator's ~60 characters


@pytest.mark.parametrize("surface", [s for s in SURFACES if s.endswith("_stream")])
def test_stall_halfway_through_the_arguments_then_resume(tool_lane, surface):
    bg = tool_lane(surface, STALL)
    t0 = time.monotonic()
    seen = tool_drive.step(surface, bg.urls["lane"])
    elapsed = time.monotonic() - t0
    assert seen.exc is None and [n for n, _ in seen.calls] == ["read_file"]
    assert set(json.loads(seen.calls[0][1])) == {"path", "lines"}
    a = only_attempt(bg)
    assert a.end_reason == "complete" and elapsed >= 0.4
    (call,) = a.tool_calls
    assert call["arguments_complete"] and call["arguments_valid"]
    if dialect_of(surface) != "gemini":  # the silence is inside the arguments, after the first fragment
        assert a.t_first_token is not None and a.t_end - a.t_first_token >= 0.35


@pytest.mark.parametrize("surface", ["chat_stream", "anthropic_stream"])
def test_stall_then_cut_inside_the_arguments(tool_lane, surface):
    bg = tool_lane(surface, {**STALL, "then": "cut"})
    seen = tool_drive.step(surface, bg.urls["lane"])
    assert seen.exc is not None
    a = only_attempt(bg)
    assert a.end_reason == "cut" and not a.tool_calls[0]["arguments_complete"]


def test_position_attributes_need_in():
    from harness.faults import FaultAttrError, make_fault

    with pytest.raises(FaultAttrError) as err:
        make_fault("stream_cut", {"after_fraction": 0.5})
    assert err.value.field == "in"
    with pytest.raises(FaultAttrError) as err:
        make_fault("stall", {"in": "tool_arguments", "after_fraction": 1.5})
    assert err.value.field == "after_fraction"


def test_after_a_stall_inside_the_arguments_the_rest_keeps_its_pace():
    """The fragments after the stall come at the upstream's pace, not in one burst: the last of
    them is due half a second after the first (20 tokens/s), however loaded the machine is."""
    import openai

    fault = {**STALL, "duration": 0.3}
    bg = tool_drive.start("chat", fault, tokens_per_second=20, tool_arguments_chars=80)
    try:
        client = openai.OpenAI(base_url=bg.urls["lane"] + "/v1", api_key="k", max_retries=0)
        times = []
        stream = client.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": "go"}],
            tools=[
                {"type": "function", "function": {"name": "read_file", "parameters": tool_drive.TOOLS["read_file"]}}
            ],
            stream=True,
        )
        for chunk in stream:
            deltas = chunk.choices[0].delta.tool_calls if chunk.choices else None
            if deltas and deltas[0].function and deltas[0].function.arguments:
                times.append(time.monotonic())
        gaps = [b - a for a, b in itertools.pairwise(times)]
        k = max(range(len(gaps)), key=gaps.__getitem__)
        assert gaps[k] >= 0.25, gaps  # the 0.3 s stall, inside the arguments (client-side clock)
        after = times[k + 1 :]
        # ~10 fragments at 20/s: a burst would span nothing; a late machine only spans more
        assert len(after) >= 2 and after[-1] - after[0] >= 0.2, gaps
    finally:
        tool_drive.stop(bg)
