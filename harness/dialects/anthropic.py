"""Anthropic Messages API (``POST /v1/messages``).

Anthropic differs from OpenAI where it matters to a router: overload is its own status (529,
``OverloadedError`` in the SDK, with ``x-should-retry: true``), rate-limit resets are RFC 3339
instants rather than durations, the stream ends with ``message_stop`` and keeps itself alive with
``ping`` events, and a mid-stream failure is a named ``error`` event. The SDK raises that as a
plain ``APIStatusError`` with ``status_code`` 200 (its class table is keyed by HTTP status), so
a client has to read ``.type`` (``overloaded_error``) to treat it like the 529 it stands for.
Billing failures are told apart from rate limits only by ``error.details.error_code``, which the
SDK maps to its own ``RateLimitError`` subclasses (``EnforcedSpendLimitReachedError``,
``RampLimitExceededError``).
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Mapping
from typing import Any

from ..sse import SSEEvent, encode_event
from ..toolcalls import Conversation, ToolCall, ToolDelta, ToolEdit, ToolSpec, whole_tool_deltas
from .base import (
    BadRequest,
    Completion,
    Dialect,
    ErrorKind,
    ErrorSpec,
    Event,
    EventInfo,
    EventKind,
    RateLimitSnapshot,
    Rendered,
    RequestInfo,
    StreamEncoder,
    Usage,
    conversation_fields,
    edge_html,
    json_event,
    json_loads_object,
    request_id,
    retry_headers,
    rfc3339,
    text_of,
)

__all__ = ["ANTHROPIC_ERRORS", "AnthropicMessages", "anthropic_error_object"]

#: kind -> (status, error.type, details.error_code, message template). ``{model}`` and
#: ``{tokens}`` are filled in. QUOTA_EXHAUSTED is the 400 "credit balance is too low" that
#: prepaid accounts really get; ``ErrorSpec(status=402)`` turns it into a ``billing_error``.
ANTHROPIC_ERRORS: dict[ErrorKind, tuple[int, str, str | None, str]] = {
    ErrorKind.RATE_LIMIT: (
        429,
        "rate_limit_error",
        None,
        "This request would exceed the rate limit for your organization (org-routechaos) of 50 requests "
        "per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits. You can see the "
        "response headers for current usage. Please reduce the prompt length or the maximum tokens "
        "requested, or try again later.",
    ),
    ErrorKind.SLOW_DOWN: (
        429,
        "rate_limit_error",
        "ramp_limit_exceeded",
        "Your organization's usage is increasing too quickly. Please ramp up your traffic more gradually.",
    ),
    ErrorKind.QUOTA_EXHAUSTED: (
        400,
        "invalid_request_error",
        None,
        "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to "
        "upgrade or purchase credits.",
    ),
    ErrorKind.SPEND_LIMIT: (
        429,
        "rate_limit_error",
        "enforced_spend_limit_reached",
        "You have reached your specified API usage limits. You will regain access at the start of next month.",
    ),
    ErrorKind.OVERLOADED: (529, "overloaded_error", None, "Overloaded"),
    ErrorKind.QUEUE_FULL: (529, "overloaded_error", None, "Overloaded"),
    ErrorKind.SERVER_ERROR: (500, "api_error", None, "Internal server error"),
    ErrorKind.BAD_GATEWAY: (502, "api_error", None, "Bad gateway"),
    ErrorKind.UNAVAILABLE: (
        503,
        "api_error",
        None,
        "Service unavailable: capacity for {model} is not available.",
    ),
    ErrorKind.GATEWAY_TIMEOUT: (
        504,
        "timeout_error",
        None,
        "Request timed out. Consider streaming for long requests.",
    ),
    ErrorKind.AUTH: (401, "authentication_error", None, "invalid x-api-key"),
    ErrorKind.PERMISSION: (
        403,
        "permission_error",
        None,
        "Your API key does not have permission to use the specified resource.",
    ),
    ErrorKind.NOT_FOUND: (404, "not_found_error", None, "model: {model}"),
    ErrorKind.CONTEXT_LENGTH: (
        400,
        "invalid_request_error",
        None,
        "prompt is too long: {tokens} tokens > 200000 maximum",
    ),
    ErrorKind.CONTENT_FILTER: (
        400,
        "invalid_request_error",
        None,
        "Output blocked by content filtering policy",
    ),
    ErrorKind.INVALID_REQUEST: (400, "invalid_request_error", None, "Invalid request."),
    ErrorKind.REQUEST_TIMEOUT: (408, "timeout_error", None, "Request timed out."),
    ErrorKind.CONFLICT: (409, "conflict_error", None, "Request conflicted with another request; try again."),
}

#: ``error.type`` by status, used when ``ErrorSpec.status`` moves an error to another status so
#: that type and status stay consistent (402 ``billing_error`` for a quota, say).
_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_STOP_OUT = {"stop": "end_turn", "length": "max_tokens", "content_filter": "refusal"}
_STOP_IN = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "refusal": "content_filter",
}
#: kinds answered with ``x-should-retry: true`` unless the spec says otherwise: Anthropic sends it
#: on 529 (anthropic-sdk-typescript #616)
_RETRY_BY_DEFAULT = frozenset({ErrorKind.OVERLOADED, ErrorKind.QUEUE_FULL})
_RATELIMIT_UNITS = (
    ("requests", "requests"),
    ("tokens", "tokens"),
    ("input_tokens", "input-tokens"),
    ("output_tokens", "output-tokens"),
)


def anthropic_error_object(spec: ErrorSpec, req: RequestInfo | None) -> tuple[int, dict[str, Any]]:
    """Status and the ``{"type","message"[,"details"]}`` object for ``spec`` in Anthropic's words."""
    status, etype, code, template = ANTHROPIC_ERRORS[spec.kind]
    if spec.status is not None and spec.status != status:
        etype = _TYPE_BY_STATUS.get(spec.status, "api_error" if spec.status >= 500 else "invalid_request_error")
        status = spec.status
    tokens = max(200_001, req.prompt_tokens) if req else 208_310
    err: dict[str, Any] = {
        "type": etype,
        "message": spec.message or template.format(model=(req.model if req else None) or "the model", tokens=tokens),
    }
    if code is not None:
        err["details"] = {"error_code": code}
    return status, err


class AnthropicMessages(Dialect):
    """The Messages API as api.anthropic.com serves it."""

    name = "anthropic"
    carries_tool_calls = True

    def matches(self, method: str, path: str) -> bool:
        return path.rstrip("/").endswith("/messages")

    def parse_request(
        self, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str], body: bytes
    ) -> RequestInfo:
        if method != "POST":
            raise BadRequest(f"Method {method} is not allowed on {path}; use POST.", status=405)
        data = json_loads_object(body)
        # the API names every missing field with pydantic's words, in this order
        for field in ("model", "messages", "max_tokens"):
            if field not in data:
                raise BadRequest(f"{field}: Field required")
        model = data["model"]
        if not isinstance(model, str) or not model:
            raise BadRequest("model: Input should be a valid string")
        messages = data["messages"]
        if not isinstance(messages, list) or not messages:
            raise BadRequest("messages: Input should be a non-empty list")
        max_tokens = data["max_tokens"]
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            raise BadRequest("max_tokens: Input should be a valid integer greater than or equal to 1")
        conv = Conversation()
        conv.add("system", text_of(data.get("system")))
        for i, msg in enumerate(messages):
            if not isinstance(msg, dict) or msg.get("role") not in ("user", "assistant"):
                raise BadRequest(f"messages.{i}.role: Input should be 'user' or 'assistant'")
            _message(conv, msg["role"], msg.get("content"))
        tools, choice, forced, parallel = _tools(data)
        return RequestInfo(
            dialect=self.name,
            operation="messages",
            model=model,
            stream=bool(data.get("stream")),
            max_tokens=max_tokens,
            tool_choice=choice,
            forced_tool=forced,
            parallel_tool_calls=parallel,
            **conversation_fields(conv, tools),
        )

    def render_completion(self, req: RequestInfo, completion: Completion) -> Rendered:
        content: list[dict[str, Any]] = []
        if completion.text or not completion.tool_calls:
            content.append({"type": "text", "text": completion.text})
        content += [
            {"type": "tool_use", "id": tool_use_id(c), "name": c.name, "input": _input_of(c.arguments)}
            for c in completion.tool_calls
        ]
        body = {
            "id": "msg_" + request_id("")[:24],
            "type": "message",
            "role": "assistant",
            "model": req.model,
            "content": content,
            "stop_reason": _stop_out(completion),
            "stop_sequence": None,
            "usage": _usage(completion.usage),
        }
        return Rendered(200, [("content-type", "application/json"), *_headers()], json.dumps(body).encode())

    def render_error(self, spec: ErrorSpec, req: RequestInfo | None = None) -> Rendered:
        status, err = anthropic_error_object(spec, req)
        rid = request_id()
        headers = [("request-id", rid), ("anthropic-organization-id", _ORG_ID), *retry_headers(spec)]
        if spec.should_retry is None and spec.kind in _RETRY_BY_DEFAULT:
            headers.append(("x-should-retry", "true"))
        if spec.ratelimit is not None:
            headers += self.ratelimit_headers(spec.ratelimit)
        if spec.raw_body is not None:
            return Rendered(status, [("content-type", spec.content_type or "text/html"), *headers], spec.raw_body)
        if spec.kind in (ErrorKind.BAD_GATEWAY, ErrorKind.GATEWAY_TIMEOUT) and spec.message is None:
            return Rendered(status, [("content-type", "text/html"), *headers], edge_html(status))
        body = {"type": "error", "error": err, "request_id": rid}
        return Rendered(status, [("content-type", "application/json"), *headers], json.dumps(body).encode())

    def read_completion(self, body: bytes) -> EventInfo | None:
        try:
            obj = json.loads(body)
            text = "".join(b.get("text") or "" for b in obj["content"] if b.get("type") == "text")
            uses = [b for b in obj["content"] if b.get("type") == "tool_use"]
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
        stop = obj.get("stop_reason")
        finish = _STOP_IN.get(stop, stop) if stop else None
        tools = whole_tool_deltas(uses, "id", finish)  # max_tokens cuts the last block
        usage = _parse_usage(obj.get("usage"))
        return EventInfo(EventKind.CONTENT, text=text, finish=finish, usage=usage, tools=tools)

    def edit_tool_call(self, obj: dict[str, Any], edit: ToolEdit, body: bool = False) -> bool:
        if body:
            uses = [b for b in obj.get("content") or [] if isinstance(b, dict) and b.get("type") == "tool_use"]
            if edit.index >= len(uses):
                return False
            if edit.name is not None:
                uses[edit.index]["name"] = edit.name
            if edit.arguments is not None:
                # a whole body always carries an object: arguments that are not one arrive empty
                uses[edit.index]["input"] = _input_of(edit.arguments)
            if edit.cut:
                later = {id(b) for b in uses[edit.index + 1 :]}
                obj["content"] = [b for b in obj["content"] if id(b) not in later]
                obj["stop_reason"] = "max_tokens"
            return True
        if obj.get("index") != edit.index:
            return False
        block = obj.get("content_block")
        if obj.get("type") == "content_block_start" and isinstance(block, dict) and block.get("type") == "tool_use":
            if edit.name is not None:
                block["name"] = edit.name
                return True
            return False
        delta = obj.get("delta")
        if isinstance(delta, dict) and delta.get("type") == "input_json_delta" and edit.fragment is not None:
            delta["partial_json"] = edit.fragment
            return True
        return False

    def ratelimit_headers(self, snap: RateLimitSnapshot, now: _dt.datetime | None = None) -> list[tuple[str, str]]:
        """``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-*``; resets are
        RFC 3339 instants, computed once so every header agrees on "now"."""
        now = now or _dt.datetime.now(_dt.UTC)
        out: list[tuple[str, str]] = []
        for attr, unit in _RATELIMIT_UNITS:
            limit = getattr(snap, f"{attr}_limit")
            if limit is None:
                continue
            prefix = f"anthropic-ratelimit-{unit}"
            out.append((f"{prefix}-limit", str(limit)))
            out.append((f"{prefix}-remaining", str(max(0, getattr(snap, f"{attr}_remaining") or 0))))
            reset = getattr(snap, f"{attr}_reset")
            if reset is not None:  # unknown: no header rather than a made-up one
                out.append((f"{prefix}-reset", rfc3339(max(0.0, reset), now)))
        return out

    def stream_headers(self, req: RequestInfo) -> list[tuple[str, str]]:
        return super().stream_headers(req) + _headers()

    def stream_encoder(self, req: RequestInfo) -> StreamEncoder:
        return _MessagesEncoder(req)

    def classify(self, event: SSEEvent) -> EventInfo:
        obj = json_event(event)
        if isinstance(obj, EventInfo):
            return obj
        etype = obj.get("type") or event.event
        if etype == "content_block_delta":
            delta = obj.get("delta") or {}
            if delta.get("type") == "text_delta":
                return EventInfo(EventKind.CONTENT, text=str(delta.get("text") or ""))
            if delta.get("type") == "input_json_delta":
                part = str(delta.get("partial_json") or "")
                kind = EventKind.CONTENT if part else EventKind.META
                return EventInfo(kind, tools=(ToolDelta(_block(obj), arguments=part),))
            return EventInfo(EventKind.META)
        if etype == "content_block_start":
            block = obj.get("content_block") if isinstance(obj.get("content_block"), dict) else {}
            if block.get("type") == "tool_use":
                return EventInfo(EventKind.META, tools=(ToolDelta(_block(obj), block.get("id"), block.get("name")),))
            return EventInfo(EventKind.META)
        if etype == "content_block_stop":
            return EventInfo(EventKind.META, tools=(ToolDelta(_block(obj), done=True),))
        if etype == "ping":
            return EventInfo(EventKind.KEEPALIVE)
        if etype == "message_delta":
            stop = (obj.get("delta") or {}).get("stop_reason")
            finish = _STOP_IN.get(stop, stop) if stop else None
            return EventInfo(EventKind.FINISH, finish=finish, usage=_parse_usage(obj.get("usage")))
        if etype == "message_stop":
            return EventInfo(EventKind.TERMINATOR, ends_stream=True)
        if etype == "error":
            err = obj.get("error")
            return EventInfo(EventKind.ERROR, error=err if isinstance(err, dict) else {"message": str(err)})
        if etype == "message_start":
            message = obj.get("message") or {}
            return EventInfo(EventKind.META, usage=_parse_usage(message.get("usage")))
        return EventInfo(EventKind.META)


_ORG_ID = "00000000-0000-4000-8000-00000000c4a0"


def _message(conv: Conversation, role: str, content: Any) -> None:
    """One message into the conversation, in Chat Completions' shape for a shared fingerprint:
    each ``tool_result`` block is its own ``tool`` turn (Chat sends one ``tool`` message per
    result) and the remaining text blocks make the message's own turn; an assistant's
    ``tool_use`` blocks are its tool calls (``thinking`` blocks carry no conversation text)."""
    if not isinstance(content, list):
        conv.add(role, text_of(content))
        return
    blocks = [b for b in content if isinstance(b, dict)]
    results = [b for b in blocks if b.get("type") == "tool_result"]
    calls = [b for b in blocks if b.get("type") == "tool_use"]
    for b in results:
        conv.add_result(b.get("tool_use_id"), None, text_of(b.get("content")))
    rest = [b for b in content if not (isinstance(b, dict) and b.get("type") in ("tool_result", "tool_use"))]
    if calls and role == "assistant":
        conv.add_calls([(b.get("id"), str(b.get("name") or ""), b.get("input") or {}) for b in calls], text_of(rest))
    elif rest or not results:
        conv.add(role, text_of(rest))


def _tools(data: dict[str, Any]) -> tuple[tuple[ToolSpec, ...], str, str | None, bool]:
    """Client tools offered (server tools such as ``web_search_20250305`` run at Anthropic), the
    ``tool_choice`` and whether parallel tool use is allowed."""
    raw = data.get("tools")
    if raw is not None and not isinstance(raw, list):
        raise BadRequest("tools: Input should be a valid list")
    specs: list[ToolSpec] = []
    for i, tool in enumerate(raw or []):
        if not isinstance(tool, dict):
            raise BadRequest(f"tools.{i}: Input should be a valid dictionary")
        if tool.get("type", "custom") != "custom":
            continue
        if not isinstance(tool.get("name"), str) or not tool["name"]:
            raise BadRequest(f"tools.{i}.custom.name: Field required")
        schema = tool.get("input_schema")
        if not isinstance(schema, dict):
            raise BadRequest(f"tools.{i}.custom.input_schema: Field required")
        specs.append(ToolSpec(tool["name"], schema))
    choice = data.get("tool_choice") if isinstance(data.get("tool_choice"), dict) else {}
    parallel = not choice.get("disable_parallel_tool_use")
    kind = choice.get("type")
    if kind == "none":
        return tuple(specs), "none", None, parallel
    if kind == "any":
        return tuple(specs), "required", None, parallel
    if kind == "tool" and isinstance(choice.get("name"), str):
        return tuple(specs), "required", choice["name"], parallel
    return tuple(specs), "auto", None, parallel


def tool_use_id(call: ToolCall) -> str:
    """A ``tool_use`` block id as Anthropic writes it."""
    return "toolu_01" + call.key[:22]


def _block(obj: dict[str, Any]) -> int:
    index = obj.get("index")
    return index if isinstance(index, int) else 0


def _stop_out(completion: Completion) -> str:
    if completion.tool_calls and completion.finish == "stop":
        return "tool_use"
    return _STOP_OUT.get(completion.finish, "end_turn")


def _input_of(arguments: str) -> dict[str, Any]:
    """A ``tool_use`` block's ``input`` object: the API always sends an object in a whole body,
    so arguments that do not parse (cut by the token limit) are an empty one."""
    try:
        value = json.loads(arguments)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _headers() -> list[tuple[str, str]]:
    """``request-id`` is what the SDK surfaces as ``APIStatusError.request_id``."""
    return [("request-id", request_id()), ("anthropic-organization-id", _ORG_ID)]


def _usage(u: Usage) -> dict[str, Any]:
    """Anthropic counts the three kinds of input apart: ``input_tokens`` is what neither came
    from nor went to the cache."""
    return {
        "input_tokens": u.uncached_input_tokens,
        "cache_creation_input_tokens": u.cache_write_tokens,
        "cache_read_input_tokens": u.cached_input_tokens,
        "output_tokens": u.output_tokens,
        "service_tier": "standard",
    }


def _parse_usage(obj: Any) -> Usage | None:
    if not isinstance(obj, dict):
        return None
    try:
        read = int(obj.get("cache_read_input_tokens") or 0)
        write = int(obj.get("cache_creation_input_tokens") or 0)
        return Usage(int(obj.get("input_tokens") or 0) + read + write, int(obj.get("output_tokens") or 0), read, write)
    except (TypeError, ValueError):
        return None


class _MessagesEncoder(StreamEncoder):
    def __init__(self, req: RequestInfo) -> None:
        self.req = req
        self.id = "msg_" + request_id("")[:24]
        self._first_tool_block = 1  # block 0 is the text block, unless the answer starts with tools

    @staticmethod
    def _event(obj: dict[str, Any], kind: EventKind, tool: ToolDelta | None = None, tokens: int = 0) -> Event:
        data = encode_event(json.dumps(obj, separators=(",", ":")), event=obj["type"])
        return Event(data, kind, tokens=tokens, tools=(tool,) if tool is not None else ())

    def start(self, tool_calls: bool = False) -> list[Event]:
        message = {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.req.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": _usage(Usage(self.req.prompt_tokens, 1)),
        }
        started = self._event({"type": "message_start", "message": message}, EventKind.META)
        if tool_calls:
            self._first_tool_block = 0
            return [started, self.keepalive()]
        return [
            started,
            self._event(
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                EventKind.META,
            ),
            self.keepalive(),
        ]

    def tool_call_start(self, index: int, call: ToolCall) -> list[Event]:
        block = self._first_tool_block + index
        tid = tool_use_id(call)
        opening = {"type": "tool_use", "id": tid, "name": call.name, "input": {}}
        first = ToolDelta(block, tid, call.name, total=len(call.arguments))
        return [
            self._event(
                {"type": "content_block_start", "index": block, "content_block": opening}, EventKind.META, first
            ),
            self._event(_json_delta(block, ""), EventKind.META),
        ]

    def tool_arguments(self, index: int, fragment: str, tokens: int = 1) -> list[Event]:
        block = self._first_tool_block + index
        data = b"%s%d%s%s}}\n\n" % (_JSON_DELTA_PREFIX, block, _JSON_DELTA_MIDDLE, json.dumps(fragment).encode())
        return [Event(data, EventKind.CONTENT, tokens=tokens, tools=(ToolDelta(block, arguments=fragment),))]

    def tool_call_end(self, index: int, call: ToolCall, complete: bool = True) -> list[Event]:
        # the API closes the block even when max_tokens cut it; the finish says it was cut
        block = self._first_tool_block + index
        return [
            self._event({"type": "content_block_stop", "index": block}, EventKind.META, ToolDelta(block, done=True))
        ]

    def content(self, text: str, tokens: int = 1) -> Event:
        return Event(_DELTA_PREFIX + json.dumps(text).encode() + b"}}\n\n", EventKind.CONTENT, text=text, tokens=tokens)

    def finish(self, completion: Completion) -> list[Event]:
        u = completion.usage
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": _stop_out(completion), "stop_sequence": None},
            "usage": {
                "input_tokens": u.uncached_input_tokens,
                "cache_creation_input_tokens": u.cache_write_tokens,
                "cache_read_input_tokens": u.cached_input_tokens,
                "output_tokens": u.output_tokens,
            },
        }
        text_block = (
            [] if completion.tool_calls else [self._event({"type": "content_block_stop", "index": 0}, EventKind.META)]
        )
        return [
            *text_block,
            self._event(delta, EventKind.FINISH),
            self._event({"type": "message_stop"}, EventKind.TERMINATOR),
        ]

    def cut_tool_call(self, index: int, arguments: str, usage: Usage) -> list[Event]:
        # the API closes the block, then says max_tokens
        stop = self._event({"type": "content_block_stop", "index": index}, EventKind.META)
        return [stop, *self.finish(Completion("", usage, "length", tool_calls=_CUT))[-2:]]

    def keepalive(self) -> Event:
        return Event(_PING, EventKind.KEEPALIVE)

    def error(self, spec: ErrorSpec) -> list[Event]:
        _, err = anthropic_error_object(spec, self.req)
        return [self._event({"type": "error", "error": err}, EventKind.ERROR)]


def _json_delta(block: int, fragment: str) -> dict[str, Any]:
    return {
        "type": "content_block_delta",
        "index": block,
        "delta": {"type": "input_json_delta", "partial_json": fragment},
    }


#: stands for "the answer had tool calls" where only that matters (no text block to close)
_CUT = (ToolCall("", "", ""),)

# an argument fragment's event differs only in its block index and fragment
_JSON_DELTA_PREFIX = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'
_JSON_DELTA_MIDDLE = b',"delta":{"type":"input_json_delta","partial_json":'

# the only part of a text delta that changes is the text: format the rest once
_DELTA_PREFIX = (
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":'
)
_PING = b'event: ping\ndata: {"type": "ping"}\n\n'
