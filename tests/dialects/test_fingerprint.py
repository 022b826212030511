"""The same conversation has the same fingerprint in every dialect, so a call that falls back from
one provider to another is still recognised as one call."""

from __future__ import annotations

import json

import pytest

from harness.dialects.anthropic import AnthropicMessages
from harness.dialects.gemini import Gemini
from harness.dialects.openai_chat import OpenAIChat
from harness.dialects.openai_responses import OpenAIResponses

SYSTEM = "You are a routing assistant."
TURNS = [("user", "What is a lane?"), ("assistant", "A named route."), ("user", "And a fault, in one line?")]


def chat(model: str = "gpt-4o") -> str:
    messages = [{"role": "system", "content": SYSTEM}]
    messages += [{"role": r, "content": [{"type": "text", "text": t}] if r == "user" else t} for r, t in TURNS]
    body = {"model": model, "messages": messages, "stream": True}
    return OpenAIChat().parse_request("POST", "/v1/chat/completions", {}, {}, json.dumps(body).encode()).fingerprint


def responses() -> str:
    items = [
        {
            "type": "message",
            "role": r,
            "content": [{"type": "input_text" if r == "user" else "output_text", "text": t}],
        }
        for r, t in TURNS
    ]
    body = {"model": "gpt-5", "instructions": SYSTEM, "input": items}
    return OpenAIResponses().parse_request("POST", "/v1/responses", {}, {}, json.dumps(body).encode()).fingerprint


def anthropic() -> str:
    body = {
        "model": "claude-opus-5",
        "max_tokens": 64,
        "system": [{"type": "text", "text": SYSTEM}],
        "messages": [{"role": r, "content": [{"type": "text", "text": t}]} for r, t in TURNS],
    }
    return AnthropicMessages().parse_request("POST", "/v1/messages", {}, {}, json.dumps(body).encode()).fingerprint


def gemini() -> str:
    body = {
        "systemInstruction": {"parts": [{"text": SYSTEM}]},
        "contents": [{"role": "model" if r == "assistant" else r, "parts": [{"text": t}]} for r, t in TURNS],
    }
    path = "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    return Gemini().parse_request("POST", path, {"alt": "sse"}, {}, json.dumps(body).encode()).fingerprint


def test_same_conversation_same_fingerprint_everywhere():
    prints = {
        "openai-chat": chat(),
        "openai-responses": responses(),
        "anthropic": anthropic(),
        "gemini": gemini(),
    }
    assert len(set(prints.values())) == 1, prints
    assert chat("another-model") == prints["openai-chat"]  # the model is not part of the call


# a tool round trip: the user asks, the assistant says something and calls a tool, the tool answers
ASK, SAY, OUT = "Weather in Paris?", "Let me check.", "18C and sunny"
TOOL_BODIES = {
    "openai-chat": (
        OpenAIChat(),
        "/v1/chat/completions",
        {},
        {
            "model": "gpt-4o",
            "messages": [
                {"role": "user", "content": ASK},
                {
                    "role": "assistant",
                    "content": SAY,
                    "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": OUT},
            ],
        },
    ),
    "openai-responses": (
        OpenAIResponses(),
        "/v1/responses",
        {},
        {
            "model": "gpt-5",
            "input": [
                {"role": "user", "content": ASK},
                {"type": "reasoning", "id": "rs_1", "summary": []},
                {"role": "assistant", "content": SAY},
                {"type": "function_call", "call_id": "c1", "name": "weather", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c1", "output": OUT},
            ],
        },
    ),
    "anthropic": (
        AnthropicMessages(),
        "/v1/messages",
        {},
        {
            "model": "claude-opus-5",
            "max_tokens": 64,
            "messages": [
                {"role": "user", "content": ASK},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "text", "text": SAY},
                        {"type": "tool_use", "id": "t1", "name": "weather", "input": {}},
                    ],
                },
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": OUT}]},
            ],
        },
    ),
    "gemini": (
        Gemini(),
        "/v1beta/models/gemini-2.5-flash:generateContent",
        {},
        {
            "contents": [
                {"role": "user", "parts": [{"text": ASK}]},
                {
                    "role": "model",
                    "parts": [{"text": SAY}, {"functionCall": {"name": "weather", "args": {}}}],
                },
                {
                    "role": "user",
                    "parts": [{"functionResponse": {"name": "weather", "response": {"output": OUT}}}],
                },
            ]
        },
    ),
}


@pytest.mark.parametrize("name", list(TOOL_BODIES))
def test_tool_round_trip_same_fingerprint(name):
    expected = {
        n: d.parse_request("POST", p, q, {}, json.dumps(b).encode()).fingerprint
        for n, (d, p, q, b) in TOOL_BODIES.items()
    }
    assert expected[name] == expected["openai-chat"], expected


def test_different_conversations_differ():
    body = {
        "model": "claude-opus-5",
        "max_tokens": 8,
        "messages": [{"role": "user", "content": "something else"}],
    }
    other = AnthropicMessages().parse_request("POST", "/v1/messages", {}, {}, json.dumps(body).encode())
    assert other.fingerprint != anthropic()
