"""One agent loop written in all four dialects: the same logical conversation has the same
fingerprint, parent fingerprint and tool history everywhere, and each step has its own."""

from __future__ import annotations

import json
from typing import Any

import pytest

from harness.dialects.anthropic import AnthropicMessages
from harness.dialects.base import BadRequest, RequestInfo
from harness.dialects.gemini import Gemini
from harness.dialects.openai_chat import OpenAIChat
from harness.dialects.openai_responses import OpenAIResponses

SYSTEM = "You fix failing tests."
ASK = "Make the suite green."
WEATHER = {
    "type": "object",
    "properties": {"path": {"type": "string"}, "lines": {"type": "integer"}},
    "required": ["path"],
}
TESTS = {
    "type": "object",
    "properties": {"target": {"type": "string", "enum": ["unit", "e2e"]}},
    "required": ["target"],
}
TOOLS = [("read_file", WEATHER), ("run_tests", TESTS)]
# the step's tool calls (name, arguments) and their results; arguments written with different
# key order and spacing per dialect below, which must not matter
CALLS = [("read_file", {"path": "src/lane.py", "lines": 40}), ("run_tests", {"target": "unit"})]
RESULTS = ["def lane(): ...", "3 failed, 12 passed"]


def chat(steps: int) -> dict[str, Any]:
    msgs: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": ASK}]
    for s in range(steps):
        msgs.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": f"call_{s}{j}", "type": "function", "function": {"name": n, "arguments": json.dumps(a)}}
                    for j, (n, a) in enumerate(CALLS)
                ],
            }
        )
        msgs += [{"role": "tool", "tool_call_id": f"call_{s}{j}", "content": r} for j, r in enumerate(RESULTS)]
    tools = [{"type": "function", "function": {"name": n, "parameters": p}} for n, p in TOOLS]
    return {"model": "gpt-4o", "messages": msgs, "tools": tools}


def responses(steps: int) -> dict[str, Any]:
    items: list[dict[str, Any]] = [{"role": "user", "content": [{"type": "input_text", "text": ASK}]}]
    for s in range(steps):
        items += [
            {
                "type": "function_call",
                "id": f"fc_{s}{j}",
                "call_id": f"c{s}{j}",
                "name": n,
                "arguments": json.dumps(a, indent=1),
            }
            for j, (n, a) in enumerate(CALLS)
        ]
        items += [{"type": "function_call_output", "call_id": f"c{s}{j}", "output": r} for j, r in enumerate(RESULTS)]
    tools = [{"type": "function", "name": n, "parameters": p, "strict": False} for n, p in TOOLS]
    return {"model": "gpt-5", "instructions": SYSTEM, "input": items, "tools": tools}


def anthropic(steps: int) -> dict[str, Any]:
    msgs: list[dict[str, Any]] = [{"role": "user", "content": ASK}]
    for s in range(steps):
        msgs.append(
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": f"toolu_{s}{j}", "name": n, "input": dict(reversed(a.items()))}
                    for j, (n, a) in enumerate(CALLS)
                ],
            }
        )
        msgs.append(
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": f"toolu_{s}{j}", "content": [{"type": "text", "text": r}]}
                    for j, r in enumerate(RESULTS)
                ],
            }
        )
    tools = [{"name": n, "description": n, "input_schema": p} for n, p in TOOLS]
    return {"model": "claude-opus-5", "max_tokens": 256, "system": SYSTEM, "messages": msgs, "tools": tools}


def gemini(steps: int) -> dict[str, Any]:
    contents: list[dict[str, Any]] = [{"role": "user", "parts": [{"text": ASK}]}]
    for _ in range(steps):
        contents.append({"role": "model", "parts": [{"functionCall": {"name": n, "args": a}} for n, a in CALLS]})
        contents.append(
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": n, "response": {"result": r}}}
                    for (n, _), r in zip(CALLS, RESULTS, strict=True)
                ],
            }
        )
    decls = [{"name": n, "parameters": p} for n, p in TOOLS]
    return {
        "systemInstruction": {"parts": [{"text": SYSTEM}]},
        "contents": contents,
        "tools": [{"functionDeclarations": decls}],
    }


DIALECTS = {
    "openai-chat": (OpenAIChat(), "/v1/chat/completions", {}, chat),
    "openai-responses": (OpenAIResponses(), "/v1/responses", {}, responses),
    "anthropic": (AnthropicMessages(), "/v1/messages", {}, anthropic),
    "gemini": (Gemini(), "/v1beta/models/gemini-2.5-flash:streamGenerateContent", {"alt": "sse"}, gemini),
}


def parse(name: str, body: dict[str, Any]) -> RequestInfo:
    d, path, query, _ = DIALECTS[name]
    return d.parse_request("POST", path, query, {}, json.dumps(body).encode())


def step(name: str, steps: int) -> RequestInfo:
    return parse(name, DIALECTS[name][3](steps))


def _neutral(history: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    return [{k: v for k, v in h.items() if k != "id"} for h in history]


@pytest.mark.parametrize("steps", [0, 1, 2])
def test_each_step_fingerprints_the_same_in_every_dialect(steps):
    reqs = {n: step(n, steps) for n in DIALECTS}
    assert len({r.fingerprint for r in reqs.values()}) == 1, {n: r.fingerprint for n, r in reqs.items()}
    assert len({r.parent_fingerprint for r in reqs.values()}) == 1
    assert len({json.dumps(_neutral(r.tool_history)) for r in reqs.values()}) == 1
    assert {r.tool_rounds for r in reqs.values()} == {steps}
    assert {tuple(t.name for t in r.tools) for r in reqs.values()} == {("read_file", "run_tests")}


@pytest.mark.parametrize("name", list(DIALECTS))
def test_a_step_continues_the_one_before(name):
    first, second, third = (step(name, k) for k in range(3))
    assert len({first.fingerprint, second.fingerprint, third.fingerprint}) == 3
    assert first.parent_fingerprint is None and first.tool_history == ()
    assert second.parent_fingerprint == first.fingerprint
    assert third.parent_fingerprint == second.fingerprint
    hist = third.tool_history
    assert [h["name"] for h in hist] == ["read_file", "run_tests"] * 2
    assert all(h["has_result"] and h["arguments_valid"] and h["offered"] for h in hist)
    assert hist[0]["args_sha"] == hist[2]["args_sha"] != hist[1]["args_sha"]


def test_provider_ids_do_not_count():
    body = chat(1)
    for m in body["messages"]:
        for tc in m.get("tool_calls") or []:
            tc["id"] = "call_other_" + tc["id"]
        if m["role"] == "tool":
            m["tool_call_id"] = "call_other_" + m["tool_call_id"]
    assert parse("openai-chat", body).fingerprint == step("openai-chat", 1).fingerprint
    assert [h["id"] for h in parse("openai-chat", body).tool_history] == ["call_other_call_00", "call_other_call_01"]


def test_arguments_and_results_count():
    body = chat(1)
    body["messages"][2]["tool_calls"][0]["function"]["arguments"] = json.dumps({"path": "src/other.py"})
    assert parse("openai-chat", body).fingerprint != step("openai-chat", 1).fingerprint
    body = chat(1)
    body["messages"][3]["content"] = "another result"
    assert parse("openai-chat", body).fingerprint != step("openai-chat", 1).fingerprint


def test_history_says_what_was_sent_back():
    """A cut call's arguments, sent back with a result, are in the history as invalid; a call
    without its result says so (the evidence a partial-execution check needs)."""
    body = chat(1)
    body["messages"][2]["tool_calls"][0]["function"]["arguments"] = '{"path": "src/la'
    body["messages"][2]["tool_calls"][1]["function"]["arguments"] = "{}"  # required target missing
    body["messages"] = body["messages"][:4]  # only the first call's result
    hist = parse("openai-chat", body).tool_history
    assert [(h["arguments_valid"], h["has_result"]) for h in hist] == [(False, True), (False, False)]


def test_gemini_results_pair_by_name_and_the_anthropic_text_after_results():
    body = gemini(1)
    body["contents"][2]["parts"].reverse()  # results in another order: paired by name, not position
    assert all(h["has_result"] for h in parse("gemini", body).tool_history)
    body = anthropic(1)
    body["messages"][2]["content"].append({"type": "text", "text": "and now?"})
    req = parse("anthropic", body)
    assert req.parent_fingerprint is None  # a new user turn ends the step: it is not a plain continuation
    assert req.tool_rounds == 0


TOOL_CHOICES = [
    ("openai-chat", {"tool_choice": "none"}, ("none", None)),
    ("openai-chat", {"tool_choice": "required"}, ("required", None)),
    (
        "openai-chat",
        {"tool_choice": {"type": "function", "function": {"name": "run_tests"}}},
        ("required", "run_tests"),
    ),
    ("openai-responses", {"tool_choice": {"type": "function", "name": "run_tests"}}, ("required", "run_tests")),
    ("openai-responses", {"tool_choice": "auto"}, ("auto", None)),
    ("anthropic", {"tool_choice": {"type": "any"}}, ("required", None)),
    ("anthropic", {"tool_choice": {"type": "tool", "name": "run_tests"}}, ("required", "run_tests")),
    ("anthropic", {"tool_choice": {"type": "none"}}, ("none", None)),
    ("gemini", {"toolConfig": {"functionCallingConfig": {"mode": "NONE"}}}, ("none", None)),
    (
        "gemini",
        {"toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["run_tests"]}}},
        ("required", "run_tests"),
    ),
]


@pytest.mark.parametrize(("name", "extra", "want"), TOOL_CHOICES)
def test_tool_choice(name, extra, want):
    req = parse(name, {**DIALECTS[name][3](0), **extra})
    assert (req.tool_choice, req.forced_tool) == want


@pytest.mark.parametrize(
    ("name", "extra"),
    [
        ("openai-chat", {"parallel_tool_calls": False}),
        ("openai-responses", {"parallel_tool_calls": False}),
        ("anthropic", {"tool_choice": {"type": "auto", "disable_parallel_tool_use": True}}),
    ],
)
def test_parallel_calls_can_be_turned_off(name, extra):
    assert step(name, 0).parallel_tool_calls
    assert not parse(name, {**DIALECTS[name][3](0), **extra}).parallel_tool_calls


@pytest.mark.parametrize(
    ("name", "tools"),
    [
        ("openai-chat", [{"type": "function", "function": {"parameters": {}}}]),
        ("openai-chat", {"not": "a list"}),
        ("openai-responses", [{"type": "function", "parameters": {}}]),
        ("anthropic", [{"name": "x"}]),
        ("gemini", [{"functionDeclarations": [{"description": "no name"}]}]),
    ],
)
def test_malformed_tools_are_a_bad_request(name, tools):
    with pytest.raises(BadRequest):
        parse(name, {**DIALECTS[name][3](0), "tools": tools})


def test_built_in_tools_are_not_function_tools():
    body = {**responses(0), "tools": [{"type": "web_search"}, *responses(0)["tools"]]}
    assert [t.name for t in parse("openai-responses", body).tools] == ["read_file", "run_tests"]
    body = {**anthropic(0), "tools": [{"type": "web_search_20250305", "name": "web_search"}, *anthropic(0)["tools"]]}
    assert [t.name for t in parse("anthropic", body).tools] == ["read_file", "run_tests"]
