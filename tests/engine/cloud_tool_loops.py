"""Agent loops through the Bedrock and Ollama clients, written as their documentation writes
them: offer tools, run the calls the answer asks for, send the results back, until the answer
is text. Each returns the calls it executed (name, parsed arguments) and the final text, as the
client parsed them (same contract as :mod:`tests.engine.tool_loops`)."""

from __future__ import annotations

import json
from typing import Any

import boto3
import ollama
from botocore.config import Config

from tests.engine.tool_loops import ASK, MAX_STEPS, TOOLS, Call, result_for

MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
#: ollama-python sends a tool's schema through its own ``Tool`` model, which keeps one level of
#: properties (type, items, description, enum) and drops the rest (nested properties, bounds):
#: the Ollama loops offer tools that survive it whole
OLLAMA_TOOLS = {
    "read_file": {
        "type": "object",
        "properties": {"path": {"type": "string"}, "lines": {"type": "integer"}},
        "required": ["path", "lines"],
    },
    "run_tests": {
        "type": "object",
        "properties": {
            "target": {"type": "string", "enum": ["unit", "e2e"]},
            "filters": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["target"],
    },
}


def bedrock_client(url: str) -> Any:
    """boto3's ``bedrock-runtime`` at the lane: fake region and credentials, no retries."""
    return boto3.client(
        "bedrock-runtime",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="AKIDROUTECHAOS",
        aws_secret_access_key="not-a-secret",
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}, read_timeout=30),
    )


# -- Converse ----------------------------------------------------------------------------------
def _tool_config() -> dict[str, Any]:
    return {
        "tools": [
            {"toolSpec": {"name": n, "description": f"the {n} tool", "inputSchema": {"json": p}}}
            for n, p in TOOLS.items()
        ]
    }


def _converse_stream_message(client: Any, **kw: Any) -> tuple[dict[str, Any], str]:
    """The message a ConverseStream carried, added up as the Converse docs' example does:
    ``toolUse.input`` fragments by content block, parsed once the block stops."""
    blocks: dict[int, dict[str, Any]] = {}
    stop = ""
    for ev in client.converse_stream(**kw)["stream"]:
        if "contentBlockStart" in ev:
            start = ev["contentBlockStart"]
            use = start["start"]["toolUse"]
            blocks[start["contentBlockIndex"]] = {"toolUse": {**use, "input": ""}}
        elif "contentBlockDelta" in ev:
            d = ev["contentBlockDelta"]
            block = blocks.setdefault(d["contentBlockIndex"], {"text": ""})
            if "toolUse" in d["delta"]:
                block["toolUse"]["input"] += d["delta"]["toolUse"]["input"]
            else:
                block["text"] += d["delta"].get("text", "")
        elif "contentBlockStop" in ev:
            block = blocks.get(ev["contentBlockStop"]["contentBlockIndex"])
            if block is not None and "toolUse" in block:
                block["toolUse"]["input"] = json.loads(block["toolUse"]["input"] or "{}")
        elif "messageStop" in ev:
            stop = ev["messageStop"]["stopReason"]
    return {"role": "assistant", "content": [blocks[i] for i in sorted(blocks)]}, stop


def _converse_loop(url: str, stream: bool) -> tuple[list[Call], str]:
    client = bedrock_client(url)
    messages: list[dict[str, Any]] = [{"role": "user", "content": [{"text": ASK}]}]
    seen: list[Call] = []
    for _ in range(MAX_STEPS):
        kw = {"modelId": MODEL, "messages": messages, "toolConfig": _tool_config()}
        if stream:
            message, stop = _converse_stream_message(client, **kw)
        else:
            r = client.converse(**kw)
            message, stop = r["output"]["message"], r["stopReason"]
        uses = [b["toolUse"] for b in message["content"] if "toolUse" in b]
        if not uses:
            assert stop == "end_turn"
            return seen, "".join(b.get("text", "") for b in message["content"])
        assert stop == "tool_use"
        messages.append(message)
        results = []
        for u in uses:
            seen.append((u["name"], u["input"]))
            text = result_for(u["name"], u["input"])
            results.append(
                {"toolResult": {"toolUseId": u["toolUseId"], "content": [{"text": text}], "status": "success"}}
            )
        messages.append({"role": "user", "content": results})
    raise AssertionError("the loop never ended")


def converse(url: str) -> tuple[list[Call], str]:
    return _converse_loop(url, stream=False)


def converse_stream(url: str) -> tuple[list[Call], str]:
    return _converse_loop(url, stream=True)


# -- InvokeModel with Anthropic's Messages body ------------------------------------------------
def _invoke_message(client: Any, body: dict[str, Any], stream: bool) -> dict[str, Any]:
    if not stream:
        r = client.invoke_model(modelId=MODEL, body=json.dumps(body), contentType="application/json")
        return json.loads(r["body"].read())
    message: dict[str, Any] = {}
    partial: dict[int, str] = {}
    r = client.invoke_model_with_response_stream(modelId=MODEL, body=json.dumps(body))
    for ev in r["body"]:
        inner = json.loads(ev["chunk"]["bytes"])
        t = inner["type"]
        if t == "message_start":
            message = {**inner["message"], "content": []}
        elif t == "content_block_start":
            message["content"].append(dict(inner["content_block"]))
        elif t == "content_block_delta":
            d = inner["delta"]
            if d["type"] == "input_json_delta":
                partial[inner["index"]] = partial.get(inner["index"], "") + d["partial_json"]
            elif d["type"] == "text_delta":
                message["content"][inner["index"]]["text"] += d["text"]
        elif t == "content_block_stop" and inner["index"] in partial:
            message["content"][inner["index"]]["input"] = json.loads(partial[inner["index"]])
        elif t == "message_delta":
            message["stop_reason"] = inner["delta"]["stop_reason"]
    return message


def _invoke_loop(url: str, stream: bool) -> tuple[list[Call], str]:
    client = bedrock_client(url)
    tools = [{"name": n, "description": f"the {n} tool", "input_schema": p} for n, p in TOOLS.items()]
    messages: list[dict[str, Any]] = [{"role": "user", "content": ASK}]
    seen: list[Call] = []
    for _ in range(MAX_STEPS):
        body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 1024, "messages": messages, "tools": tools}
        msg = _invoke_message(client, body, stream)
        uses = [b for b in msg["content"] if b["type"] == "tool_use"]
        if not uses:
            assert msg["stop_reason"] == "end_turn"
            return seen, "".join(b["text"] for b in msg["content"] if b["type"] == "text")
        assert msg["stop_reason"] == "tool_use"
        messages.append({"role": "assistant", "content": msg["content"]})
        results = []
        for b in uses:
            seen.append((b["name"], b["input"]))
            results.append(
                {"type": "tool_result", "tool_use_id": b["id"], "content": result_for(b["name"], b["input"])}
            )
        messages.append({"role": "user", "content": results})
    raise AssertionError("the loop never ended")


def invoke(url: str) -> tuple[list[Call], str]:
    return _invoke_loop(url, stream=False)


def invoke_stream(url: str) -> tuple[list[Call], str]:
    return _invoke_loop(url, stream=True)


# -- Ollama native ----------------------------------------------------------------------------
def ollama_tools() -> list[dict[str, Any]]:
    return [
        {"type": "function", "function": {"name": n, "description": f"the {n} tool", "parameters": p}}
        for n, p in OLLAMA_TOOLS.items()
    ]


def chat_with_ollama_tools(url: str) -> tuple[list[Call], str]:
    """The Chat Completions loop of :mod:`tests.engine.tool_loops` offering :data:`OLLAMA_TOOLS`."""
    import openai

    from tests.engine.tool_loops import _chat_loop

    def ask(client: openai.OpenAI, messages: list[dict[str, Any]]) -> Any:
        r = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=ollama_tools())
        return r.choices[0].message, r.choices[0].finish_reason

    return _chat_loop(url, ask)


def _ollama_loop(url: str, stream: bool) -> tuple[list[Call], str]:
    client = ollama.Client(host=url, timeout=30)
    messages: list[Any] = [{"role": "user", "content": ASK}]
    seen: list[Call] = []
    for _ in range(MAX_STEPS):
        kw = {"model": "llama3.1", "messages": messages, "tools": ollama_tools()}
        if stream:
            content, calls, reason = "", [], None
            for chunk in client.chat(**kw, stream=True):
                content += chunk.message.content or ""
                calls += chunk.message.tool_calls or []
                reason = chunk.done_reason or reason
            message = ollama.Message(role="assistant", content=content, tool_calls=calls or None)
        else:
            r = client.chat(**kw)
            message, reason = r.message, r.done_reason
        assert reason == "stop"
        if not message.tool_calls:
            return seen, message.content or ""
        messages.append(message)
        for tc in message.tool_calls:
            args = dict(tc.function.arguments)
            seen.append((tc.function.name, args))
            messages.append(
                {"role": "tool", "content": result_for(tc.function.name, args), "tool_name": tc.function.name}
            )
    raise AssertionError("the loop never ended")


def ollama_chat(url: str) -> tuple[list[Call], str]:
    return _ollama_loop(url, stream=False)


def ollama_stream(url: str) -> tuple[list[Call], str]:
    return _ollama_loop(url, stream=True)
