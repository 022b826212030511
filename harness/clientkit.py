"""A tiny dialect-aware HTTP client: build a request for any dialect and read its answer.

It is what the demo, the examples and the Gemini tests use (there is no official SDK in the test
extras for every provider). It reads streams with the same decoders (each dialect's framing: SSE,
Ollama's NDJSON, Bedrock's event-stream frames) and classifiers as the proxy, so "the text
received" means the same thing everywhere. Besides the lane dialect names, ``ollama-native`` asks
an ``ollama`` lane through ``/api/chat``; ``azure`` uses a deployment path, ``bedrock`` Converse,
``vertex`` Gemini on Vertex AI.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from .dialects import dialects_for
from .dialects.base import EventKind

__all__ = ["Answer", "build_request", "complete", "dialect_for", "stream"]

DEFAULT_MODELS = {
    "openai": "gpt-4o-mini",
    "openai-chat": "gpt-4o-mini",
    "openai-responses": "gpt-4o-mini",
    "vllm": "meta-llama/Llama-3.1-8B-Instruct",
    "ollama": "llama3.1",
    "anthropic": "claude-opus-4-6",
    "gemini": "gemini-2.5-flash",
    "azure": "gpt-4o",
    "openrouter": "openai/gpt-4o",
    "bedrock": "anthropic.claude-3-5-sonnet-20240620-v1:0",
    "vertex": "gemini-2.5-flash",
    "ollama-native": "llama3.1",
}
#: request forms that are not lane dialect names: the lane dialect that serves them
_LANE_DIALECT = {"ollama-native": "ollama"}
#: the Vertex project and region the requests name (a lane accepts any)
VERTEX_RESOURCE = "projects/routechaos/locations/us-central1"


@dataclass(slots=True)
class Answer:
    """What came back: text, whether the dialect's terminator arrived, and any error."""

    status: int
    text: str = ""
    complete: bool = False
    error: dict[str, Any] | None = None
    events: list[str] = field(default_factory=list)


def build_request(
    dialect: str, prompt: str, *, model: str | None = None, stream: bool = True, system: str = ""
) -> tuple[str, dict[str, Any]]:
    """``(path, json_body)`` for one user turn in ``dialect``."""
    model = model or DEFAULT_MODELS.get(dialect, "model")
    if dialect in ("openai", "openai-chat", "vllm", "ollama"):
        msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
        body = {"model": model, "messages": msgs, "stream": stream}
        if stream:
            body["stream_options"] = {"include_usage": True}  # usage is only sent when asked for
        return "/v1/chat/completions", body
    if dialect == "openai-responses":
        body: dict[str, Any] = {"model": model, "input": prompt, "stream": stream}
        if system:
            body["instructions"] = system
        return "/v1/responses", body
    if dialect == "anthropic":
        body = {"model": model, "max_tokens": 1024, "messages": [{"role": "user", "content": prompt}], "stream": stream}
        if system:
            body["system"] = system
        return "/v1/messages", body
    if dialect in ("gemini", "vertex"):
        body = {"contents": [{"role": "user", "parts": [{"text": prompt}]}]}
        if system:
            body["systemInstruction"] = {"parts": [{"text": system}]}
        op = "streamGenerateContent?alt=sse" if stream else "generateContent"
        if dialect == "vertex":
            return f"/v1/{VERTEX_RESOURCE}/publishers/google/models/{model}:{op}", body
        return f"/v1beta/models/{model}:{op}", body
    if dialect in ("azure", "openrouter"):
        msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
        body = {"model": model, "messages": msgs, "stream": stream}
        if stream:
            body["stream_options"] = {"include_usage": True}
        if dialect == "azure":
            return f"/openai/deployments/{model}/chat/completions?api-version=2024-10-21", body
        return "/api/v1/chat/completions", body
    if dialect == "bedrock":
        body = {"messages": [{"role": "user", "content": [{"text": prompt}]}]}
        if system:
            body["system"] = [{"text": system}]
        return f"/model/{urllib.parse.quote(model, safe='')}/{'converse-stream' if stream else 'converse'}", body
    if dialect == "ollama-native":
        msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
        return "/api/chat", {"model": model, "messages": msgs, "stream": stream}
    raise ValueError(f"unknown dialect {dialect!r}")


def dialect_for(dialect: str, path: str) -> Any:
    """The dialect object that reads ``path``'s answers for request form ``dialect``."""
    for d in dialects_for(_LANE_DIALECT.get(dialect, dialect)):
        if d.matches("POST", path.split("?")[0]):
            return d
    raise ValueError(f"no {dialect} dialect serves {path}")


def stream(
    base_url: str,
    dialect: str,
    prompt: str,
    *,
    model: str | None = None,
    timeout: float = 30.0,
    headers: dict[str, str] | None = None,
) -> Iterator[tuple[str, str]]:
    """Yield ``(kind, text)`` for each event of a streamed answer as it arrives."""
    path, body = build_request(dialect, prompt, model=model, stream=True)
    d = dialect_for(dialect, path)
    with httpx.stream("POST", base_url.rstrip("/") + path, json=body, timeout=timeout, headers=headers) as r:
        if r.status_code >= 400:
            r.read()
            yield ("error", r.text)
            return
        dec = d.stream_decoder()
        for chunk in r.iter_bytes():
            for ev in dec.feed(chunk):
                info = d.classify(ev)
                yield (info.kind.value, info.text if info.kind is not EventKind.ERROR else json.dumps(info.error))


def complete(
    base_url: str,
    dialect: str,
    prompt: str,
    *,
    model: str | None = None,
    stream_: bool = True,
    timeout: float = 30.0,
    headers: dict[str, str] | None = None,
) -> Answer:
    """Send one prompt and collect the whole answer (streamed or not)."""
    if stream_:
        ans = Answer(status=200)
        for kind, text in stream(base_url, dialect, prompt, model=model, timeout=timeout, headers=headers):
            ans.events.append(kind)
            if kind == EventKind.CONTENT.value:
                ans.text += text
            elif kind == EventKind.TERMINATOR.value:
                ans.complete = True
            elif kind == "error" or kind == EventKind.ERROR.value:
                ans.error = {"message": text}
        return ans
    path, body = build_request(dialect, prompt, model=model, stream=False)
    r = httpx.post(base_url.rstrip("/") + path, json=body, timeout=timeout, headers=headers)
    ans = Answer(status=r.status_code)
    data = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
    if r.status_code >= 400:
        ans.error = data.get("error", data) if isinstance(data, dict) else {"message": r.text}
        return ans
    ans.text = _text_of_body(dialect, data)
    ans.complete = True
    return ans


def _text_of_body(dialect: str, data: dict[str, Any]) -> str:
    if dialect in ("openai", "openai-chat", "vllm", "ollama", "azure", "openrouter"):
        return data["choices"][0]["message"]["content"] or ""
    if dialect == "openai-responses":
        return "".join(
            part.get("text", "")
            for item in data.get("output", [])
            for part in item.get("content", []) or []
            if part.get("type") == "output_text"
        )
    if dialect == "anthropic":
        return "".join(b.get("text", "") for b in data.get("content", []) if b.get("type") == "text")
    if dialect == "bedrock":
        return "".join(b.get("text", "") for b in data["output"]["message"]["content"])
    if dialect == "ollama-native":
        return data["message"]["content"]
    if dialect in ("gemini", "vertex"):
        cands = data.get("candidates") or [{}]
        return "".join(p.get("text", "") for p in (cands[0].get("content") or {}).get("parts", []))
    raise ValueError(dialect)
