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
  latency: the TERMINATOR).

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

from ..canonical import estimate_tokens, fingerprint
from ..sse import SSEEvent
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
    json_loads_object,
    retry_headers,
    text_of,
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

    def parse_request(
        self, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str], body: bytes
    ) -> RequestInfo:
        model, stream = self._path(method, path)
        data = json_loads_object(body)
        messages = data.get("messages")
        if not isinstance(messages, list) or not messages:
            raise BadRequest(
                "A conversation must start with a user message. "
                "Try again with a conversation that starts with a user message."
            )
        turns: list[tuple[str, str]] = []
        for i, msg in enumerate(messages):
            if not isinstance(msg, dict) or msg.get("role") not in ("user", "assistant"):
                raise BadRequest(
                    f"1 validation error detected: Value at 'messages.{i + 1}.member.role' failed to satisfy constraint"
                )
            turns.extend(_converse_turns(msg["role"], msg.get("content")))
        system = "\n".join(text_of(b.get("text")) for b in data.get("system") or [] if isinstance(b, dict))
        config = data.get("inferenceConfig") if isinstance(data.get("inferenceConfig"), dict) else {}
        max_tokens = config.get("maxTokens")
        return RequestInfo(
            dialect=self.name,
            operation="converse",
            model=model,
            stream=stream,
            fingerprint=fingerprint(system, turns),
            prompt_tokens=estimate_tokens("\n".join([system] + [t for _, t in turns])),
            max_tokens=max_tokens if isinstance(max_tokens, int) and max_tokens > 0 else None,
        )

    def render_completion(self, req: RequestInfo, completion: Completion) -> Rendered:
        body = {
            "output": {"message": {"role": "assistant", "content": [{"text": completion.text}]}},
            "stopReason": _STOP_OUT.get(completion.finish, "end_turn"),
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
        return EventInfo(
            EventKind.CONTENT, text=text, finish=_STOP_IN.get(stop, stop), usage=_parse_usage(obj.get("usage"))
        )

    def stream_encoder(self, req: RequestInfo) -> StreamEncoder:
        return _ConverseEncoder(req)

    def classify_event(self, event_type: str, obj: dict[str, Any]) -> EventInfo:
        if event_type == "contentBlockDelta":
            text = (obj.get("delta") or {}).get("text") or ""
            return EventInfo(EventKind.CONTENT if text else EventKind.META, text=text)
        if event_type == "messageStop":
            stop = obj.get("stopReason")
            return EventInfo(EventKind.FINISH, finish=_STOP_IN.get(stop, stop))
        if event_type == "metadata":
            return EventInfo(EventKind.TERMINATOR, usage=_parse_usage(obj.get("usage")), ends_stream=True)
        return EventInfo(EventKind.META)


def _converse_turns(role: str, content: Any) -> list[tuple[str, str]]:
    """The (role, text) turns of one Converse message, in Chat Completions' shape (as
    ``anthropic._message_turns``): each ``toolResult`` block is a ``tool`` turn, the text blocks
    the message's own turn; ``toolUse`` blocks carry no text."""
    if not isinstance(content, list):
        return [(role, text_of(content))]
    results = [b["toolResult"] for b in content if isinstance(b, dict) and isinstance(b.get("toolResult"), dict)]
    texts = [b for b in content if isinstance(b, dict) and isinstance(b.get("text"), str)]
    turns = [("tool", _tool_result_text(r.get("content"))) for r in results]
    if texts or not results:
        turns.append((role, "\n".join(b["text"] for b in texts)))
    return turns


def _tool_result_text(content: Any) -> str:
    parts = []
    for block in content if isinstance(content, list) else []:
        if isinstance(block, dict) and isinstance(block.get("text"), str):
            parts.append(block["text"])
        elif isinstance(block, dict) and "json" in block:
            parts.append(json.dumps(block["json"], ensure_ascii=False))
    return "\n".join(parts)


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
    def __init__(self, req: RequestInfo) -> None:
        self.req = req

    def start(self) -> list[Event]:
        return [Event(frame("messageStart", {"role": "assistant"}), EventKind.META)]

    def content(self, text: str, tokens: int = 1) -> Event:
        data = frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": text}})
        return Event(data, EventKind.CONTENT, text=text, tokens=tokens)

    def finish(self, completion: Completion) -> list[Event]:
        stop = _STOP_OUT.get(completion.finish, "end_turn")
        return [
            Event(frame("contentBlockStop", {"contentBlockIndex": 0}), EventKind.META),
            Event(frame("messageStop", {"stopReason": stop}), EventKind.FINISH),
            Event(
                frame("metadata", {"usage": _usage(completion.usage), "metrics": {"latencyMs": 120}}),
                EventKind.TERMINATOR,
            ),
        ]

    def keepalive(self) -> Event:
        return Event(b"", EventKind.KEEPALIVE)  # Bedrock sends nothing while it waits

    def error(self, spec: ErrorSpec) -> list[Event]:
        name, payload = bedrock_exception(spec, self.req)
        payload_bytes = json.dumps(payload, separators=(",", ":")).encode()
        return [Event(exception_frame(name, payload_bytes), EventKind.ERROR)]
