"""A tiny dialect-aware HTTP client: build a request for any dialect and read its answer.

It is what the demo, the examples and the Gemini tests use (there is no official SDK in the test
extras for every provider). It reads streams with the same SSE decoder and dialect classifiers
as the proxy, so "the text received" means the same thing everywhere.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from .dialects import dialects_for
from .dialects.base import EventKind
from .sse import SSEDecoder

__all__ = ["Answer", "build_request", "complete", "stream"]

DEFAULT_MODELS = {
    "openai": "gpt-4o-mini",
    "openai-chat": "gpt-4o-mini",
    "openai-responses": "gpt-4o-mini",
    "vllm": "meta-llama/Llama-3.1-8B-Instruct",
    "ollama": "llama3.1",
    "anthropic": "claude-opus-4-6",
    "gemini": "gemini-2.5-flash",
}


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
    if dialect == "gemini":
        body = {"contents": [{"role": "user", "parts": [{"text": prompt}]}]}
        if system:
            body["systemInstruction"] = {"parts": [{"text": system}]}
        op = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return f"/v1beta/models/{model}:{op}", body
    raise ValueError(f"unknown dialect {dialect!r}")


def _dialect_for(dialect: str, path: str) -> Any:
    for d in dialects_for(dialect):
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
    d = _dialect_for(dialect, path)
    with httpx.stream("POST", base_url.rstrip("/") + path, json=body, timeout=timeout, headers=headers) as r:
        if r.status_code >= 400:
            r.read()
            yield ("error", r.text)
            return
        dec = SSEDecoder()
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
    if dialect in ("openai", "openai-chat", "vllm", "ollama"):
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
    if dialect == "gemini":
        cands = data.get("candidates") or [{}]
        return "".join(p.get("text", "") for p in (cands[0].get("content") or {}).get("parts", []))
    raise ValueError(dialect)
