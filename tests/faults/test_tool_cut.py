"""The token limit in the middle of a tool call, written by a fault: what each SDK parses, and what
the journal records, against the simulator and through a forwarding lane."""

from __future__ import annotations

import json
from typing import Any

import pytest

from harness.faults.tools import cut_body_in_tool_arguments, cut_in_tool_arguments
from harness.lanes import BackgroundLanes, LaneSet
from harness.profile import profile_from_dict
from harness.proxy.hooks import AttemptContext, Intervention
from tests.faults import tool_drive
from tests.faults.tool_drive import SIM, SURFACES, dialect_of


class _Cut(Intervention):
    name = "cut_in_tool_arguments"

    def __init__(self, fraction: float) -> None:
        self.fraction = fraction

    async def upstream_response(self, ctx: AttemptContext, response: Any) -> None:
        cut_body_in_tool_arguments(ctx, response, self.fraction)

    def transform(self, ctx, events):  # type: ignore[override]
        return cut_in_tool_arguments(ctx, events, self.fraction)


class _Hook:
    def __init__(self, fraction: float) -> None:
        self.fraction = fraction

    def decide(self, ctx: AttemptContext) -> Intervention:
        return _Cut(self.fraction)


@pytest.fixture(params=["simulator", "forwarded"])
def lane(request):
    started: list[BackgroundLanes] = []

    def make(surface: str, fraction: float) -> BackgroundLanes:
        d = dialect_of(surface)
        spec: dict[str, Any] = {"dialect": d, "simulator": SIM}
        if request.param == "forwarded":
            origin = BackgroundLanes(LaneSet(profile_from_dict({"lanes": {"origin": spec}}))).start()
            started.append(origin)
            spec = {"dialect": d, "upstream": origin.urls["origin"]}
        bg = BackgroundLanes(LaneSet(profile_from_dict({"lanes": {"lane": spec}}), faults=_Hook(fraction))).start()
        started.append(bg)
        return bg

    yield make
    for bg in reversed(started):
        bg.stop()


@pytest.mark.parametrize("surface", SURFACES)
def test_token_limit_halfway_through_the_arguments(lane, surface):
    bg = lane(surface, 0.5)
    seen = tool_drive.step(surface, bg.urls["lane"])
    assert bg.journal.wait_for(1)
    (a,) = bg.journal.attempts("lane")
    assert a.finish == "length" and a.outcome == "ok"
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
