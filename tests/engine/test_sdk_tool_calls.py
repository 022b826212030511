"""Agent loops through official SDKs against the simulator's tool-call script.

Each loop runs against a lane whose upstream is the simulator, and against a lane forwarding to
another lane over a real socket (a real upstream's events, classified by the dialect). It must
get exactly ``tool_steps`` answers of ``parallel_tool_calls`` calls to offered tools, with
arguments valid for their schema, then the canonical answer of the final conversation; and the
journal must say so: each answer's ``tool_calls``, each request's ``tool_history`` and the
``parent_fingerprint`` chain that ties the steps together.
"""

from __future__ import annotations

import dataclasses

import jsonschema
import pytest

from harness.canonical import canonical_text
from harness.journal import Journal
from tests.conftest import FAST, simulated_or_forwarded
from tests.engine import tool_loops

SCRIPT = dataclasses.replace(FAST, tool_steps=2, parallel_tool_calls=2)

LOOPS = {
    "chat": ("openai", tool_loops.chat),
    "chat_stream": ("openai", tool_loops.chat_stream),
    "chat_helper": ("openai", tool_loops.chat_helper),
    "responses": ("openai", tool_loops.responses),
    "responses_helper": ("openai", tool_loops.responses_helper),
    "anthropic": ("anthropic", tool_loops.anthropic_create),
    "anthropic_stream": ("anthropic", tool_loops.anthropic_stream),
    "gemini": ("gemini", tool_loops.gemini),
    "gemini_stream": ("gemini", tool_loops.gemini_stream),
    "litellm_openai": ("openai", tool_loops.litellm_openai),
    "litellm_openai_stream": ("openai", tool_loops.litellm_openai_stream),
    "litellm_anthropic_stream": ("anthropic", tool_loops.litellm_anthropic_stream),
}


@pytest.fixture(params=["simulator", "forwarded"])
def lane(request, start_lanes):
    def make(dialect: str) -> tuple[str, Journal, str]:
        return simulated_or_forwarded(start_lanes, request.param, dialect, SCRIPT)

    return make


@pytest.mark.parametrize("style", list(LOOPS))
def test_agent_loop(lane, style):
    dialect, loop = LOOPS[style]
    url, journal, name = lane(dialect)
    calls, text = loop(url)

    steps = SCRIPT.tool_steps
    assert len(calls) == steps * SCRIPT.parallel_tool_calls
    assert [n for n, _ in calls] == ["read_file", "run_tests"] * steps  # every offered tool in turn
    for n, args in calls:
        jsonschema.validate(args, tool_loops.TOOLS[n])

    assert journal.wait_for(steps + 1)
    attempts = journal.attempts(name)
    assert len(attempts) == steps + 1
    assert text == canonical_text(attempts[-1].fingerprint, SCRIPT.answer_tokens)
    for k, a in enumerate(attempts):
        assert a.outcome == "ok" and a.tools_offered == ["read_file", "run_tests"]
        if k < steps:
            assert [c["name"] for c in a.tool_calls] == ["read_file", "run_tests"]
            assert all(c["arguments_complete"] and c["arguments_valid"] and c["offered"] for c in a.tool_calls)
        else:
            assert a.tool_calls is None
        if k == 0:
            assert a.parent_fingerprint is None and a.tool_history is None
        else:
            assert a.parent_fingerprint == attempts[k - 1].fingerprint
            # the history holds every call made so far, by the same digests the answers had
            made = [c["args_sha"] for b in attempts[:k] for c in b.tool_calls]
            assert [h["args_sha"] for h in a.tool_history] == made
            assert all(h["has_result"] and h["arguments_valid"] for h in a.tool_history)


# -- the token limit in the middle of a tool call ------------------------------------------------
def _raw(dialect: str, stream: bool, max_tokens: int) -> tuple[str, dict]:
    from tests.dialects import test_tool_conversations as conv

    name = {"openai": "openai-chat", "responses": "openai-responses"}.get(dialect, dialect)
    body = conv.DIALECTS[name][3](0)
    path = conv.DIALECTS[name][1]
    if name == "gemini":
        path = "/v1beta/models/g:" + ("streamGenerateContent?alt=sse" if stream else "generateContent")
        body["generationConfig"] = {"maxOutputTokens": max_tokens}
    else:
        body["stream"] = stream
        body["max_output_tokens" if name == "openai-responses" else "max_tokens"] = max_tokens
    return path, body


@pytest.mark.parametrize("dialect", ["openai", "responses", "anthropic", "gemini"])
@pytest.mark.parametrize("stream", [True, False])
def test_token_limit_cuts_the_last_call(lane, dialect, stream):
    """``max_tokens`` that falls inside the second call's arguments: the first call is whole, the
    second is cut (Gemini, which sends calls whole, sends only the first), the finish says
    ``length``, and the journal says which call was cut."""
    import httpx

    url, journal, name = lane("openai" if dialect == "responses" else dialect)
    first = len(_first_call_fragments())
    path, body = _raw(dialect, stream, first + 3)
    r = httpx.post(url + path, json=body, headers={"x-api-key": "k"}, timeout=10)
    assert r.status_code == 200
    assert journal.wait_for(1)
    (a,) = journal.attempts(name)
    assert a.finish == "length" and a.outcome == "ok"
    calls = a.tool_calls
    if dialect == "gemini":
        assert [c["arguments_complete"] for c in calls] == [True]
        assert b"MAX_TOKENS" in r.content and r.content.count(b"functionCall") == 1
    else:
        assert [(c["name"], c["arguments_complete"], c["arguments_valid"]) for c in calls] == [
            ("read_file", True, True),
            ("run_tests", False, False),
        ]
        assert calls[1]["arguments_chars"] > 0


def _first_call_fragments() -> list[str]:
    """The argument fragments (tokens) of the first call the simulator makes in ``_raw``'s
    conversation: the same in every dialect, since the conversation is."""
    import json

    from harness.dialects.openai_chat import OpenAIChat
    from harness.simulator import Simulator
    from harness.toolcalls import fragments

    path, body = _raw("openai", False, 1000)
    req = OpenAIChat().parse_request("POST", path, {}, {}, json.dumps(body).encode())
    return fragments(Simulator(SCRIPT).tool_calls_for(req)[0].arguments)
