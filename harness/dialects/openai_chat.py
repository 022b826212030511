"""OpenAI Chat Completions (``POST /v1/chat/completions``) and OpenAI-compatible servers.

The OpenAI-compatible variants are settings of this dialect, not separate dialects, because they
differ only in how they write errors: vLLM's classic body is unwrapped
(``{"object": "error", ...}``) and Ollama's queue-full is a bare ``{"error": "server busy ..."}``.
openai-python unwraps ``body.get("error", body)``, so all of them reach the SDK's real exceptions.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from typing import Any

from ..sse import SSEEvent, encode_comment, encode_event
from ..toolcalls import ALL_DONE, Conversation, ToolCall, ToolDelta, ToolEdit, ToolSpec
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
    go_duration,
    json_loads_object,
    request_id,
    retry_headers,
    text_of,
)

__all__ = [
    "OPENAI_ERRORS",
    "OPENAI_FLAVOURS",
    "OpenAIChat",
    "openai_error_fields",
    "openai_headers",
    "openai_ratelimit_headers",
]

#: kind -> (status, type, code, message template). ``{model}`` is filled in; ``{delay}`` too, and a
#: sentence with a ``{delay}`` is left out when the error gives no delay (see ``delay_hint``).
OPENAI_ERRORS: dict[ErrorKind, tuple[int, str | None, str | None, str]] = {
    ErrorKind.RATE_LIMIT: (
        429,
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for {model} in organization org-routechaos on requests per min (RPM): "
        "Limit 60, Used 60, Requested 1. Please try again in {delay}.",
    ),
    ErrorKind.SLOW_DOWN: (
        429,
        "rate_limit_error",
        "slow_down",
        "Your traffic ramped up too quickly. Please reduce your rate of requests and try again.",
    ),
    ErrorKind.QUOTA_EXHAUSTED: (
        429,
        "insufficient_quota",
        "insufficient_quota",
        "You exceeded your current quota, please check your plan and billing details.",
    ),
    ErrorKind.SPEND_LIMIT: (
        429,
        "insufficient_quota",
        "insufficient_quota",
        "You exceeded your current quota, please check your plan and billing details.",
    ),
    ErrorKind.OVERLOADED: (
        503,
        "service_unavailable_error",
        "server_is_overloaded",
        "The engine is currently overloaded. Please try again later.",
    ),
    ErrorKind.QUEUE_FULL: (
        429,
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for {model}: too many concurrent requests. Please try again later.",
    ),
    ErrorKind.SERVER_ERROR: (
        500,
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
    ErrorKind.BAD_GATEWAY: (502, "server_error", None, "Bad gateway."),
    ErrorKind.UNAVAILABLE: (
        503,
        "service_unavailable_error",
        None,
        "Service unavailable: capacity for {model} is not available.",
    ),
    ErrorKind.GATEWAY_TIMEOUT: (504, "server_error", None, "Gateway timeout."),
    ErrorKind.AUTH: (
        401,
        "invalid_request_error",
        "invalid_api_key",
        "Incorrect API key provided: sk-****. You can find your API key at https://platform.openai.com/account/api-keys.",
    ),
    ErrorKind.PERMISSION: (
        403,
        "invalid_request_error",
        "unsupported_country_region_territory",
        "Country, region, or territory not supported",
    ),
    ErrorKind.NOT_FOUND: (
        404,
        "invalid_request_error",
        "model_not_found",
        "The model `{model}` does not exist or you do not have access to it.",
    ),
    ErrorKind.CONTEXT_LENGTH: (
        400,
        "invalid_request_error",
        "context_length_exceeded",
        "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 "
        "tokens. Please reduce the length of the messages.",
    ),
    ErrorKind.CONTENT_FILTER: (  # Azure OpenAI's (flavour azure); the rest of its body is _AZURE_FILTER
        400,
        None,
        "content_filter",
        "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. "
        "Please modify your prompt and retry. To learn more about our content filtering policies please read "
        "our documentation: https://go.microsoft.com/fwlink/?linkid=2198766",
    ),
    ErrorKind.INVALID_REQUEST: (400, "invalid_request_error", None, "Invalid request."),
    ErrorKind.REQUEST_TIMEOUT: (408, "timeout", None, "Request timed out."),
    ErrorKind.CONFLICT: (409, "conflict", None, "Request conflicted with another request; try again."),
}

#: (kind, flavour) -> the same fields as ``OPENAI_ERRORS``, where api.openai.com words an error
#: otherwise than Azure OpenAI
OPENAI_FLAVOURS: dict[tuple[ErrorKind, str], tuple[int, str | None, str | None, str]] = {
    (ErrorKind.CONTENT_FILTER, "openai"): (
        400,
        "invalid_request_error",
        "content_policy_violation",
        "Your request was rejected as a result of our safety system. Your prompt may contain text that is not "
        "allowed by our safety system.",
    ),
}
#: what Azure adds to its content_filter error: the field at fault and the filter's verdicts
_AZURE_FILTER: dict[str, Any] = {
    "param": "prompt",
    "status": 400,
    "innererror": {
        "code": "ResponsibleAIPolicyViolation",
        "content_filter_result": {
            "hate": {"filtered": False, "severity": "safe"},
            "jailbreak": {"filtered": False, "detected": False},
            "self_harm": {"filtered": False, "severity": "safe"},
            "sexual": {"filtered": False, "severity": "safe"},
            "violence": {"filtered": True, "severity": "medium"},
        },
    },
}
_DELAY_SENTENCE = re.compile(r" ?[^.]*\{delay\}[^.]*\.")

_FINISH_OUT = {"stop": "stop", "length": "length", "content_filter": "content_filter"}
_FINISH_IN = {"stop": "stop", "length": "length", "content_filter": "content_filter", "tool_calls": "stop"}
_ROLE = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
    "tool": "tool",
    "function": "function",
}


def openai_error_fields(spec: ErrorSpec, model: str | None) -> tuple[int, dict[str, Any]]:
    """Status and the ``{"message","type","param","code"}`` object for ``spec`` in OpenAI's words."""
    flavoured = OPENAI_FLAVOURS.get((spec.kind, spec.flavour)) if spec.flavour else None
    status, etype, code, template = flavoured or OPENAI_ERRORS[spec.kind]
    delay = spec.delay_hint
    if delay is None and spec.ratelimit is not None:
        delay = _exhausted_reset(spec.ratelimit)
    if delay is None:
        template = _DELAY_SENTENCE.sub("", template)  # no delay given: none invented either
    message = spec.message or template.format(model=model or "the model", delay=go_duration(delay or 0.0))
    err: dict[str, Any] = {"message": message, "type": etype, "param": None, "code": code}
    if spec.kind is ErrorKind.CONTENT_FILTER and flavoured is None:
        err.update(_AZURE_FILTER)
    return spec.status or status, err


def _exhausted_reset(snap: RateLimitSnapshot) -> float | None:
    """When the bucket that ran out refills, as the reset headers say it."""
    for unit in ("requests", "tokens"):
        if getattr(snap, f"{unit}_remaining") == 0 and getattr(snap, f"{unit}_reset") is not None:
            return float(getattr(snap, f"{unit}_reset"))
    return None


def openai_headers() -> list[tuple[str, str]]:
    """The ids and debugging headers api.openai.com puts on every answer (``x-request-id`` is what
    the SDK surfaces as ``request_id``)."""
    return [
        ("x-request-id", request_id()),
        ("openai-version", "2020-10-01"),
        ("openai-organization", "org-routechaos"),
        ("openai-processing-ms", "1"),
    ]


def openai_ratelimit_headers(snap: RateLimitSnapshot) -> list[tuple[str, str]]:
    """``x-ratelimit-*`` headers: counts as integers, resets as Go durations."""
    out: list[tuple[str, str]] = []
    for unit in ("requests", "tokens"):
        limit = getattr(snap, f"{unit}_limit")
        if limit is None:
            continue
        out.append((f"x-ratelimit-limit-{unit}", str(limit)))
        out.append((f"x-ratelimit-remaining-{unit}", str(max(0, getattr(snap, f"{unit}_remaining") or 0))))
        reset = getattr(snap, f"{unit}_reset")
        if reset is not None:  # unknown: no header rather than a made-up one
            out.append((f"x-ratelimit-reset-{unit}", go_duration(reset)))
    return out


class OpenAIChat(Dialect):
    """OpenAI Chat Completions. ``variant`` is ``openai`` (default), ``vllm`` or ``ollama``."""

    name = "openai-chat"
    carries_tool_calls = True

    def __init__(self, variant: str = "openai") -> None:
        if variant not in ("openai", "vllm", "ollama"):
            raise ValueError(f"unknown OpenAI-compatible variant {variant!r} (openai, vllm, ollama)")
        self.variant = variant

    def matches(self, method: str, path: str) -> bool:
        return path.rstrip("/").endswith("/chat/completions")

    def parse_request(
        self, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str], body: bytes
    ) -> RequestInfo:
        if method != "POST":
            raise BadRequest(f"Method {method} is not allowed on {path}; use POST.", status=405)
        data = json_loads_object(body)
        messages = data.get("messages")
        if not isinstance(messages, list) or not messages:
            raise BadRequest("'messages' is a required property and must be a non-empty array.")
        model = data.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest("you must provide a model parameter")
        conv = Conversation()
        for i, msg in enumerate(messages):
            if not isinstance(msg, dict) or "role" not in msg:
                raise BadRequest(f"Invalid value for 'messages[{i}]': expected an object with a 'role'.")
            _message(conv, i, _ROLE.get(str(msg["role"]), "user"), msg)
        max_tokens = data.get("max_completion_tokens", data.get("max_tokens"))
        stream_opts = data.get("stream_options") or {}
        tools, choice, forced = _tools(data)
        return RequestInfo(
            dialect=self.name,
            operation="chat",
            model=model,
            stream=bool(data.get("stream")),
            max_tokens=max_tokens if isinstance(max_tokens, int) and max_tokens > 0 else None,
            include_usage=bool(isinstance(stream_opts, dict) and stream_opts.get("include_usage")),
            tool_choice=choice,
            forced_tool=forced,
            parallel_tool_calls=data.get("parallel_tool_calls") is not False,
            **conversation_fields(conv, tools),
        )

    def _headers(self) -> list[tuple[str, str]]:
        return openai_headers() if self.variant == "openai" else []  # vLLM and Ollama send none

    def render_completion(self, req: RequestInfo, completion: Completion) -> Rendered:
        message: dict[str, Any] = {"role": "assistant", "content": completion.text, "refusal": None}
        if completion.tool_calls:
            message["content"] = completion.text or None
            message["tool_calls"] = [
                {"id": call_id(c), "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in completion.tool_calls
            ]
        body = {
            "id": "chatcmpl-" + request_id("")[:24],
            "object": "chat.completion",
            "created": int(time.time()),
            "model": req.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": chat_finish(req, completion),
                }
            ],
            "usage": _usage(completion.usage),
        }
        headers = [("content-type", "application/json"), *self._headers()]
        return Rendered(200, headers, json.dumps(body).encode())

    def render_error(self, spec: ErrorSpec, req: RequestInfo | None = None) -> Rendered:
        model = req.model if req else None
        status, err = openai_error_fields(spec, model)
        headers = self._headers() + retry_headers(spec)
        if spec.ratelimit is not None:
            headers += self.ratelimit_headers(spec.ratelimit)
        if spec.raw_body is not None:
            return Rendered(status, [("content-type", spec.content_type or "text/html"), *headers], spec.raw_body)
        if spec.kind in (ErrorKind.BAD_GATEWAY, ErrorKind.GATEWAY_TIMEOUT) and spec.message is None:
            return Rendered(status, [("content-type", "text/html"), *headers], edge_html(status))
        if self.variant == "vllm":
            body: dict[str, Any] = {
                "object": "error",
                "message": err["message"],
                "type": _vllm_type(status),
                "param": None,
                "code": status,
            }
        elif self.variant == "ollama" and spec.kind in (ErrorKind.QUEUE_FULL, ErrorKind.OVERLOADED):
            status = spec.status or 503
            body = {"error": "server busy, please try again.  maximum pending requests exceeded"}
        elif self.variant == "ollama" and spec.kind == ErrorKind.NOT_FOUND:
            body = {"error": f'model "{model or "x"}" not found, try pulling it first'}
        else:
            body = {"error": err}
        return Rendered(status, [("content-type", "application/json"), *headers], json.dumps(body).encode())

    def read_completion(self, body: bytes) -> EventInfo | None:
        try:
            obj = json.loads(body)
            choice = obj["choices"][0]
            text = choice["message"].get("content") or ""
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            return None
        fr = choice.get("finish_reason")
        calls = choice["message"].get("tool_calls")
        tools: tuple[ToolDelta, ...] = ()
        if isinstance(calls, list):
            n = len(calls)
            tools = tuple(
                ToolDelta(i, tc.get("id"), fn.get("name"), str(fn.get("arguments") or ""), fr != "length" or i < n - 1)
                for i, tc in enumerate(calls)
                if isinstance(tc, dict) and isinstance(fn := tc.get("function"), dict)
            )
        return EventInfo(
            EventKind.CONTENT,
            text=text,
            finish=_FINISH_IN.get(fr, fr),
            usage=_parse_usage(obj.get("usage")),
            tools=tools,
        )

    def edit_tool_call(self, obj: dict[str, Any], edit: ToolEdit, body: bool = False) -> bool:
        choices = obj.get("choices") or []
        if not choices or not isinstance(choices[0], dict):
            return False
        if body:
            calls = (choices[0].get("message") or {}).get("tool_calls") or []
            if edit.index >= len(calls):
                return False
            fn = calls[edit.index]["function"]
            fn["name"] = edit.name or fn["name"]
            fn["arguments"] = edit.arguments if edit.arguments is not None else fn["arguments"]
            if edit.cut:
                del calls[edit.index + 1 :]
                choices[0]["finish_reason"] = "length"
            return True
        changed = False
        for tc in (choices[0].get("delta") or {}).get("tool_calls") or []:
            fn = tc.get("function") if isinstance(tc, dict) else None
            if tc.get("index") != edit.index or not isinstance(fn, dict):
                continue
            if "name" in fn and edit.name is not None:
                fn["name"], changed = edit.name, True
            elif "name" not in fn and edit.fragment is not None:
                fn["arguments"], changed = edit.fragment, True
        return changed

    def ratelimit_headers(self, snap: RateLimitSnapshot, now: Any = None) -> list[tuple[str, str]]:
        return openai_ratelimit_headers(snap) if self.variant == "openai" else []

    def stream_headers(self, req: RequestInfo) -> list[tuple[str, str]]:
        return super().stream_headers(req) + self._headers()

    def stream_encoder(self, req: RequestInfo) -> StreamEncoder:
        return _ChatEncoder(req)

    def classify(self, event: SSEEvent) -> EventInfo:
        if event.is_comment_only:
            return EventInfo(EventKind.KEEPALIVE)
        data = event.data.strip()
        if data == "[DONE]":
            return EventInfo(EventKind.TERMINATOR, ends_stream=True)
        try:
            obj = json.loads(data)
        except ValueError:
            return EventInfo(EventKind.MALFORMED)
        if not isinstance(obj, dict):
            return EventInfo(EventKind.MALFORMED)
        if obj.get("error") is not None or obj.get("object") == "error":
            err = obj.get("error") if isinstance(obj.get("error"), dict) else obj
            return EventInfo(EventKind.ERROR, error=err if isinstance(err, dict) else {"message": str(err)})
        usage = _parse_usage(obj.get("usage"))
        choices = obj.get("choices") or []
        text = ""
        finish = None
        tools: tuple[ToolDelta, ...] = ()
        if choices and isinstance(choices[0], dict):
            delta = choices[0].get("delta") or {}
            text = delta.get("content") or ""
            if "tool_calls" in delta or "function_call" in delta:
                tools = _deltas(delta)
            fr = choices[0].get("finish_reason")
            if fr:
                finish = _FINISH_IN.get(fr, fr)
                if fr in _CALLS_DONE:
                    tools += (ALL_DONE,)
        if text or (tools and (tools[0].arguments or any(d.arguments for d in tools[1:]))):
            return EventInfo(EventKind.CONTENT, text=text, finish=finish, usage=usage, tools=tools)
        if finish or usage:
            return EventInfo(EventKind.FINISH, finish=finish, usage=usage, tools=tools)
        return EventInfo(EventKind.META, tools=tools)


def _vllm_type(status: int) -> str:
    return {400: "BadRequestError", 404: "NotFoundError", 429: "TooManyRequestsError"}.get(
        status, "InternalServerError" if status >= 500 else "BadRequestError"
    )


def _usage(u: Usage) -> dict[str, Any]:
    out: dict[str, Any] = {
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.total_tokens,
    }
    if u.cached_input_tokens:
        out["prompt_tokens_details"] = {"cached_tokens": u.cached_input_tokens, "audio_tokens": 0}
    return out


def _parse_usage(obj: Any) -> Usage | None:
    if not isinstance(obj, dict):
        return None
    try:
        details = obj.get("prompt_tokens_details")
        cached = int(details.get("cached_tokens") or 0) if isinstance(details, dict) else 0
        return Usage(int(obj.get("prompt_tokens") or 0), int(obj.get("completion_tokens") or 0), cached)
    except (TypeError, ValueError):
        return None


#: finish reasons that end every tool call of the answer normally (``stop`` when a named tool
#: was forced: the API then says ``stop``, not ``tool_calls``)
_CALLS_DONE = frozenset({"tool_calls", "function_call", "stop"})


def call_id(call: ToolCall) -> str:
    """A tool call id as OpenAI writes it."""
    return "call_" + call.key[:24]


def chat_finish(req: RequestInfo, completion: Completion) -> str:
    """The ``finish_reason`` of an answer: ``tool_calls`` when it called tools (``stop`` when a
    named tool was forced, as the API says then)."""
    if completion.tool_calls and completion.finish == "stop" and req.forced_tool is None:
        return "tool_calls"
    return _FINISH_OUT.get(completion.finish, "stop")


def calls_done(completion: Completion, reason: str) -> tuple[ToolDelta, ...]:
    """The finish chunk's tool delta: every call of the answer done, unless it was cut."""
    return (ALL_DONE,) if completion.tool_calls and reason in _CALLS_DONE else ()


def _deltas(delta: dict[str, Any]) -> tuple[ToolDelta, ...]:
    """The tool-call deltas of one chunk (``delta.tool_calls``, or the legacy ``function_call``)."""
    out = []
    for tc in delta.get("tool_calls") or ():
        if not isinstance(tc, dict):
            continue
        fn = tc.get("function")
        if not isinstance(fn, dict):
            fn = {}
        index = tc.get("index", 0)
        args = fn.get("arguments") or ""
        out.append(
            ToolDelta(
                index if type(index) is int else 0,
                tc.get("id"),
                fn.get("name"),
                args if type(args) is str else str(args),
            )
        )
    fc = delta.get("function_call")
    if isinstance(fc, dict):
        out.append(ToolDelta(0, None, fc.get("name"), str(fc.get("arguments") or "")))
    return tuple(out)


def _tools(data: dict[str, Any]) -> tuple[tuple[ToolSpec, ...], str, str | None]:
    """Function tools offered (``tools``, or the legacy ``functions``) and the ``tool_choice``."""
    raw = data.get("tools")
    if raw is not None and not isinstance(raw, list):
        raise BadRequest(f"Invalid type for 'tools': expected an array, but got {type(raw).__name__} instead.")
    specs: list[ToolSpec] = []
    for i, tool in enumerate(raw or []):
        if not isinstance(tool, dict):
            raise BadRequest(f"Invalid type for 'tools[{i}]': expected an object.")
        if tool.get("type", "function") != "function":
            continue  # custom tools carry free text, not JSON arguments
        fn = tool.get("function")
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise BadRequest(f"Missing required parameter: 'tools[{i}].function.name'.")
        specs.append(ToolSpec(fn["name"], fn.get("parameters") if isinstance(fn.get("parameters"), dict) else None))
    legacy = data.get("functions")
    for i, fn in enumerate(legacy if isinstance(legacy, list) else []):
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise BadRequest(f"Missing required parameter: 'functions[{i}].name'.")
        specs.append(ToolSpec(fn["name"], fn.get("parameters") if isinstance(fn.get("parameters"), dict) else None))
    choice = data.get("tool_choice", data.get("function_call"))
    if isinstance(choice, str):
        return tuple(specs), choice if choice in ("none", "required") else "auto", None
    if isinstance(choice, dict):
        if choice.get("type") == "allowed_tools":
            allowed = choice.get("allowed_tools") or {}
            names = {(t.get("function") or {}).get("name") for t in allowed.get("tools") or [] if isinstance(t, dict)}
            mode = allowed.get("mode")
            return tuple(s for s in specs if s.name in names), "required" if mode == "required" else "auto", None
        name = (choice.get("function") or {}).get("name") if "function" in choice else choice.get("name")
        if isinstance(name, str):
            return tuple(specs), "required", name
    return tuple(specs), "auto", None


def _message(conv: Conversation, i: int, role: str, msg: dict[str, Any]) -> None:
    """One message into the conversation: text turns, an assistant's tool calls, tool results."""
    text = text_of(msg.get("content"))
    if role == "tool":
        conv.add_result(msg.get("tool_call_id"), None, text)
        return
    if role == "function":  # the legacy result of a ``function_call``
        conv.add_result(None, msg.get("name"), text)
        return
    calls = msg.get("tool_calls") if role == "assistant" else None
    legacy = msg.get("function_call") if role == "assistant" else None
    if not calls and not isinstance(legacy, dict):
        conv.add(role, text)
        return
    out: list[tuple[str | None, str, Any]] = []
    if not isinstance(calls, list | type(None)):
        raise BadRequest(f"Invalid type for 'messages[{i}].tool_calls': expected an array.")
    for j, tc in enumerate(calls or []):
        fn = tc.get("function") if isinstance(tc, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise BadRequest(f"Missing required parameter: 'messages[{i}].tool_calls[{j}].function.name'.")
        out.append((tc.get("id"), fn["name"], fn.get("arguments") or ""))
    if isinstance(legacy, dict) and isinstance(legacy.get("name"), str):
        out.append((None, legacy["name"], legacy.get("arguments") or ""))
    conv.add_calls(out, text=text)


class _ChatEncoder(StreamEncoder):
    def __init__(self, req: RequestInfo) -> None:
        self.req = req
        self.id = "chatcmpl-" + request_id("")[:24]
        self.created = int(time.time())
        # the JSON around the delta never changes: format it once, splice text in per token
        model = json.dumps(req.model)
        self._prefix = (
            f'{{"id":"{self.id}","object":"chat.completion.chunk","created":{self.created},"model":{model},'
            '"system_fingerprint":null,"choices":[{"index":0,"delta":{"content":'
        ).encode()
        self._suffix = b'},"logprobs":null,"finish_reason":null}]}'
        self._tool_prefix: dict[int, list[bytes]] = {}  # per call: the chunk around its fragment

    def _chunk(self, choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> bytes:
        obj: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.req.model,
            "system_fingerprint": None,
            "choices": choices,
        }
        if usage is not None or self.req.include_usage:
            obj["usage"] = usage
        return encode_event(json.dumps(obj, separators=(",", ":")))

    def start(self, tool_calls: bool = False) -> list[Event]:
        delta = {"role": "assistant", "content": None if tool_calls else ""}
        role = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}]
        return [Event(self._chunk(role), EventKind.META)]

    def _tool_chunk(self, call: dict[str, Any]) -> bytes:
        return self._chunk([{"index": 0, "delta": {"tool_calls": [call]}, "logprobs": None, "finish_reason": None}])

    def tool_call_start(self, index: int, call: ToolCall) -> list[Event]:
        cid = call_id(call)
        opening = {"index": index, "id": cid, "type": "function", "function": {"name": call.name, "arguments": ""}}
        delta = ToolDelta(index, cid, call.name, total=len(call.arguments))
        return [Event(self._tool_chunk(opening), EventKind.META, tools=(delta,))]

    def tool_arguments(self, index: int, fragment: str, tokens: int = 1) -> list[Event]:
        # spliced like a text delta: only the fragment changes from one event to the next
        prefix = self._tool_prefix.get(index)
        if prefix is None:
            marker = self._tool_chunk({"index": index, "function": {"arguments": "\x00"}})
            prefix = self._tool_prefix[index] = marker.rsplit(b'"\\u0000"', 1)
        data = prefix[0] + json.dumps(fragment).encode() + prefix[1]
        return [Event(data, EventKind.CONTENT, tokens=tokens, tools=(ToolDelta(index, arguments=fragment),))]

    def tool_call_end(self, index: int, call: ToolCall, complete: bool = True) -> list[Event]:
        return []  # Chat ends a call by starting the next one, or by the finish reason

    def content(self, text: str, tokens: int = 1) -> Event:
        payload = self._prefix + json.dumps(text).encode() + self._suffix
        if self.req.include_usage:
            payload = payload[:-1] + b',"usage":null}'
        return Event(b"data: " + payload + b"\n\n", EventKind.CONTENT, text=text, tokens=tokens)

    def finish(self, completion: Completion) -> list[Event]:
        reason = chat_finish(self.req, completion)
        fin = [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": reason}]
        out = [Event(self._chunk(fin), EventKind.FINISH, tools=calls_done(completion, reason))]
        if self.req.include_usage:
            out.append(Event(self._chunk([], _usage(completion.usage)), EventKind.FINISH))
        return out + self.terminator()

    def terminator(self) -> list[Event]:
        return [Event(b"data: [DONE]\n\n", EventKind.TERMINATOR)]

    def cut_tool_call(self, index: int, arguments: str, usage: Usage) -> list[Event]:
        return self.finish(Completion("", usage, "length"))

    def keepalive(self) -> Event:
        return Event(encode_comment("keep-alive"), EventKind.KEEPALIVE)

    def error(self, spec: ErrorSpec) -> list[Event]:
        _, err = openai_error_fields(spec, self.req.model)
        return [Event(encode_event(json.dumps({"error": err})), EventKind.ERROR)]
