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


# -- OpenAI Responses --------------------------------------------------------------------------
def _responses_tools() -> list[dict[str, Any]]:
    return [{"type": "function", "name": n, "parameters": p, "strict": False} for n, p in TOOLS.items()]


def _responses_loop(url: str, ask: Callable[[openai.OpenAI, list[Any]], Any]) -> tuple[list[Call], str]:
    client = openai.OpenAI(base_url=url + "/v1", api_key="sk-secret", max_retries=0)
    items: list[Any] = [{"role": "user", "content": ASK}]
    seen: list[Call] = []
    for _ in range(MAX_STEPS):
        response = ask(client, items)
        assert response.status == "completed"
        calls = [o for o in response.output if o.type == "function_call"]
        if not calls:
            return seen, response.output_text
        items += response.output  # as the function-calling guide does
        for c in calls:
            args = json.loads(c.arguments)
            seen.append((c.name, args))
            items.append({"type": "function_call_output", "call_id": c.call_id, "output": result_for(c.name, args)})
    raise AssertionError("the loop never ended")


def responses(url: str) -> tuple[list[Call], str]:
    return _responses_loop(
        url, lambda client, items: client.responses.create(model="gpt-5", input=items, tools=_responses_tools())
    )


def responses_helper(url: str) -> tuple[list[Call], str]:
    """``client.responses.stream(...)``: the SDK checks every event's identity and builds the
    final response from ``response.completed``."""

    def ask(client: openai.OpenAI, items: list[Any]) -> Any:
        done: list[str] = []
        deltas = ""
        with client.responses.stream(model="gpt-5", input=items, tools=_responses_tools()) as s:
            for ev in s:
                if ev.type == "response.function_call_arguments.delta":
                    deltas += ev.delta
                elif ev.type == "response.function_call_arguments.done":
                    done.append(ev.arguments)
            final = s.get_final_response()
        assert "".join(done) == deltas == "".join(o.arguments for o in final.output if o.type == "function_call")
        return final

    return _responses_loop(url, ask)


# -- Anthropic ---------------------------------------------------------------------------------
def _anthropic_loop(url: str, stream: bool) -> tuple[list[Call], str]:
    import anthropic

    client = anthropic.Anthropic(base_url=url, api_key="sk-ant-secret", max_retries=0)
    tools = [{"name": n, "description": f"the {n} tool", "input_schema": p} for n, p in TOOLS.items()]
    messages: list[dict[str, Any]] = [{"role": "user", "content": ASK}]
    seen: list[Call] = []
    for _ in range(MAX_STEPS):
        kw: dict[str, Any] = {"model": "claude-opus-4-6", "max_tokens": 1024, "messages": messages, "tools": tools}
        if stream:
            partial: dict[int, str] = {}
            with client.messages.stream(**kw) as s:
                for ev in s:
                    if ev.type == "content_block_delta" and ev.delta.type == "input_json_delta":
                        partial[ev.index] = partial.get(ev.index, "") + ev.delta.partial_json
                msg = s.get_final_message()
            # the fragments, added up per block, are the arguments the final message parsed
            assert {i: json.loads(p) for i, p in partial.items()} == {
                i: b.input for i, b in enumerate(msg.content) if b.type == "tool_use"
            }
        else:
            msg = client.messages.create(**kw)
        uses = [b for b in msg.content if b.type == "tool_use"]
        if not uses:
            assert msg.stop_reason == "end_turn"
            return seen, "".join(b.text for b in msg.content if b.type == "text")
        assert msg.stop_reason == "tool_use"
        messages.append({"role": "assistant", "content": msg.content})
        results = []
        for b in uses:
            seen.append((b.name, b.input))
            results.append({"type": "tool_result", "tool_use_id": b.id, "content": result_for(b.name, b.input)})
        messages.append({"role": "user", "content": results})
    raise AssertionError("the loop never ended")


def anthropic_create(url: str) -> tuple[list[Call], str]:
    return _anthropic_loop(url, stream=False)


def anthropic_stream(url: str) -> tuple[list[Call], str]:
    return _anthropic_loop(url, stream=True)


# -- Gemini (google-genai) ---------------------------------------------------------------------
def _gemini_loop(url: str, stream: bool) -> tuple[list[Call], str]:
    from google import genai
    from google.genai import types

    client = genai.Client(api_key="AIza-secret", http_options=types.HttpOptions(base_url=url))
    # the OpenAPI ``parameters`` (sent with upper-case types) and the JSON Schema form, one each
    decls = [
        types.FunctionDeclaration(name=n, description=n, parameters_json_schema=p)
        if stream
        else types.FunctionDeclaration(name=n, description=n, parameters=types.Schema.model_validate(p))
        for n, p in TOOLS.items()
    ]
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=decls)],
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    contents: list[Any] = [types.Content(role="user", parts=[types.Part(text=ASK)])]
    seen: list[Call] = []
    for _ in range(MAX_STEPS):
        if stream:
            calls, text, finish = [], "", None
            for chunk in client.models.generate_content_stream(
                model="gemini-2.5-flash", contents=contents, config=config
            ):
                calls += chunk.function_calls or []
                text += chunk.text or ""
                finish = chunk.candidates[0].finish_reason or finish
        else:
            r = client.models.generate_content(model="gemini-2.5-flash", contents=contents, config=config)
            calls, text, finish = r.function_calls or [], r.text or "", r.candidates[0].finish_reason
        assert finish == types.FinishReason.STOP
        if not calls:
            return seen, text
        contents.append(types.Content(role="model", parts=[types.Part(function_call=fc) for fc in calls]))
        parts = []
        for fc in calls:
            seen.append((fc.name, dict(fc.args or {})))
            parts.append(
                types.Part.from_function_response(name=fc.name, response={"result": result_for(fc.name, fc.args)})
            )
        contents.append(types.Content(role="user", parts=parts))
    raise AssertionError("the loop never ended")


def gemini(url: str) -> tuple[list[Call], str]:
    return _gemini_loop(url, stream=False)


def gemini_stream(url: str) -> tuple[list[Call], str]:
    return _gemini_loop(url, stream=True)


# -- LiteLLM -----------------------------------------------------------------------------------
def _litellm_loop(model: str, api_base: str, stream: bool) -> tuple[list[Call], str]:
    import os

    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network at import
    import litellm

    litellm.suppress_debug_info = True
    messages: list[dict[str, Any]] = [{"role": "user", "content": ASK}]
    seen: list[Call] = []
    for _ in range(MAX_STEPS):
        kw: dict[str, Any] = {"model": model, "api_base": api_base, "api_key": "k", "messages": messages}
        r = litellm.completion(**kw, tools=_chat_tools(), stream=stream, max_tokens=1024)
        if stream:
            r = litellm.stream_chunk_builder(list(r), messages=messages)
        message = r.choices[0].message
        if not message.tool_calls:
            return seen, message.content
        assert r.choices[0].finish_reason == "tool_calls"
        messages.append(
            {
                "role": "assistant",
                "content": message.content,
                "tool_calls": [tc.model_dump() for tc in message.tool_calls],
            }
        )
        for tc in message.tool_calls:
            args = json.loads(tc.function.arguments)
            seen.append((tc.function.name, args))
            messages.append({"role": "tool", "tool_call_id": tc.id, "content": result_for(tc.function.name, args)})
    raise AssertionError("the loop never ended")


def litellm_openai(url: str) -> tuple[list[Call], str]:
    return _litellm_loop("openai/gpt-4o-mini", url + "/v1", stream=False)


def litellm_openai_stream(url: str) -> tuple[list[Call], str]:
    return _litellm_loop("openai/gpt-4o-mini", url + "/v1", stream=True)


def litellm_anthropic_stream(url: str) -> tuple[list[Call], str]:
    return _litellm_loop("anthropic/claude-opus-4-6", url, stream=True)
