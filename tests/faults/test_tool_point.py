"""The point inside a tool call's arguments where stream_cut, stall and finish_length act: found
in every dialect's stream, exact to the character, live when the length is known and after
holding the call when it is not, with every event around it still the upstream's."""

from __future__ import annotations

import dataclasses
import json

import pytest

from harness.dialects import dialects_for
from harness.dialects.base import Event
from harness.faults.tools import ToolPoint, at_tool_arguments
from harness.journal import Journal
from harness.proxy.hooks import AttemptContext
from harness.simulator import SimSettings, Simulator
from harness.toolcalls import ToolCallLog

DIALECTS = {"chat": "openai-chat", "responses": "openai-responses", "anthropic": "anthropic", "gemini": "gemini"}
SIM = SimSettings(tokens_per_second=1e6, ttft=0.0, tool_steps=1, parallel_tool_calls=2, tool_arguments_chars=90)
SCHEMA = {
    "type": "object",
    "properties": {"path": {"type": "string"}, "note": {"type": "string"}},
    "required": ["path"],
}


def _request(kind: str):
    dialect = next(
        d
        for d in dialects_for("openai" if kind in ("chat", "responses") else DIALECTS[kind])
        if d.name == DIALECTS[kind]
    )
    if kind == "chat":
        body = {
            "model": "m",
            "stream": True,
            "messages": [{"role": "user", "content": "go"}],
            "tools": [{"type": "function", "function": {"name": "edit", "parameters": SCHEMA}}],
        }
        path, query = "/v1/chat/completions", {}
    elif kind == "responses":
        body = {
            "model": "m",
            "stream": True,
            "input": "go",
            "tools": [{"type": "function", "name": "edit", "parameters": SCHEMA}],
        }
        path, query = "/v1/responses", {}
    elif kind == "anthropic":
        body = {
            "model": "m",
            "stream": True,
            "max_tokens": 500,
            "messages": [{"role": "user", "content": "go"}],
            "tools": [{"name": "edit", "input_schema": SCHEMA}],
        }
        path, query = "/v1/messages", {}
    else:
        body = {
            "contents": [{"role": "user", "parts": [{"text": "go"}]}],
            "tools": [{"functionDeclarations": [{"name": "edit", "parameters": SCHEMA}]}],
        }
        path, query = "/v1beta/models/g:streamGenerateContent", {"alt": "sse"}
    return dialect, dialect.parse_request("POST", path, query, {}, json.dumps(body).encode())


def _strip_totals(ev: Event) -> Event:
    """The event as classified from a forwarded stream: no one knows the arguments' length."""
    return dataclasses.replace(ev, tools=tuple(d._replace(total=None) for d in ev.tools))


async def _run(kind: str, fraction: float, call: int, known: bool):
    dialect, req = _request(kind)
    sim = Simulator(SIM)
    r = await sim.respond(req, dialect)
    ctx = AttemptContext("lane", Journal().new_attempt("lane"), dialect, req, {})
    ctx._encoder = r.encoder

    async def source():
        async for batch in r.events:
            yield batch if known else [_strip_totals(e) for e in batch]

    before: list[Event] = []
    after: list[Event] = []
    points = []
    async for item in at_tool_arguments(ctx, source(), fraction, call):
        if isinstance(item, ToolPoint):
            points.append(item)
        else:
            (after if points else before).extend(item)
    return r.completion, before, after, points


def _args(events: list[Event]) -> list[str]:
    log = ToolCallLog()
    for ev in events:
        log.feed(ev.tools)
    return ["".join(c.parts) for c in log.calls]


@pytest.mark.parametrize("kind", list(DIALECTS))
@pytest.mark.parametrize("known", [True, False], ids=["live", "held"])
@pytest.mark.parametrize(("fraction", "call"), [(0.5, 0), (0.0, 0), (1.0, 0), (0.3, 1)])
async def test_point_inside_the_arguments(kind, known, fraction, call):
    completion, before, after, points = await _run(kind, fraction, call, known)
    assert len(points) == 1
    full = [c.arguments for c in completion.tool_calls]
    got = _args(before)
    if kind == "gemini":  # calls come whole: the point is before the chunk that carries them
        assert got == (full if fraction >= 1 else [])
        return
    want = round(fraction * len(full[call]))
    assert got[:call] == full[:call] and got[call] == full[call][:want] and len(got) == call + 1
    assert points[0].sent == want
    # nothing lost, nothing added: what comes after the point completes the arguments
    rest = "".join(d.arguments for e in after for d in e.tools if d.index == points[0].index and d.name is None)
    assert got[call] + rest == full[call]


async def test_an_answer_without_the_call_yields_no_point():
    completion, before, after, points = await _run("chat", 0.5, call=5, known=True)
    assert points == [] and after == [] and _args(before) == [c.arguments for c in completion.tool_calls]
