"""Tool-call faults on Bedrock (Converse, ConverseStream, InvokeModel and its stream with Claude's
body) and Ollama native (``/api/chat``, streamed and not), as boto3 and ollama-python see them
and as the journal records them; on a lane on the simulator and on one forwarding to another
lane, so each fault acts on a real upstream's frames and lines as on the simulator's.

Ollama parses calls out of the model's text itself and sends each whole: a call that is no JSON
object never becomes one (its text is the answer's content), and a call cut inside its
arguments is not sent at all, as Gemini does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import ollama
import pytest

from harness.lanes import BackgroundLanes, LaneSet
from harness.profile import profile_from_dict
from tests.engine.cloud_tool_loops import MODEL, bedrock_client

SCHEMA = {
    "type": "object",
    "properties": {"path": {"type": "string"}, "lines": {"type": "integer"}},
    "required": ["path", "lines"],
}
ASK = "Read the failing test."
SIM = {"tokens_per_second": 2000, "ttft": 0.0, "tool_steps": 1, "tool_arguments_chars": 60}
SURFACES = ["converse", "converse_stream", "invoke", "invoke_stream", "ollama", "ollama_stream"]
STREAMS = [s for s in SURFACES if s.endswith("_stream")]


def _dialect(surface: str) -> str:
    return "ollama" if surface.startswith("ollama") else "bedrock"


@pytest.fixture(params=["simulator", "forwarded"])
def lane(request):
    started: list[BackgroundLanes] = []

    def make(surface: str, fault: dict[str, Any] | None) -> BackgroundLanes:
        d = _dialect(surface)
        faults = [{**fault, "lane": "lane"}] if fault else []
        if request.param == "simulator":
            spec = {"lane": {"dialect": d, "simulator": SIM}}
        else:
            origin = BackgroundLanes(
                LaneSet(profile_from_dict({"lanes": {"origin": {"dialect": d, "simulator": SIM}}}))
            )
            started.append(origin.start())
            spec = {"lane": {"dialect": d, "upstream": origin.urls["origin"]}}
        bg = BackgroundLanes(LaneSet(profile_from_dict({"lanes": spec, "faults": faults}))).start()
        started.append(bg)
        return bg

    yield make
    for bg in reversed(started):
        bg.stop()


@dataclass
class Step:
    calls: list[tuple[str, str]] = field(default_factory=list)  # (name, arguments as the wire had them)
    finish: str | None = None
    text: str = ""
    exc: BaseException | None = None


def step(surface: str, url: str) -> Step:
    out = Step()
    try:
        _DRIVERS[surface](url, out)
    except Exception as exc:  # what the client raised is part of what it saw
        out.exc = exc
    return out


def _converse(url: str, out: Step, stream: bool) -> None:
    client = bedrock_client(url)
    kw = {
        "modelId": MODEL,
        "messages": [{"role": "user", "content": [{"text": ASK}]}],
        "toolConfig": {"tools": [{"toolSpec": {"name": "read_file", "inputSchema": {"json": SCHEMA}}}]},
    }
    if not stream:
        r = client.converse(**kw)
        out.finish = r["stopReason"]
        for b in r["output"]["message"]["content"]:
            if "toolUse" in b:
                out.calls.append((b["toolUse"]["name"], json.dumps(b["toolUse"]["input"])))
            out.text += b.get("text", "")
        return
    calls: dict[int, list[str]] = {}
    try:
        _read_converse_stream(client.converse_stream(**kw)["stream"], out, calls)
    finally:  # what arrived before the client raised is what it saw
        out.calls = [(n, a) for n, a in (calls[i] for i in sorted(calls))]


def _read_converse_stream(stream: Any, out: Step, calls: dict[int, list[str]]) -> None:
    for ev in stream:
        if "contentBlockStart" in ev:
            s = ev["contentBlockStart"]
            calls[s["contentBlockIndex"]] = [s["start"]["toolUse"]["name"], ""]
        elif "contentBlockDelta" in ev:
            d = ev["contentBlockDelta"]
            if "toolUse" in d["delta"]:
                calls[d["contentBlockIndex"]][1] += d["delta"]["toolUse"]["input"]
            out.text += d["delta"].get("text", "")
        elif "messageStop" in ev:
            out.finish = ev["messageStop"]["stopReason"]


def _invoke(url: str, out: Step, stream: bool) -> None:
    client = bedrock_client(url)
    body = json.dumps(
        {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 512,
            "messages": [{"role": "user", "content": ASK}],
            "tools": [{"name": "read_file", "input_schema": SCHEMA}],
        }
    )
    if not stream:
        msg = json.loads(client.invoke_model(modelId=MODEL, body=body)["body"].read())
        out.finish = msg["stop_reason"]
        out.calls = [(b["name"], json.dumps(b["input"])) for b in msg["content"] if b["type"] == "tool_use"]
        return
    calls: dict[int, list[str]] = {}
    try:
        _read_invoke_stream(client.invoke_model_with_response_stream(modelId=MODEL, body=body)["body"], out, calls)
    finally:
        out.calls = [(n, a) for n, a in (calls[i] for i in sorted(calls))]


def _read_invoke_stream(stream: Any, out: Step, calls: dict[int, list[str]]) -> None:
    for ev in stream:
        inner = json.loads(ev["chunk"]["bytes"])
        if inner["type"] == "content_block_start" and inner["content_block"]["type"] == "tool_use":
            calls[inner["index"]] = [inner["content_block"]["name"], ""]
        elif inner["type"] == "content_block_delta" and inner["delta"]["type"] == "input_json_delta":
            calls[inner["index"]][1] += inner["delta"]["partial_json"]
        elif inner["type"] == "message_delta":
            out.finish = inner["delta"]["stop_reason"]


def _ollama(url: str, out: Step, stream: bool) -> None:
    client = ollama.Client(host=url, timeout=30)
    tools = [{"type": "function", "function": {"name": "read_file", "parameters": SCHEMA}}]
    kw = {"model": "llama3.1", "messages": [{"role": "user", "content": ASK}], "tools": tools}
    chunks = list(client.chat(**kw, stream=True)) if stream else [client.chat(**kw)]
    for c in chunks:
        out.text += c.message.content or ""
        out.calls += [(tc.function.name, json.dumps(dict(tc.function.arguments))) for tc in c.message.tool_calls or []]
        out.finish = c.done_reason or out.finish


_DRIVERS = {
    "converse": lambda url, out: _converse(url, out, False),
    "converse_stream": lambda url, out: _converse(url, out, True),
    "invoke": lambda url, out: _invoke(url, out, False),
    "invoke_stream": lambda url, out: _invoke(url, out, True),
    "ollama": lambda url, out: _ollama(url, out, False),
    "ollama_stream": lambda url, out: _ollama(url, out, True),
}


def _attempt(bg: BackgroundLanes) -> Any:
    assert bg.journal.wait_for(1)
    (a,) = bg.journal.attempts("lane")
    return a


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


@pytest.mark.parametrize("surface", SURFACES)
def test_no_fault_baseline(lane, surface):
    bg = lane(surface, None)
    seen = step(surface, bg.urls["lane"])
    assert seen.exc is None
    ((name, args),) = seen.calls
    assert name == "read_file" and set(_json(args)) == {"path", "lines"}
    assert seen.finish == ("stop" if surface.startswith("ollama") else "tool_use")
    (call,) = _attempt(bg).tool_calls
    assert call["arguments_complete"] and call["arguments_valid"] and call["offered"]


@pytest.mark.parametrize("surface", SURFACES)
def test_invalid_json_arguments(lane, surface):
    bg = lane(surface, {"fault": "malformed_tool_arguments", "kind": "invalid_json"})
    seen = step(surface, bg.urls["lane"])
    a = _attempt(bg)
    assert seen.exc is None and a.fault is not None and a.fault["name"] == "malformed_tool_arguments"
    if surface.startswith("ollama"):
        # Ollama never makes a call of text that is no JSON object: the text is the answer
        assert seen.calls == [] and seen.finish == "stop"
        assert seen.text.startswith('{"name": "read_file", "arguments": {') and seen.text.endswith(",}}")
        assert a.tool_calls is None and a.outcome == "ok"
        return
    ((name, args),) = seen.calls
    if surface in ("converse", "invoke"):
        assert (name, args) == ("read_file", "{}")  # a whole body always carries an object
    else:
        assert name == "read_file" and _json(args) is None and args.rstrip().endswith(",}")
    (call,) = a.tool_calls
    assert call["arguments_complete"] and not call["arguments_valid"] and call["offered"]
    assert a.outcome == "ok"


@pytest.mark.parametrize("surface", SURFACES)
def test_missing_required_property(lane, surface):
    bg = lane(surface, {"fault": "malformed_tool_arguments", "kind": "missing_required"})
    seen = step(surface, bg.urls["lane"])
    assert seen.exc is None
    ((name, args),) = seen.calls
    assert name == "read_file" and set(_json(args)) == {"lines"}  # "path" is the first required
    (call,) = _attempt(bg).tool_calls
    assert call["arguments_complete"] and not call["arguments_valid"] and call["offered"]


@pytest.mark.parametrize("surface", SURFACES)
def test_call_to_a_tool_not_offered(lane, surface):
    bg = lane(surface, {"fault": "unoffered_tool_call", "tool": "delete_branch"})
    seen = step(surface, bg.urls["lane"])
    assert seen.exc is None
    ((name, args),) = seen.calls
    assert name == "delete_branch" and set(_json(args)) == {"path", "lines"}
    (call,) = _attempt(bg).tool_calls
    assert call["name"] == "delete_branch" and not call["offered"] and call["arguments_complete"]


@pytest.mark.parametrize("surface", STREAMS)
def test_stream_cut_inside_the_arguments(lane, surface):
    """The connection closes halfway through the call's arguments, with no stop event: the
    client is left with half a call (Bedrock) or none (Ollama sends calls whole), and the
    journal says the call never completed."""
    bg = lane(surface, {"fault": "stream_cut", "in": "tool_arguments", "after_fraction": 0.5, "mode": "fin"})
    seen = step(surface, bg.urls["lane"])
    a = _attempt(bg)
    assert a.fault is not None and a.fault["name"] == "stream_cut"
    assert seen.finish is None  # no messageStop / message_delta / done line arrived
    if surface.startswith("ollama"):
        assert seen.calls == [] and a.tool_calls is None
        return
    # botocore raises from the iterator: the chunked body ended before its last chunk
    assert seen.exc is not None and "ended prematurely" in str(seen.exc)
    ((name, args),) = seen.calls
    assert name == "read_file" and _json(args) is None and 0 < len(args)
    (call,) = a.tool_calls
    assert not call["arguments_complete"] and not call["arguments_valid"]
    assert call["arguments_chars"] == len(args)


@pytest.mark.parametrize("surface", SURFACES)
def test_token_limit_inside_the_arguments(lane, surface):
    """``finish_length`` halfway through the call: Bedrock's stop reason is ``max_tokens`` with
    half the input (an empty object in a whole body), Ollama's ``done_reason`` is ``length``
    with no call at all; the journal's finish is ``length`` either way."""
    bg = lane(surface, {"fault": "finish_length", "in": "tool_arguments", "after_fraction": 0.5})
    seen = step(surface, bg.urls["lane"])
    a = _attempt(bg)
    assert seen.exc is None and a.finish == "length" and a.outcome == "ok"
    if surface.startswith("ollama"):
        assert seen.calls == [] and seen.finish == "length" and a.tool_calls is None
        return
    assert seen.finish == "max_tokens"
    ((name, args),) = seen.calls
    assert name == "read_file"
    if surface in ("converse", "invoke"):
        assert args == "{}"
    else:
        assert _json(args) is None and len(args) > 0
    (call,) = a.tool_calls
    assert not call["arguments_complete"] and not call["arguments_valid"]
