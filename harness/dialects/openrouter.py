"""OpenRouter: OpenAI-compatible Chat Completions (``/api/v1/chat/completions``) in front of
many providers.

A variant of ``openai-chat`` (the openai SDK is its client, ``base_url=.../api/v1``) with
OpenRouter's own ways of failing (openrouter.ai/docs/api/errors, .../api-reference/streaming):

- errors are ``{"error": {"code": <int>, "message", "metadata"}}`` and the HTTP status equals
  ``code``; a provider's failure names it in ``metadata.provider_name`` with its own body in
  ``metadata.raw``; a rate limit puts the limit's headers in ``metadata.headers`` (OpenRouter
  sends no rate-limit response headers); moderation is a 403 with ``metadata.reasons``; credits
  run out with a 402. ``Retry-After`` comes on 429 and 503;
- once generation started, a failure is a **200 chunk** that carries ``error`` and
  ``finish_reason: "error"`` (the openai SDK raises ``APIError`` from the iterator);
- while a request waits, ``: OPENROUTER PROCESSING`` SSE comments keep the connection alive
  (invisible to SSE parsers, fatal to hand-written ``JSON.parse`` loops).
"""

from __future__ import annotations

import json
import time
from typing import Any

from ..sse import encode_comment, encode_event
from .base import (
    Completion,
    ErrorKind,
    ErrorSpec,
    Event,
    EventKind,
    RateLimitSnapshot,
    Rendered,
    RequestInfo,
    StreamEncoder,
    edge_html,
    request_id,
    retry_headers,
)
from .openai_chat import OpenAIChat, _ChatEncoder

__all__ = ["OPENROUTER_ERRORS", "OpenRouterChat", "openrouter_error_object"]

PROVIDER = "OpenAI"
KEEPALIVE = "OPENROUTER PROCESSING"

#: kind -> (status, message template, what the metadata says: "provider", "ratelimit",
#: "moderation" or None). ``{model}`` and ``{provider}`` are filled in.
OPENROUTER_ERRORS: dict[ErrorKind, tuple[int, str, str | None]] = {
    ErrorKind.RATE_LIMIT: (
        429,
        "{model} is temporarily rate-limited upstream. Please retry shortly, or add your own key to "
        "accumulate your rate limits: https://openrouter.ai/settings/integrations",
        "ratelimit",
    ),
    ErrorKind.SLOW_DOWN: (429, "Rate limit exceeded: too many requests in a short time.", "ratelimit"),
    ErrorKind.QUEUE_FULL: (
        503,
        "No instances available for {model}: every provider is at capacity.",
        "provider",
    ),
    ErrorKind.QUOTA_EXHAUSTED: (
        402,
        "Insufficient credits. Add more using https://openrouter.ai/settings/credits",
        None,
    ),
    ErrorKind.SPEND_LIMIT: (
        402,
        "This request requires more credits, or fewer max_tokens. Key limit exceeded.",
        None,
    ),
    ErrorKind.OVERLOADED: (502, "Provider returned error", "provider"),
    ErrorKind.SERVER_ERROR: (500, "Internal Server Error", None),
    ErrorKind.BAD_GATEWAY: (502, "Provider returned error", "provider"),
    ErrorKind.UNAVAILABLE: (
        503,
        "No allowed providers are available for the selected model.",
        None,
    ),
    ErrorKind.GATEWAY_TIMEOUT: (504, "Gateway timeout.", None),
    ErrorKind.AUTH: (401, "No auth credentials found", None),
    ErrorKind.PERMISSION: (403, "Key is not allowed to use this model.", None),
    ErrorKind.NOT_FOUND: (404, "No endpoints found for {model}.", None),
    ErrorKind.CONTEXT_LENGTH: (
        400,
        "This endpoint's maximum context length is 128000 tokens. However, you requested about 131072 tokens. "
        'Please reduce the length of either one, or use the "middle-out" transform to compress your prompt '
        "automatically.",
        None,
    ),
    ErrorKind.CONTENT_FILTER: (403, "{model} requires moderation on OpenAI. Your input was flagged.", "moderation"),
    ErrorKind.INVALID_REQUEST: (400, "Invalid request.", None),
    ErrorKind.REQUEST_TIMEOUT: (408, "Request timed out.", None),
    ErrorKind.CONFLICT: (409, "Request conflicted with another request; try again.", None),
}
#: the provider's own body, as OpenRouter quotes it in ``metadata.raw``
_RAW = {
    ErrorKind.OVERLOADED: '{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}',
    ErrorKind.QUEUE_FULL: '{"error":{"message":"The engine is currently overloaded.","code":"server_is_overloaded"}}',
    ErrorKind.RATE_LIMIT: '{"error":{"message":"Rate limit reached","code":"rate_limit_exceeded"}}',
}
#: in-stream error codes (the mid-stream chunk's ``error.code`` is a string)
_STREAM_CODES = {ErrorKind.RATE_LIMIT: "rate_limit_exceeded", ErrorKind.CONTEXT_LENGTH: "context_length_exceeded"}


def openrouter_error_object(
    spec: ErrorSpec, req: RequestInfo | None, snap: RateLimitSnapshot | None = None
) -> tuple[int, dict[str, Any]]:
    """Status and the ``{"code","message"[,"metadata"]}`` object in OpenRouter's words."""
    status, template, meta = OPENROUTER_ERRORS[spec.kind]
    status = spec.status or status
    model = (req.model if req else None) or "openai/gpt-4o"
    err: dict[str, Any] = {"code": status, "message": spec.message or template.format(model=model)}
    if meta == "provider":
        err["metadata"] = {"raw": _RAW.get(spec.kind, "upstream error"), "provider_name": PROVIDER}
    elif meta == "ratelimit":
        headers: dict[str, str] = {}
        if snap is not None and snap.requests_limit is not None:
            reset_ms = int((time.time() + (snap.requests_reset or 0.0)) * 1000)
            headers = {
                "X-RateLimit-Limit": str(snap.requests_limit),
                "X-RateLimit-Remaining": str(max(0, snap.requests_remaining or 0)),
                "X-RateLimit-Reset": str(reset_ms),
            }
        err["metadata"] = {"headers": headers, "provider_name": PROVIDER}
    elif meta == "moderation":
        err["metadata"] = {
            "reasons": ["violence"],
            "flagged_input": "...",
            "provider_name": PROVIDER,
            "model_slug": model,
        }
    return status, err


class OpenRouterChat(OpenAIChat):
    """Chat Completions as openrouter.ai serves them."""

    def __init__(self) -> None:
        super().__init__("openai")
        self.variant = "openrouter"

    def _headers(self) -> list[tuple[str, str]]:
        return [("x-generation-id", "gen-" + request_id("")[:20])]

    def render_completion(self, req: RequestInfo, completion: Completion) -> Rendered:
        r = super().render_completion(req, completion)
        body = json.loads(r.body)
        body["provider"] = PROVIDER
        body["id"] = "gen-" + body["id"].removeprefix("chatcmpl-")
        return Rendered(r.status, r.headers, json.dumps(body).encode())

    def render_error(self, spec: ErrorSpec, req: RequestInfo | None = None) -> Rendered:
        status, err = openrouter_error_object(spec, req, spec.ratelimit)
        headers = retry_headers(spec)
        if spec.raw_body is not None:
            return Rendered(status, [("content-type", spec.content_type or "text/html"), *headers], spec.raw_body)
        if spec.kind is ErrorKind.GATEWAY_TIMEOUT and spec.message is None:
            return Rendered(status, [("content-type", "text/html"), *headers], edge_html(status))
        body = {"error": err, "user_id": "user_routechaos"}
        return Rendered(status, [("content-type", "application/json"), *headers], json.dumps(body).encode())

    def ratelimit_headers(self, snap: RateLimitSnapshot, now: Any = None) -> list[tuple[str, str]]:
        return []  # OpenRouter reports limits in an error's metadata only

    def stream_encoder(self, req: RequestInfo) -> StreamEncoder:
        return _OpenRouterEncoder(req)


class _OpenRouterEncoder(_ChatEncoder):
    def keepalive(self) -> Event:
        return Event(encode_comment(KEEPALIVE), EventKind.KEEPALIVE)

    def error(self, spec: ErrorSpec) -> list[Event]:
        """The mid-stream error: a chunk with ``error`` and ``finish_reason: "error"``."""
        _, err = openrouter_error_object(spec, self.req)
        chunk = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.req.model,
            "provider": PROVIDER,
            "error": {"code": _STREAM_CODES.get(spec.kind, "server_error"), "message": err["message"]},
            "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
        }
        return [Event(encode_event(json.dumps(chunk, separators=(",", ":"))), EventKind.ERROR)]
