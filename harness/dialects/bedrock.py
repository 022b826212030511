"""AWS Bedrock Runtime: what its operations share, and ``Converse`` / ``ConverseStream``.

Paths are botocore's (``bedrock-runtime`` service model, rest-json): ``POST
/model/{modelId}/converse``, ``/converse-stream``, ``/invoke``, ``/invoke-with-response-stream``
(the model id URL-encoded: ``anthropic.claude-3-5-sonnet-20240620-v1%3A0``). Requests are
SigV4-signed; a lane accepts any signature (nothing is verified) and the journal keeps none of
it (``Authorization`` and the ``X-Amz-*`` values are redacted).

Where Bedrock differs, and why a router needs drilling against it:

- **HTTP errors** are ``{"message": "..."}`` with the exception's name in ``x-amzn-ErrorType``
  (``ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/``), which botocore
  turns into ``ClientError`` with ``Error.Code == "ThrottlingException"``. There is no
  ``Retry-After`` and there are no rate-limit headers: a delay a fault asks for is not sent.
  A daily token quota is a ``ThrottlingException`` too ("Too many tokens per day"), so it looks
  retryable; ``unavailable`` told with status 429 is ``ModelNotReadyException`` (a model that is
  still loading, retried by the AWS SDKs up to five times);
- **streams** are AWS event-stream binary frames (:mod:`.eventstream`), not SSE, and a failure
  after the 200 is an ``exception`` frame (``throttlingException``,
  ``modelStreamErrorException``, ``serviceUnavailableException``, ``internalServerException``)
  that botocore raises as ``EventStreamError`` *from the iterator*, outside any retry logic;
- Converse's stream ends ``messageStop`` (the stop reason: FINISH) then ``metadata`` (usage and
  latency: the TERMINATOR);
- tool use (:mod:`.bedrock_tools`) is ``toolUse`` blocks with ``stopReason: tool_use``, streamed
  as ``contentBlockStart`` / ``contentBlockDelta`` (the input's JSON in string fragments) /
  ``contentBlockStop``.

``InvokeModel`` with Anthropic's Messages body is in :mod:`.bedrock_invoke`.
"""

from __future__ import annotations

import dataclasses
import json
import re
import urllib.parse
import uuid
from collections.abc import Mapping
from typing import Any

from ..sse import SSEEvent
from ..toolcalls import Conversation, ToolCall, ToolDelta, ToolEdit
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
    json_loads_object,
    retry_headers,
)
from .bedrock_tools import (
    body_tool_deltas,
    converse_conversation,
    converse_tools,
    edit_converse_call,
    input_of,
    stream_tool_delta,
    tool_use_id,
)
from .eventstream import EventStreamDecoder, EventStreamMessage, event_frame, exception_frame

__all__ = ["BEDROCK_ERRORS", "BedrockConverse", "BedrockDialect", "bedrock_exception"]

MEDIA_TYPE = "application/vnd.amazon.eventstream"
PATH = re.compile(r"^/model/(?P<model>[^/]+)/(?P<op>converse|converse-stream|invoke|invoke-with-response-stream)$")
_CORAL = ":http://internal.amazon.com/coral/com.amazon.bedrock/"
_THROTTLED = "Too many requests, please wait before trying again."

#: kind -> (status, exception name, message). ``{model}`` is filled in.
BEDROCK_ERRORS: dict[ErrorKind, tuple[int, str, str]] = {
    ErrorKind.RATE_LIMIT: (429, "ThrottlingException", _THROTTLED),
    ErrorKind.SLOW_DOWN: (429, "ThrottlingException", _THROTTLED),
    ErrorKind.QUEUE_FULL: (429, "ThrottlingException", _THROTTLED),
    ErrorKind.QUOTA_EXHAUSTED: (
        429,
        "ThrottlingException",
        "Too many tokens per day, please wait before trying again.",
    ),
    ErrorKind.SPEND_LIMIT: (429, "ThrottlingException", "Too many tokens per day, please wait before trying again."),
    ErrorKind.OVERLOADED: (503, "ServiceUnavailableException", "Bedrock is unable to process your request."),
    ErrorKind.UNAVAILABLE: (503, "ServiceUnavailableException", "Service Unavailable"),
    ErrorKind.SERVER_ERROR: (
        500,
        "InternalServerException",
        "The server encountered an error processing your request.",
    ),
    ErrorKind.BAD_GATEWAY: (502, "InternalServerException", "Bad gateway."),
    ErrorKind.GATEWAY_TIMEOUT: (
        408,
        "ModelTimeoutException",
        "Model has timed out in processing the request. Try your request again.",
    ),
    ErrorKind.REQUEST_TIMEOUT: (
        408,
        "ModelTimeoutException",
        "Model has timed out in processing the request. Try your request again.",
    ),
    ErrorKind.AUTH: (403, "UnrecognizedClientException", "The security token included in the request is invalid."),
    ErrorKind.PERMISSION: (
        403,
        "AccessDeniedException",
        "You don't have access to the model with the specified model ID.",
    ),
    ErrorKind.NOT_FOUND: (
        404,
        "ResourceNotFoundException",
        "Could not resolve the foundation model from the provided model identifier.",
    ),
    ErrorKind.CONTEXT_LENGTH: (400, "ValidationException", "Input is too long for requested model."),
    ErrorKind.CONTENT_FILTER: (400, "ValidationException", "Output blocked by content filtering policy"),
    ErrorKind.INVALID_REQUEST: (
        400,
        "ValidationException",
        "Malformed input request, please reformat your input and try again.",
    ),
    ErrorKind.CONFLICT: (409, "ConflictException", "The request conflicts with another request; try again."),
}
_MODEL_NOT_READY = (
    "Model is not ready to serve inference requests. The AWS SDK will automatically retry the operation up to 5 "
    "times. For information about configuring automatic retries, see Retry behavior in the AWS SDKs and Tools "
    "reference guide."
)
#: in-stream exception (the event-stream member name) by kind; the rest are modelStreamErrorException
_STREAM_EXCEPTIONS = {
    ErrorKind.RATE_LIMIT: "throttlingException",
    ErrorKind.SLOW_DOWN: "throttlingException",
    ErrorKind.QUEUE_FULL: "throttlingException",
    ErrorKind.QUOTA_EXHAUSTED: "throttlingException",
    ErrorKind.SPEND_LIMIT: "throttlingException",
    ErrorKind.UNAVAILABLE: "serviceUnavailableException",
    ErrorKind.SERVER_ERROR: "internalServerException",
    ErrorKind.BAD_GATEWAY: "internalServerException",
    ErrorKind.CONTEXT_LENGTH: "validationException",
    ErrorKind.CONTENT_FILTER: "validationException",
    ErrorKind.INVALID_REQUEST: "validationException",
}
_STOP_OUT = {"stop": "end_turn", "length": "max_tokens", "content_filter": "content_filtered"}
_STOP_IN = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
#: real Bedrock pads every frame's JSON with ``"p"`` so lengths say nothing about the content
_PAD = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"


def bedrock_error(spec: ErrorSpec, req: RequestInfo | None) -> tuple[int, str, str]:
    """Status, exception name and message for ``spec``."""
    if spec.kind is ErrorKind.UNAVAILABLE and spec.status == 429:
        return 429, "ModelNotReadyException", spec.message or _MODEL_NOT_READY
    status, name, message = BEDROCK_ERRORS[spec.kind]
    if spec.kind is ErrorKind.AUTH:
        return status, name, spec.message or message  # AWS refuses credentials with a 403, never a 401
    return spec.status or status, name, spec.message or message


def bedrock_exception(spec: ErrorSpec, req: RequestInfo | None) -> tuple[str, dict[str, Any]]:
    """The in-stream exception frame's type and payload for ``spec``."""
    _, _, message = bedrock_error(spec, req)
    name = _STREAM_EXCEPTIONS.get(spec.kind)
    if name is None:  # the model provider failed mid-answer: Bedrock relays its status
        original = {ErrorKind.OVERLOADED: (529, "Overloaded")}.get(spec.kind, (500, message))
        payload: dict[str, Any] = {
            "message": f"The model returned the following errors: {original[1]}",
            "originalStatusCode": original[0],
            "originalMessage": original[1],
        }
        return "modelStreamErrorException", payload
    return name, {"message": message}


def amzn_headers() -> list[tuple[str, str]]:
    return [("x-amzn-RequestId", str(uuid.uuid4()))]


class BedrockDialect(Dialect):
    """What Bedrock's operations share: paths, errors, the event-stream framing."""

    stream_media_type = MEDIA_TYPE
    operations: tuple[str, ...] = ()

    def matches(self, method: str, path: str) -> bool:
        m = PATH.match(path)
        return m is not None and m["op"] in self.operations

    def _path(self, method: str, path: str) -> tuple[str, bool]:
        """The model id and whether the operation streams; a 405 for anything but POST."""
        m = PATH.match(path)
        if m is None:
            raise BadRequest(f"Unable to determine service/operation name to be authorized for {path}", status=404)
        if method != "POST":
            raise BadRequest(f"Method {method} is not allowed on {path}; use POST.", status=405)
        return urllib.parse.unquote(m["model"]), m["op"].endswith("stream")

    def render_error(self, spec: ErrorSpec, req: RequestInfo | None = None) -> Rendered:
        status, name, message = bedrock_error(spec, req)
        # no Retry-After on Bedrock: only the verbatim edge forms and extra headers are written
        headers = [*amzn_headers(), ("x-amzn-ErrorType", name + _CORAL)]
        headers += retry_headers(dataclasses.replace(spec, retry_after=None))
        if spec.raw_body is not None:
            return Rendered(status, [("content-type", spec.content_type or "text/html"), *headers], spec.raw_body)
        return Rendered(
            status, [("content-type", "application/json"), *headers], json.dumps({"message": message}).encode()
        )

    def stream_headers(self, req: RequestInfo) -> list[tuple[str, str]]:
        return [("content-type", MEDIA_TYPE), *amzn_headers()]

    def stream_decoder(self, max_event_bytes: int | None = None) -> EventStreamDecoder:
        return EventStreamDecoder(max_event_bytes)

    def classify(self, event: SSEEvent) -> EventInfo:
        if not isinstance(event, EventStreamMessage) or event.malformed:
            return EventInfo(EventKind.MALFORMED)
        try:
            obj = json.loads(event.data) if event.data else {}
        except ValueError:
            return EventInfo(EventKind.MALFORMED)
        if not isinstance(obj, dict):
            return EventInfo(EventKind.MALFORMED)
        if event.message_type != "event":
            return EventInfo(EventKind.ERROR, error={"type": event.event, **obj})
        return self.classify_event(event.event or "", obj)

    def classify_event(self, event_type: str, obj: dict[str, Any]) -> EventInfo:
        """What one ``event`` frame's JSON means."""
        raise NotImplementedError


def frame(event_type: str, obj: dict[str, Any]) -> bytes:
    """An event frame with ``obj`` as its JSON payload, padded as Bedrock pads."""
    obj["p"] = _PAD[: 4 + len(event_type) % 30]
    return event_frame(event_type, json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode())


# -- Converse -----------------------------------------------------------------------------------


class BedrockConverse(BedrockDialect):
    """``Converse`` and ``ConverseStream``: Bedrock's own model-independent message format."""

    name = "bedrock-converse"
    operations = ("converse", "converse-stream")
    carries_tool_calls = True

    def parse_request(
        self, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str], body: bytes
    ) -> RequestInfo:
        model, stream = self._path(method, path)
        data = json_loads_object(body)
        conv = Conversation()
        tools, choice, forced = converse_tools(data, converse_conversation(data, conv))
        config = data.get("inferenceConfig") if isinstance(data.get("inferenceConfig"), dict) else {}
        max_tokens = config.get("maxTokens")
        return RequestInfo(
            dialect=self.name,
            operation="converse",
            model=model,
            stream=stream,
            max_tokens=max_tokens if isinstance(max_tokens, int) and max_tokens > 0 else None,
            tool_choice=choice,
            forced_tool=forced,
            **conversation_fields(conv, tools),
        )

    def render_completion(self, req: RequestInfo, completion: Completion) -> Rendered:
        content: list[dict[str, Any]] = []
        if completion.text or not completion.tool_calls:
            content.append({"text": completion.text})
        content += [
            {"toolUse": {"toolUseId": tool_use_id(c), "name": c.name, "input": input_of(c.arguments)}}
            for c in completion.tool_calls
        ]
        body = {
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": _stop_out(completion),
            "usage": _usage(completion.usage),
            "metrics": {"latencyMs": 120},
        }
        return Rendered(200, [("content-type", "application/json"), *amzn_headers()], json.dumps(body).encode())

    def read_completion(self, body: bytes) -> EventInfo | None:
        try:
            obj = json.loads(body)
            blocks = obj["output"]["message"]["content"]
            text = "".join(b.get("text") or "" for b in blocks if isinstance(b, dict))
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
        stop = obj.get("stopReason")
        finish = _STOP_IN.get(stop, stop)
        usage = _parse_usage(obj.get("usage"))
        return EventInfo(EventKind.CONTENT, text=text, finish=finish, usage=usage, tools=body_tool_deltas(obj, finish))

    def edit_tool_call(self, obj: dict[str, Any], edit: ToolEdit, body: bool = False) -> bool:
        return edit_converse_call(obj, edit, body)

    def encode_object(self, event: SSEEvent, obj: dict[str, Any]) -> bytes:
        obj.pop("p", None)
        return frame(event.event or "", obj)

    def stream_encoder(self, req: RequestInfo) -> StreamEncoder:
        return _ConverseEncoder(req)

    def classify_event(self, event_type: str, obj: dict[str, Any]) -> EventInfo:
        tool = stream_tool_delta(event_type, obj)
        if tool is not None:
            kind = EventKind.CONTENT if tool.arguments else EventKind.META
            return EventInfo(kind, tools=(tool,))
        if event_type == "contentBlockDelta":
            text = (obj.get("delta") or {}).get("text") or ""
            return EventInfo(EventKind.CONTENT if text else EventKind.META, text=text)
        if event_type == "messageStop":
            stop = obj.get("stopReason")
            return EventInfo(EventKind.FINISH, finish=_STOP_IN.get(stop, stop))
        if event_type == "metadata":
            return EventInfo(EventKind.TERMINATOR, usage=_parse_usage(obj.get("usage")), ends_stream=True)
        return EventInfo(EventKind.META)


def _stop_out(completion: Completion) -> str:
    if completion.tool_calls and completion.finish == "stop":
        return "tool_use"
    return _STOP_OUT.get(completion.finish, "end_turn")


def _usage(u: Usage) -> dict[str, int]:
    return {"inputTokens": u.input_tokens, "outputTokens": u.output_tokens, "totalTokens": u.total_tokens}


def _parse_usage(obj: Any) -> Usage | None:
    if not isinstance(obj, dict):
        return None
    try:
        return Usage(int(obj.get("inputTokens") or 0), int(obj.get("outputTokens") or 0))
    except (TypeError, ValueError):
        return None


class _ConverseEncoder(StreamEncoder):
    """Text is block 0 (Bedrock sends no ``contentBlockStart`` for text); an answer that starts
    with tool calls numbers them from block 0, as the model's own blocks are numbered."""

    def __init__(self, req: RequestInfo) -> None:
        self.req = req
        self._first_tool_block = 1

    def start(self, tool_calls: bool = False) -> list[Event]:
        if tool_calls:
            self._first_tool_block = 0
        return [Event(frame("messageStart", {"role": "assistant"}), EventKind.META)]

    def content(self, text: str, tokens: int = 1) -> Event:
        data = frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": text}})
        return Event(data, EventKind.CONTENT, text=text, tokens=tokens)

    def tool_call_start(self, index: int, call: ToolCall) -> list[Event]:
        block = self._first_tool_block + index
        tid = tool_use_id(call)
        data = frame(
            "contentBlockStart",
            {"start": {"toolUse": {"toolUseId": tid, "name": call.name}}, "contentBlockIndex": block},
        )
        return [Event(data, EventKind.META, tools=(ToolDelta(block, tid, call.name, total=len(call.arguments)),))]

    def tool_arguments(self, index: int, fragment: str, tokens: int = 1) -> list[Event]:
        block = self._first_tool_block + index
        data = frame("contentBlockDelta", {"delta": {"toolUse": {"input": fragment}}, "contentBlockIndex": block})
        return [Event(data, EventKind.CONTENT, tokens=tokens, tools=(ToolDelta(block, arguments=fragment),))]

    def tool_call_end(self, index: int, call: ToolCall, complete: bool = True) -> list[Event]:
        # the block is closed even when maxTokens cut it; messageStop says max_tokens then
        block = self._first_tool_block + index
        data = frame("contentBlockStop", {"contentBlockIndex": block})
        return [Event(data, EventKind.META, tools=(ToolDelta(block, done=True),))]

    def finish(self, completion: Completion) -> list[Event]:
        text_block = (
            []
            if completion.tool_calls
            else [Event(frame("contentBlockStop", {"contentBlockIndex": 0}), EventKind.META)]
        )
        return [*text_block, *self._end(_stop_out(completion), completion.usage)]

    def cut_tool_call(self, index: int, arguments: str, usage: Usage) -> list[Event]:
        stop = Event(frame("contentBlockStop", {"contentBlockIndex": index}), EventKind.META)
        return [stop, *self._end("max_tokens", usage)]

    @staticmethod
    def _end(stop: str, usage: Usage) -> list[Event]:
        return [
            Event(frame("messageStop", {"stopReason": stop}), EventKind.FINISH),
            Event(frame("metadata", {"usage": _usage(usage), "metrics": {"latencyMs": 120}}), EventKind.TERMINATOR),
        ]

    def keepalive(self) -> Event:
        return Event(b"", EventKind.KEEPALIVE)  # Bedrock sends nothing while it waits

    def error(self, spec: ErrorSpec) -> list[Event]:
        name, payload = bedrock_exception(spec, self.req)
        payload_bytes = json.dumps(payload, separators=(",", ":")).encode()
        return [Event(exception_frame(name, payload_bytes), EventKind.ERROR)]
