"""Every dialect that says it carries tool calls writes the simulator's calls so that it reads
them back: streamed (each event classified as a real upstream's would be) and in a whole body.
A dialect added later (a cloud's variant) is checked by the same test without a line of its own."""

from __future__ import annotations

import dataclasses

import pytest

from harness.dialects import DIALECT_NAMES, dialects_for
from harness.dialects.base import RequestInfo
from harness.simulator import SimSettings, Simulator
from harness.toolcalls import ToolCallLog, ToolSpec, args_sha

SCHEMA = {"type": "object", "properties": {"path": {"type": "string"}, "n": {"type": "integer"}}, "required": ["path"]}
TOOLS = (ToolSpec("read", SCHEMA), ToolSpec("write", SCHEMA))
SIM = SimSettings(tokens_per_second=1e5, ttft=0.0, tool_steps=1, parallel_tool_calls=2, tool_arguments_chars=70)
CARRIERS = sorted(
    {(name, d.name): d for name in DIALECT_NAMES for d in dialects_for(name) if d.carries_tool_calls}.items()
)


def _request(dialect_name: str, stream: bool) -> RequestInfo:
    base = RequestInfo(dialect_name, "chat", "m", stream, "fp-tools", 5)
    return dataclasses.replace(base, tools=TOOLS)


@pytest.mark.parametrize(("key", "dialect"), CARRIERS, ids=[f"{a}:{b}" for (a, b), _ in CARRIERS])
async def test_streamed_calls_read_back(key, dialect):
    req = _request(dialect.name, True)
    r = await Simulator(SIM).respond(req, dialect)
    written, read = ToolCallLog(), ToolCallLog()
    decoder = dialect.stream_decoder()  # each its own framing: SSE, NDJSON, event-stream frames
    async for batch in r.events:
        for ev in batch:
            written.feed(ev.tools)
            for sse in decoder.feed(ev.data):
                read.feed(dialect.classify(sse).tools)
    want = [args_sha(c.arguments) for c in r.completion.tool_calls]
    for log in (written, read):
        calls = log.result(TOOLS, "stop")
        assert [c["args_sha"] for c in calls] == want
        assert all(c["arguments_complete"] and c["arguments_valid"] for c in calls)
        assert [c["name"] for c in calls] == ["read", "write"]


@pytest.mark.parametrize(("key", "dialect"), CARRIERS, ids=[f"{a}:{b}" for (a, b), _ in CARRIERS])
async def test_whole_body_calls_read_back(key, dialect):
    req = _request(dialect.name, False)
    sim = Simulator(SIM)
    completion = sim.completion_for(req)
    info = dialect.read_completion(dialect.render_completion(req, completion).body)
    log = ToolCallLog()
    log.feed(info.tools)
    calls = log.result(TOOLS, info.finish)
    assert [c["args_sha"] for c in calls] == [args_sha(c.arguments) for c in completion.tool_calls]
    assert all(c["arguments_complete"] for c in calls) and info.finish == "stop"
