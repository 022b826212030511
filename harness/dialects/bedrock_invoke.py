"""``InvokeModel`` and ``InvokeModelWithResponseStream`` with Anthropic's Messages body: Claude
on Bedrock, as ``anthropic.AnthropicBedrock`` calls it.

The request is the Messages API body without ``model`` (the model is in the path) and with
``anthropic_version: "bedrock-2023-05-31"`` (required: Bedrock refuses the body without it); the
answer is Anthropic's message JSON, with the token counts also in
``X-Amzn-Bedrock-{Input,Output}-Token-Count`` headers. A stream is Anthropic's events, each
base64-encoded in the ``bytes`` of an event-stream ``chunk`` frame; the ``message_stop`` event
carries ``amazon-bedrock-invocationMetrics``. Errors are Bedrock's (:mod:`.bedrock`): an HTTP
``ThrottlingException`` is the SDK's ``RateLimitError`` (it picks classes by status), an
in-stream ``throttlingException`` becomes an Anthropic ``error`` event the SDK raises as a plain
``APIStatusError`` with status 200.

Tool use is Anthropic's too (``tool_use`` blocks, ``input_json_delta`` fragments, ``stop_reason:
tool_use``), each event inside its ``chunk``; a tool-call fault edits the Anthropic event inside
the frame (:meth:`BedrockInvoke.event_object`) and the frame is written again around it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ..sse import SSEEvent
from ..toolcalls import ToolCall, ToolEdit
from .anthropic import AnthropicMessages
from .base import (
    BadRequest,
    Completion,
    ErrorSpec,
    Event,
    EventInfo,
    EventKind,
    Rendered,
    RequestInfo,
    StreamEncoder,
    Usage,
    json_loads_object,
)
from .bedrock import BedrockDialect, amzn_headers, bedrock_exception, frame
from .eventstream import exception_frame

__all__ = ["BedrockInvoke"]

BEDROCK_ANTHROPIC_VERSION = "bedrock-2023-05-31"
_DATA = b"data: "


class BedrockInvoke(BedrockDialect):
    """Claude on Bedrock through ``InvokeModel`` / ``InvokeModelWithResponseStream``."""

    name = "bedrock-invoke"
    operations = ("invoke", "invoke-with-response-stream")
    carries_tool_calls = True

    def __init__(self) -> None:
        self._messages = AnthropicMessages()

    def parse_request(
        self, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str], body: bytes
    ) -> RequestInfo:
        model, stream = self._path(method, path)
        data = json_loads_object(body)
        if "anthropic_version" not in data:
            raise BadRequest(
                "Malformed input request: #: required key [anthropic_version] not found, please reformat your "
                "input and try again."
            )
        data["model"] = model
        data.pop("stream", None)
        # read as the Messages request it is, so everything Anthropic's dialect learns applies
        info = self._messages.parse_request("POST", "/v1/messages", query, headers, json.dumps(data).encode())
        return replace(info, dialect=self.name, operation="invoke", stream=stream)

    def render_completion(self, req: RequestInfo, completion: Completion) -> Rendered:
        r = self._messages.render_completion(req, completion)
        u = completion.usage
        headers = [
            ("content-type", "application/json"),
            *amzn_headers(),
            ("X-Amzn-Bedrock-Invocation-Latency", "120"),
            ("X-Amzn-Bedrock-Input-Token-Count", str(u.input_tokens)),
            ("X-Amzn-Bedrock-Output-Token-Count", str(u.output_tokens)),
        ]
        return Rendered(200, headers, r.body)

    def read_completion(self, body: bytes) -> EventInfo | None:
        return self._messages.read_completion(body)

    def edit_tool_call(self, obj: dict[str, Any], edit: ToolEdit, body: bool = False) -> bool:
        return self._messages.edit_tool_call(obj, edit, body)

    def event_object(self, event: SSEEvent) -> dict[str, Any] | None:
        """The Anthropic event inside a ``chunk`` frame's base64 ``bytes``."""
        frame_obj = super().event_object(event)
        if frame_obj is None or event.event != "chunk":
            return None
        try:
            inner = json.loads(base64.b64decode(frame_obj.get("bytes") or "", validate=True))
        except (ValueError, TypeError):
            return None
        return inner if isinstance(inner, dict) else None

    def encode_object(self, event: SSEEvent, obj: dict[str, Any]) -> bytes:
        payload = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
        return frame("chunk", {"bytes": base64.b64encode(payload).decode()})

    def stream_headers(self, req: RequestInfo) -> list[tuple[str, str]]:
        return [*super().stream_headers(req), ("X-Amzn-Bedrock-Content-Type", "application/json")]

    def stream_encoder(self, req: RequestInfo) -> StreamEncoder:
        return _InvokeEncoder(req, self._messages.stream_encoder(req))

    def classify_event(self, event_type: str, obj: dict[str, Any]) -> EventInfo:
        if event_type != "chunk":
            return EventInfo(EventKind.META)
        try:
            inner = base64.b64decode(obj.get("bytes") or "", validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return EventInfo(EventKind.MALFORMED)
        return self._messages.classify(SSEEvent(raw=b"", event=None, data=inner))


class _InvokeEncoder(StreamEncoder):
    """Anthropic's events, each re-framed as a Bedrock ``chunk``; Bedrock relays no ``ping``."""

    def __init__(self, req: RequestInfo, inner: StreamEncoder) -> None:
        self.req = req
        self.inner = inner

    def _wrap(self, events: list[Event], completion: Completion | None = None) -> list[Event]:
        out = []
        for ev in events:
            if ev.kind is EventKind.KEEPALIVE:
                continue
            out.append(self._chunk(ev, completion))
        return out

    def _chunk(self, ev: Event, completion: Completion | None = None) -> Event:
        i = ev.data.find(_DATA)
        payload = ev.data[i + len(_DATA) :].rstrip(b"\n") if i >= 0 else ev.data
        if completion is not None and ev.kind is EventKind.TERMINATOR:
            obj = json.loads(payload)
            u = completion.usage
            obj["amazon-bedrock-invocationMetrics"] = {
                "inputTokenCount": u.input_tokens,
                "outputTokenCount": u.output_tokens,
                "invocationLatency": 120,
                "firstByteLatency": 40,
            }
            payload = json.dumps(obj, separators=(",", ":")).encode()
        data = frame("chunk", {"bytes": base64.b64encode(payload).decode()})
        return Event(data, ev.kind, ev.text, ev.tokens, ev.finish, ev.usage, ev.tools)

    def start(self, tool_calls: bool = False) -> list[Event]:
        return self._wrap(self.inner.start(tool_calls))

    def tool_call_start(self, index: int, call: ToolCall) -> list[Event]:
        return self._wrap(self.inner.tool_call_start(index, call))

    def tool_arguments(self, index: int, fragment: str, tokens: int = 1) -> list[Event]:
        return self._wrap(self.inner.tool_arguments(index, fragment, tokens))

    def tool_call_end(self, index: int, call: ToolCall, complete: bool = True) -> list[Event]:
        return self._wrap(self.inner.tool_call_end(index, call, complete))

    def cut_tool_call(self, index: int, arguments: str, usage: Usage) -> list[Event]:
        # the invocation metrics ride on message_stop, as they do on every answer's
        return self._wrap(self.inner.cut_tool_call(index, arguments, usage), Completion("", usage, "length"))

    def content(self, text: str, tokens: int = 1) -> Event:
        return self._chunk(self.inner.content(text, tokens))

    def finish(self, completion: Completion) -> list[Event]:
        return self._wrap(self.inner.finish(completion), completion)

    def keepalive(self) -> Event:
        return Event(b"", EventKind.KEEPALIVE)

    def error(self, spec: ErrorSpec) -> list[Event]:
        name, payload = bedrock_exception(spec, self.req)
        return [Event(exception_frame(name, json.dumps(payload, separators=(",", ":")).encode()), EventKind.ERROR)]
