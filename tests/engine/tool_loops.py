"""Agent loops written the way each SDK's documentation writes them: offer tools, run the tool
calls the answer asks for, send the results back, until the answer is text. Each returns the
calls it executed (name, parsed arguments) and the final text, as the SDK parsed them."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import openai

TOOLS = {
    "read_file": {
        "type": "object",
        "properties": {
            "path": {"type": "string"},
            "span": {
                "type": "object",
                "properties": {"start": {"type": "integer", "minimum": 1}, "end": {"type": "integer"}},
                "required": ["start", "end"],
            },
        },
        "required": ["path", "span"],
    },
    "run_tests": {
        "type": "object",
        "properties": {
            "target": {"type": "string", "enum": ["unit", "e2e"]},
            "filters": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        },
        "required": ["target"],
    },
}
ASK = "Make the failing suite green."
MAX_STEPS = 6

Call = tuple[str, dict[str, Any]]
Loop = Callable[[str], tuple[list[Call], str]]


def result_for(name: str, args: dict[str, Any]) -> str:
    """What the fake tool returns: deterministic, so every dialect sends back the same text."""
    return f"{name} ok: {json.dumps(args, sort_keys=True)}"


# -- OpenAI Chat Completions -------------------------------------------------------------------
def _chat_tools() -> list[dict[str, Any]]:
    return [{"type": "function", "function": {"name": n, "parameters": p}} for n, p in TOOLS.items()]


def _chat_loop(url: str, ask: Callable[[openai.OpenAI, list[dict[str, Any]]], Any]) -> tuple[list[Call], str]:
    client = openai.OpenAI(base_url=url + "/v1", api_key="sk-secret", max_retries=0)
    messages: list[dict[str, Any]] = [{"role": "user", "content": ASK}]
    seen: list[Call] = []
    for _ in range(MAX_STEPS):
        message, finish = ask(client, messages)
        if not message.tool_calls:
            assert finish == "stop"
            return seen, message.content
        assert finish == "tool_calls"
        messages.append(message.model_dump(exclude_none=True, include={"role", "content", "tool_calls"}))
        for tc in message.tool_calls:
            args = json.loads(tc.function.arguments)
            seen.append((tc.function.name, args))
            messages.append({"role": "tool", "tool_call_id": tc.id, "content": result_for(tc.function.name, args)})
    raise AssertionError("the loop never ended")


def chat(url: str) -> tuple[list[Call], str]:
    def ask(client: openai.OpenAI, messages: list[dict[str, Any]]) -> Any:
        r = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=_chat_tools())
        return r.choices[0].message, r.choices[0].finish_reason

    return _chat_loop(url, ask)


def chat_stream(url: str) -> tuple[list[Call], str]:
    """Deltas added up by hand, as most agents do: arguments arrive in fragments by ``index``."""

    def ask(client: openai.OpenAI, messages: list[dict[str, Any]]) -> Any:
        from openai.types.chat import ChatCompletionMessage

        text, calls, finish = "", {}, None
        for chunk in client.chat.completions.create(
            model="gpt-4o-mini", messages=messages, tools=_chat_tools(), stream=True
        ):
            choice = chunk.choices[0]
            text += choice.delta.content or ""
            for d in choice.delta.tool_calls or []:
                slot = calls.setdefault(
                    d.index, {"id": "", "type": "function", "function": {"name": "", "arguments": ""}}
                )
                slot["id"] = d.id or slot["id"]
                if d.function is not None:
                    slot["function"]["name"] += d.function.name or ""
                    slot["function"]["arguments"] += d.function.arguments or ""
            finish = choice.finish_reason or finish
        msg = {"role": "assistant", "content": text or None, "tool_calls": [calls[i] for i in sorted(calls)] or None}
        return ChatCompletionMessage.model_validate(msg), finish

    return _chat_loop(url, ask)


def chat_helper(url: str) -> tuple[list[Call], str]:
    """``client.chat.completions.stream(...)``: the SDK adds the deltas up itself."""

    def ask(client: openai.OpenAI, messages: list[dict[str, Any]]) -> Any:
        done_events = []
        with client.chat.completions.stream(model="gpt-4o-mini", messages=messages, tools=_chat_tools()) as s:
            for ev in s:
                if ev.type == "tool_calls.function.arguments.done":
                    done_events.append(ev.name)
            final = s.get_final_completion()
        choice = final.choices[0]
        assert done_events == [tc.function.name for tc in choice.message.tool_calls or []]
        return choice.message, choice.finish_reason

    return _chat_loop(url, ask)
