"""Google Gemini API (``POST /v1beta/models/{model}:generateContent`` and
``:streamGenerateContent?alt=sse``; ``/v1/`` and Vertex AI's
``/v1/projects/{p}/locations/{l}/publishers/google/models/{model}:...`` too).

Gemini is the odd one out, and that is why a router needs drilling against it:

- no rate-limit headers at all; the delay lives in the error body (``RetryInfo.retryDelay`` and
  "Please retry in 2.1s." in the message), so numeric ``ErrorSpec.retry_after`` goes into the
  body, never into a ``retry-after`` header;
- the stream has **no terminator event**: it ends after the chunk that carries
  ``finishReason``. So :meth:`Gemini.classify` calls that chunk the
  :attr:`EventKind.TERMINATOR` (``ends_stream=True``), and :meth:`_GeminiEncoder.finish` writes
  one. Real Gemini usually puts the last words and ``finishReason`` in the same chunk: that text
  is kept in ``EventInfo.text`` of the terminator, so a consumer must read ``text`` of every
  event, not only of CONTENT ones (the proxy decides "complete" by the TERMINATOR kind, which is
  why the kind is not CONTENT here);
- a mid-stream error is a bare chunk ``{"error": {...}}`` with no event name.

Streaming without ``alt=sse`` (a JSON array written piece by piece) is refused with a 400: the
proxy reads every stream as SSE events, and :class:`RequestInfo` has no field to tell the
encoder which framing to use. Every official Gemini SDK streams with ``alt=sse``.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from typing import Any

from ..sse import SSEEvent, encode_comment, encode_event
from ..toolcalls import Conversation, ToolCall, ToolDelta, ToolEdit, ToolSpec
from .base import (
    BadRequest,
    Completion,
    Dialect,
    ErrorKind,
    ErrorSpec,
    Event,
    EventInfo,
    EventKind,
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
    text_of,
)

__all__ = ["GEMINI_ERRORS", "Gemini", "gemini_error_object"]

_PATH = re.compile(
    r"^/v1[a-z0-9]*/(?:projects/[^/]+/locations/[^/]+/publishers/[^/]+/)?models/(?P<model>[^:]+)"
    r":(?P<method>generateContent|streamGenerateContent)$"
)

_QUOTA_METRIC = "generativelanguage.googleapis.com/generate_content_free_tier_requests"
_QUOTA_HELP = "For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits."
#: kind -> (HTTP status, google.rpc status, message template). ``{model}`` and ``{tokens}`` are filled in.
GEMINI_ERRORS: dict[ErrorKind, tuple[int, str, str]] = {
    ErrorKind.RATE_LIMIT: (
        429,
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota, please check your plan and billing details. "
        + _QUOTA_HELP
        + f"\n* Quota exceeded for metric: {_QUOTA_METRIC}, "
        "limit: 15, model: {model}",
    ),
    ErrorKind.SLOW_DOWN: (429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    ErrorKind.QUOTA_EXHAUSTED: (
        429,
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota, please check your plan and billing details. "
        + _QUOTA_HELP
        + f"\n* Quota exceeded for metric: {_QUOTA_METRIC}, "
        "limit: 0, model: {model}",
    ),
    ErrorKind.SPEND_LIMIT: (
        429,
        "RESOURCE_EXHAUSTED",
        "Your project has exceeded its spending cap. Please check your plan and billing details. " + _QUOTA_HELP,
    ),
    ErrorKind.OVERLOADED: (503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
    ErrorKind.QUEUE_FULL: (
        503,
        "UNAVAILABLE",
        "This model is currently experiencing high demand. Spikes in demand are usually temporary. "
        "Please try again later.",
    ),
    ErrorKind.SERVER_ERROR: (
        500,
        "INTERNAL",
        "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting",
    ),
    ErrorKind.BAD_GATEWAY: (502, "UNAVAILABLE", "Bad gateway."),
    ErrorKind.UNAVAILABLE: (503, "UNAVAILABLE", "The service is currently unavailable."),
    ErrorKind.GATEWAY_TIMEOUT: (
        504,
        "DEADLINE_EXCEEDED",
        "Deadline expired before operation could complete.",
    ),
    ErrorKind.AUTH: (
        401,
        "UNAUTHENTICATED",
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or "
        "other valid authentication credential.",
    ),
    ErrorKind.PERMISSION: (403, "PERMISSION_DENIED", "The caller does not have permission"),
    ErrorKind.NOT_FOUND: (
        404,
        "NOT_FOUND",
        "models/{model} is not found for API version v1beta, or is not supported for generateContent. "
        "Call ListModels to see the list of available models and their supported methods.",
    ),
    ErrorKind.CONTEXT_LENGTH: (
        400,
        "INVALID_ARGUMENT",
        "The input token count ({tokens}) exceeds the maximum number of tokens allowed (1048576).",
    ),
    ErrorKind.CONTENT_FILTER: (
        400,
        "INVALID_ARGUMENT",
        "The request was blocked because it violates the content policy.",
    ),
    ErrorKind.INVALID_REQUEST: (400, "INVALID_ARGUMENT", "Request contains an invalid argument."),
    ErrorKind.REQUEST_TIMEOUT: (408, "DEADLINE_EXCEEDED", "Request timed out."),
    ErrorKind.CONFLICT: (409, "ABORTED", "The operation was aborted."),
}
#: google.rpc status by HTTP status, for an ``ErrorSpec.status`` that moves an error elsewhere
_STATUS_BY_HTTP = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
#: the QuotaFailure violation each 429 flavour names: per minute (waiting helps), per day
_QUOTA_IDS = {
    ErrorKind.RATE_LIMIT: ("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "15"),
    ErrorKind.QUOTA_EXHAUSTED: ("GenerateRequestsPerDayPerProjectPerModel-FreeTier", "0"),
    ErrorKind.SPEND_LIMIT: ("GenerateRequestsPerDayPerProjectPerModel-FreeTier", "0"),
}
_FINISH_OUT = {"stop": "STOP", "length": "MAX_TOKENS", "content_filter": "SAFETY"}
_FINISH_IN = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}
_ROLE = {"user": "user", "model": "assistant", "function": "function"}


def gemini_error_object(spec: ErrorSpec, req: RequestInfo | None) -> tuple[int, dict[str, Any]]:
    """Status and the google.rpc.Status object (``{"code","message","status"[,"details"]}``).

    Quota errors carry a ``QuotaFailure`` and ``Help``; ``RetryInfo`` is added, and "Please retry
    in Ns." appended to the message, only when ``spec.retry_after`` is set: a per-minute quota
    without them is the "no delay given" case, a zero quota with them is the "come back in 10h"
    case.
    """
    status, rpc_status, template = GEMINI_ERRORS[spec.kind]
    if spec.status is not None and spec.status != status:
        status = spec.status
        rpc_status = _STATUS_BY_HTTP.get(status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION")
    model = (req.model if req else None) or "gemini-2.5-flash"
    tokens = max(1_048_577, req.prompt_tokens) if req else 1_200_000
    message = spec.message or template.format(model=model, tokens=tokens)
    details: list[dict[str, Any]] = []
    quota = _QUOTA_IDS.get(spec.kind)
    if quota is not None:
        quota_id, value = quota
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [
                    {
                        "quotaMetric": _QUOTA_METRIC,
                        "quotaId": quota_id,
                        "quotaDimensions": {"location": "global", "model": model},
                        "quotaValue": value,
                    }
                ],
            }
        )
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.Help",
                "links": [
                    {
                        "description": "Learn more about Gemini API quotas",
                        "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                    }
                ],
            }
        )
    if spec.retry_after is not None:
        if spec.message is None:
            message += f" Please retry in {spec.retry_after:g}s."
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.RetryInfo",
                "retryDelay": f"{max(0, int(spec.retry_after))}s",
            }
        )
    err: dict[str, Any] = {"code": status, "message": message, "status": rpc_status}
    if details:
        err["details"] = details
    return status, err


class Gemini(Dialect):
    """The Gemini API (Google AI Studio and Vertex AI paths)."""

    name = "gemini"
    carries_tool_calls = True

    def matches(self, method: str, path: str) -> bool:
        return _PATH.match(path) is not None

    def parse_request(
        self, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str], body: bytes
    ) -> RequestInfo:
        m = _PATH.match(path)
        if m is None:
            raise BadRequest(f"{path} is not a Gemini generateContent path.", status=404)
        if method != "POST":
            raise BadRequest(f"Method {method} is not allowed on {path}; use POST.", status=405)
        stream = m["method"] == "streamGenerateContent"
        if stream and query.get("alt") != "sse":
            raise BadRequest(
                "streamGenerateContent without alt=sse (a streamed JSON array) is not supported by "
                "routechaos; add ?alt=sse as the Gemini SDKs do."
            )
        model = m["model"].removeprefix("models/")
        data = json_loads_object(body)
        contents = data.get("contents")
        if not isinstance(contents, list) or not contents:
            raise BadRequest("* GenerateContentRequest.contents: contents is not specified")
        conv = Conversation()
        sys_inst = data.get("systemInstruction", data.get("system_instruction"))
        conv.add("system", text_of(sys_inst.get("parts")) if isinstance(sys_inst, dict) else text_of(sys_inst))
        for i, content in enumerate(contents):
            if not isinstance(content, dict) or not isinstance(content.get("parts"), list):
                raise BadRequest(f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.")
            _content(conv, _ROLE.get(str(content.get("role") or "user"), "user"), content["parts"])
        config = data.get("generationConfig", data.get("generation_config")) or {}
        max_tokens = (
            config.get("maxOutputTokens", config.get("max_output_tokens")) if isinstance(config, dict) else None
        )
        tools, choice, forced = _tools(data)
        return RequestInfo(
            dialect=self.name,
            operation="generate",
            model=model,
            stream=stream,
            max_tokens=max_tokens if isinstance(max_tokens, int) and max_tokens > 0 else None,
            tool_choice=choice,
            forced_tool=forced,
            **conversation_fields(conv, tools),
        )

    def render_completion(self, req: RequestInfo, completion: Completion) -> Rendered:
        body = _chunk(req, _parts(completion), _finish_word(completion), completion.usage, _response_id())
        return Rendered(200, _headers("application/json; charset=UTF-8"), json.dumps(body).encode())

    def render_error(self, spec: ErrorSpec, req: RequestInfo | None = None) -> Rendered:
        status, err = gemini_error_object(spec, req)
        # Gemini sends no retry header: a numeric delay is in the body (RetryInfo); only the
        # verbatim edge forms, x-should-retry and extra headers are written when asked for
        headers = retry_headers(dataclasses.replace(spec, retry_after=None))
        if spec.raw_body is not None:
            return Rendered(status, [("content-type", spec.content_type or "text/html"), *headers], spec.raw_body)
        if spec.kind == ErrorKind.BAD_GATEWAY and spec.message is None:
            return Rendered(status, [("content-type", "text/html"), *headers], edge_html(status))
        return Rendered(
            status, _headers("application/json; charset=UTF-8") + headers, json.dumps({"error": err}).encode()
        )

    def read_completion(self, body: bytes) -> EventInfo | None:
        try:
            obj = json.loads(body)
        except ValueError:
            return None
        if not isinstance(obj, dict) or not ("candidates" in obj or "promptFeedback" in obj):
            return None
        text, finish, usage, tools = _read_chunk(obj)
        return EventInfo(EventKind.CONTENT, text=text, finish=finish, usage=usage, tools=tools)

    def edit_tool_call(self, obj: dict[str, Any], edit: ToolEdit, body: bool = False) -> bool:
        """Calls are whole here, in a stream as in a body. Gemini checks a call before sending it:
        one to an undeclared function, or whose arguments are no JSON object, is never sent; the
        answer ends with ``UNEXPECTED_TOOL_CALL`` / ``MALFORMED_FUNCTION_CALL`` instead."""
        candidates = obj.get("candidates") or []
        cand = candidates[0] if candidates and isinstance(candidates[0], dict) else None
        parts = ((cand or {}).get("content") or {}).get("parts") or []
        calls = [p["functionCall"] for p in parts if isinstance(p, dict) and isinstance(p.get("functionCall"), dict)]
        if cand is None or edit.index >= len(calls):
            return False
        if edit.cut:  # a cut call is never sent: it and the calls after it are gone
            keep = {id(c) for c in calls[: edit.index]}
            cand["content"]["parts"] = [
                p for p in parts if not (isinstance(p, dict) and "functionCall" in p) or id(p["functionCall"]) in keep
            ]
            cand["finishReason"] = "MAX_TOKENS"
            return True
        args = _args_of(edit.arguments) if edit.arguments is not None else calls[edit.index].get("args")
        refused = "UNEXPECTED_TOOL_CALL" if edit.unexpected else "MALFORMED_FUNCTION_CALL" if args is None else None
        if refused is not None:
            cand["content"] = {}
            cand["finishReason"] = refused
            name = edit.name or calls[edit.index].get("name")
            cand["finishMessage"] = (
                f"Unexpected tool call: {name} is not a declared function"
                if edit.unexpected
                else f"Malformed function call: the arguments of {name} are not a JSON object"
            )
            return True
        if edit.name is not None:
            calls[edit.index]["name"] = edit.name
        calls[edit.index]["args"] = args
        return True

    def stream_headers(self, req: RequestInfo) -> list[tuple[str, str]]:
        return super().stream_headers(req) + _headers(None)

    def stream_encoder(self, req: RequestInfo) -> StreamEncoder:
        return _GeminiEncoder(req)

    def classify(self, event: SSEEvent) -> EventInfo:
        obj = json_event(event)
        if isinstance(obj, EventInfo):
            return obj
        if obj.get("error") is not None:
            err = obj["error"]
            return EventInfo(EventKind.ERROR, error=err if isinstance(err, dict) else {"message": str(err)})
        text, finish, usage, tools = _read_chunk(obj)
        if finish is not None:
            return EventInfo(EventKind.TERMINATOR, text=text, finish=finish, usage=usage, ends_stream=True, tools=tools)
        if text or tools:
            return EventInfo(EventKind.CONTENT, text=text, usage=usage, tools=tools)
        return EventInfo(EventKind.META, usage=usage)


def _read_chunk(obj: dict[str, Any]) -> tuple[str, str | None, Usage | None, tuple[ToolDelta, ...]]:
    """Answer text, canonical finish, usage and whole function calls of one
    ``GenerateContentResponse`` (Gemini never sends part of a call)."""
    candidates = obj.get("candidates") or []
    cand = candidates[0] if candidates and isinstance(candidates[0], dict) else {}
    parts = (cand.get("content") or {}).get("parts") or []
    # thought parts are reasoning summaries, not the answer
    text = "".join(p.get("text") or "" for p in parts if isinstance(p, dict) and not p.get("thought"))
    calls = [p["functionCall"] for p in parts if isinstance(p, dict) and isinstance(p.get("functionCall"), dict)]
    tools = tuple(
        ToolDelta(
            i, fc.get("id"), str(fc.get("name") or ""), json.dumps(fc.get("args") or {}, ensure_ascii=False), True
        )
        for i, fc in enumerate(calls)
    )
    reason = cand.get("finishReason")
    finish = _FINISH_IN.get(reason, str(reason).lower()) if reason else None
    if finish is None and (obj.get("promptFeedback") or {}).get("blockReason"):
        finish = "content_filter"  # the prompt was blocked: no candidates, and the stream ends here
    return text, finish, _parse_usage(obj.get("usageMetadata")), tools


def _content(conv: Conversation, role: str, parts: list[Any]) -> None:
    """One ``Content`` into the conversation, in Chat Completions' shape for a shared fingerprint:
    each ``functionResponse`` part is one ``tool`` turn, the text parts make the content's own
    turn, and a model's ``functionCall`` parts are its tool calls (Gemini has no call ids unless
    the client set them: results pair with calls by name, in order)."""
    calls = [p["functionCall"] for p in parts if isinstance(p, dict) and isinstance(p.get("functionCall"), dict)]
    results = [
        p["functionResponse"] for p in parts if isinstance(p, dict) and isinstance(p.get("functionResponse"), dict)
    ]
    for r in results:
        conv.add_result(r.get("id"), r.get("name"), _tool_text(r.get("response")))
    texts = [p for p in parts if isinstance(p, dict) and "text" in p and not p.get("thought")]
    if calls and role == "assistant":
        conv.add_calls([(c.get("id"), str(c.get("name") or ""), c.get("args") or {}) for c in calls], text_of(texts))
    elif texts or not results:
        conv.add("user" if role == "function" else role, text_of(texts))


def _tools(data: dict[str, Any]) -> tuple[tuple[ToolSpec, ...], str, str | None]:
    """Function declarations offered and the function-calling mode (``toolConfig``)."""
    raw = data.get("tools")
    if raw is not None and not isinstance(raw, list):
        raise BadRequest('Invalid JSON payload received. Unknown name "tools": expected a list.')
    specs: list[ToolSpec] = []
    for i, tool in enumerate(raw or []):
        if not isinstance(tool, dict):
            raise BadRequest(f"* GenerateContentRequest.tools[{i}]: must be an object.")
        decls = tool.get("functionDeclarations", tool.get("function_declarations")) or []
        for j, d in enumerate(decls if isinstance(decls, list) else []):
            if not isinstance(d, dict) or not isinstance(d.get("name"), str) or not d["name"]:
                where = f"tools[{i}].function_declarations[{j}].name"
                raise BadRequest(f"* GenerateContentRequest.{where}: Name is required.")
            schema = d.get("parametersJsonSchema", d.get("parameters_json_schema", d.get("parameters")))
            specs.append(ToolSpec(d["name"], schema if isinstance(schema, dict) else None))
    tc = data.get("toolConfig", data.get("tool_config"))
    fcc = (tc.get("functionCallingConfig", tc.get("function_calling_config")) if isinstance(tc, dict) else None) or {}
    mode = str(fcc.get("mode") or "AUTO").upper() if isinstance(fcc, dict) else "AUTO"
    if mode == "NONE":
        return tuple(specs), "none", None
    if mode == "ANY":
        allowed = fcc.get("allowedFunctionNames", fcc.get("allowed_function_names")) or []
        names = [n for n in allowed if isinstance(n, str)]
        if names:
            specs = [s for s in specs if s.name in names] or specs
        return tuple(specs), "required", names[0] if len(names) == 1 else None
    return tuple(specs), "auto", None


def _tool_text(response: Any) -> str:
    """A function response as the string Chat Completions would carry: Gemini wraps a tool's
    output in an object, conventionally ``{"output": ...}`` or ``{"result": ...}``; anything else
    is its JSON text."""
    if isinstance(response, dict):
        for key in ("output", "result", "content"):
            if isinstance(response.get(key), str) and len(response) == 1:
                return response[key]
    return response if isinstance(response, str) else json.dumps(response, ensure_ascii=False)


def _headers(content_type: str | None) -> list[tuple[str, str]]:
    out = [("content-type", content_type)] if content_type else []
    return [*out, ("server", "scaffolding on HTTPServer2"), ("x-content-type-options", "nosniff")]


def _response_id() -> str:
    return request_id("")[:22]


def _usage_meta(u: Usage) -> dict[str, Any]:
    out: dict[str, Any] = {
        "promptTokenCount": u.input_tokens,
        "candidatesTokenCount": u.output_tokens,
        "totalTokenCount": u.total_tokens,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": u.input_tokens}],
    }
    if u.cached_input_tokens:
        out["cachedContentTokenCount"] = u.cached_input_tokens
        out["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": u.cached_input_tokens}]
    return out


def _parse_usage(obj: Any) -> Usage | None:
    if not isinstance(obj, dict) or "candidatesTokenCount" not in obj:
        return None
    try:
        return Usage(
            int(obj.get("promptTokenCount") or 0),
            int(obj.get("candidatesTokenCount") or 0),
            int(obj.get("cachedContentTokenCount") or 0),
        )
    except (TypeError, ValueError):
        return None


def _parts(completion: Completion) -> list[dict[str, Any]]:
    """The answer's parts: its text, or its function calls. A call cut by the token limit is not
    sent at all (Gemini sends calls whole or not at all), and arguments that are not a JSON object
    cannot be written as ``args``: :func:`_finish_word` then says ``MALFORMED_FUNCTION_CALL``."""
    if not completion.tool_calls:
        return [{"text": completion.text}]
    calls = completion.tool_calls[:-1] if completion.finish == "length" else completion.tool_calls
    parts = [{"text": completion.text}] if completion.text else []
    for c in calls:
        args = _args_of(c.arguments)
        if args is None:
            return []
        parts.append({"functionCall": {"name": c.name, "args": args}})
    return parts


def _args_of(arguments: str) -> dict[str, Any] | None:
    try:
        value = json.loads(arguments)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _finish_word(completion: Completion) -> str:
    if (
        completion.tool_calls
        and completion.finish == "stop"
        and any(_args_of(c.arguments) is None for c in completion.tool_calls)
    ):
        return "MALFORMED_FUNCTION_CALL"
    return _FINISH_OUT.get(completion.finish, "STOP")


def _chunk(
    req: RequestInfo, parts: list[dict[str, Any]], finish: str, usage: Usage, response_id: str
) -> dict[str, Any]:
    """One ``GenerateContentResponse``: the whole answer, or the last chunk of a stream."""
    content: dict[str, Any] = {"parts": parts, "role": "model"} if parts else {}
    return {
        "candidates": [{"content": content, "finishReason": finish, "index": 0}],
        "usageMetadata": _usage_meta(usage),
        "modelVersion": req.model,
        "responseId": response_id,
    }


class _GeminiEncoder(StreamEncoder):
    """Gemini sends nothing before the first token, and every chunk is a whole
    ``GenerateContentResponse`` whose only varying part is the text: it is spliced between a
    prefix and a suffix formatted once."""

    def __init__(self, req: RequestInfo) -> None:
        self.req = req
        self.response_id = _response_id()
        self._prefix = b'data: {"candidates":[{"content":{"parts":[{"text":'
        tail = {
            "usageMetadata": {
                "promptTokenCount": req.prompt_tokens,
                "totalTokenCount": req.prompt_tokens,
                "promptTokensDetails": [{"modality": "TEXT", "tokenCount": req.prompt_tokens}],
            },
            "modelVersion": req.model,
            "responseId": self.response_id,
        }
        self._suffix = (
            b'}],"role":"model"},"index":0}],' + json.dumps(tail, separators=(",", ":"))[1:].encode() + b"\n\n"
        )

    def start(self, tool_calls: bool = False) -> list[Event]:
        return []

    def content(self, text: str, tokens: int = 1) -> Event:
        return Event(
            self._prefix + json.dumps(text).encode() + self._suffix,
            EventKind.CONTENT,
            text=text,
            tokens=tokens,
        )

    def tool_call_start(self, index: int, call: ToolCall) -> list[Event]:
        return []  # Gemini sends each call whole, in the answer's last chunk

    def tool_arguments(self, index: int, fragment: str, tokens: int = 1) -> list[Event]:
        return []

    def tool_call_end(self, index: int, call: ToolCall, complete: bool = True) -> list[Event]:
        return []

    def finish(self, completion: Completion) -> list[Event]:
        if not completion.tool_calls:
            parts: list[dict[str, Any]] = [{"text": ""}]
            chunk = _chunk(
                self.req, parts, _FINISH_OUT.get(completion.finish, "STOP"), completion.usage, self.response_id
            )
            return [Event(encode_event(json.dumps(chunk, separators=(",", ":"))), EventKind.TERMINATOR)]
        parts = _parts(completion)
        chunk = _chunk(self.req, parts, _finish_word(completion), completion.usage, self.response_id)
        calls = [p["functionCall"] for p in parts if "functionCall" in p]
        tools = tuple(
            ToolDelta(i, None, fc["name"], json.dumps(fc["args"], ensure_ascii=False), True)
            for i, fc in enumerate(calls)
        )
        data = encode_event(json.dumps(chunk, separators=(",", ":"), ensure_ascii=False))
        # every token of the answer arrives with this chunk
        return [Event(data, EventKind.TERMINATOR, tokens=completion.usage.output_tokens, tools=tools)]

    def cut_tool_call(self, index: int, arguments: str, usage: Usage) -> list[Event]:
        # a cut call is never sent: the answer just ends, with no parts
        chunk = _chunk(self.req, [], "MAX_TOKENS", usage, self.response_id)
        return [Event(encode_event(json.dumps(chunk, separators=(",", ":"))), EventKind.TERMINATOR)]

    def keepalive(self) -> Event:
        # Gemini itself never sends one; this comment is what a relay in front of it adds, and is
        # invisible to SSE parsers (not to line-based ones, which is worth a drill of its own)
        return Event(encode_comment(), EventKind.KEEPALIVE)

    def error(self, spec: ErrorSpec) -> list[Event]:
        _, err = gemini_error_object(spec, self.req)
        return [Event(encode_event(json.dumps({"error": err})), EventKind.ERROR)]
