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


# -- what a fingerprint is: recorded cassettes and journals hold these values ---------------------

PINNED = {  # the values fingerprints have always had for these conversations
    "92f00bf043df766f": ("You route.", [("user", "What is a lane?")]),
    "09c1a53df503c0b5": ("", [("user", "lorem ipsum " * 1000)]),  # long, nothing to escape
    "9fa26b2f4ba28a77": ("sys\n", [("user", 'line one\n"two"\t\\ three\n' * 500), ("assistant", "ok")]),
    "2a823e2b9cd3d6d1": ("", [("user", "naïve café 😀 " * 600)]),
    "590c6db5ddc3c5b0": (
        "",
        [("user", "Weather?"), ("assistant", "Let me check.", (("weather", '{"city":"Paris"}'),)), ("tool", "18C")],
    ),
}


@pytest.mark.parametrize("expected", list(PINNED))
def test_a_fingerprint_keeps_the_value_it_always_had(expected):
    from harness.canonical import fingerprint

    system, turns = PINNED[expected]
    assert fingerprint(system, turns) == expected


def _reference(system: str, turns: list[tuple]) -> str:
    """What a fingerprint hashes, written the plain way: the normalised conversation as sorted,
    compact JSON (``ensure_ascii=False``), UTF-8, SHA-256, 16 hex digits."""
    import hashlib

    norm = {
        "system": system.strip(),
        "turns": [[t[0], t[1].strip()] if len(t) < 3 else [t[0], t[1].strip(), [list(c) for c in t[2]]] for t in turns],
    }
    blob = json.dumps(norm, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


_PIECES = ["a", " ", "\n", '"', "\\", "\t", "\r", "\b", "\x00", "\x1f", "\x7f", "é", "😀", "\u2028", "[", "}"]


def test_fingerprint_and_its_parent_are_what_the_plain_encoding_hashes():
    """Long texts are hashed without the encoder when nothing in them needs escaping, and a
    parent is hashed in the same pass: neither may change a value (texts long and short, with
    and without every character JSON escapes, tool calls with any JSON arguments)."""
    import random

    from harness.canonical import fingerprint, fingerprints

    rnd = random.Random(7)

    def text() -> str:
        n = rnd.choice([0, 1, 7, 100, 5000])
        if rnd.random() < 0.4:  # long and plain: the path that skips the encoder
            return ("lorem ipsum " * (n // 12 + 1))[:n] + rnd.choice(["", "", " ", "\n", '"', "\x01", "é"])
        return "".join(rnd.choice(_PIECES) for _ in range(n))

    for _ in range(400):
        turns: list[tuple] = []
        for _ in range(rnd.randint(0, 5)):
            if rnd.random() < 0.3:
                calls = tuple(
                    (text(), rnd.choice([text(), 1, None, {"b": [2.5], "a": "x"}])) for _ in range(rnd.randint(0, 3))
                )
                turns.append(("assistant", text(), calls))
            else:
                turns.append((rnd.choice(["user", "assistant", "tool"]), text()))
        system = text()
        assert fingerprint(system, turns) == _reference(system, turns)
        cut = rnd.randint(0, len(turns))
        assert fingerprints(system, turns, cut) == (_reference(system, turns), _reference(system, turns[:cut]))


def test_key_order_and_whitespace_of_the_body_do_not_count():
    """A fingerprint is of the conversation, not of the body's bytes: the same request written
    with its keys in another order, or indented, is the same conversation."""
    big = "lorem ipsum " * 2000
    body = {"model": "gpt-4o", "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": big}]}
    again = {"messages": [{"content": SYSTEM, "role": "system"}, {"content": big, "role": "user"}], "model": "gpt-4o"}
    prints = {
        OpenAIChat().parse_request("POST", "/v1/chat/completions", {}, {}, raw).fingerprint
        for raw in (json.dumps(body).encode(), json.dumps(again, indent=2).encode(), json.dumps(again).encode())
    }
    assert len(prints) == 1
