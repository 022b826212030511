"""Ollama's native API: ``POST /api/chat`` and ``POST /api/generate``.

An ``ollama`` lane serves these beside the OpenAI-compatible ``/v1`` (as an Ollama server does).
What differs from every SSE dialect, and what a router must handle:

- streams are **NDJSON** (``application/x-ndjson``): one JSON object per line, no event names,
  no keep-alives; ``stream`` defaults to **true** when the request leaves it out;
- the last line is ``"done": true`` with ``done_reason`` (``stop``, ``length``), the token counts
  (``prompt_eval_count``, ``eval_count``) and durations in nanoseconds, ``load_duration``
  included (the time spent loading the model before the first token: seconds on a cold start);
  there is no other terminator, so that line is the :attr:`EventKind.TERMINATOR`;
- errors are a bare ``{"error": "..."}``, in a body or as a line of a stream: 503 "server busy"
  when the queue (``OLLAMA_MAX_QUEUE``) is full, 404 "model not found, try pulling it first",
  500 when the runner died. ollama-python raises ``ResponseError`` with the status (``-1`` for
  an error line inside a 200 stream);
- tool calls are ``message.tool_calls`` ``[{"function": {"name", "arguments"}}]`` with the
  arguments a JSON *object* and no id; Ollama parses them out of the model's text itself, so a
  stream sends each call whole on its own line, never in fragments, and ``done_reason`` is
  ``stop`` as for text. A call whose text is not a JSON object never becomes a call: the text
  arrives as the message's ``content`` (ollama-python types ``arguments`` as a mapping); a call
  the token limit cut is not sent at all (``done_reason: length``). Results come back as
  ``{"role": "tool", "content", "tool_name"}`` messages, paired with calls in order.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
from collections.abc import Mapping
from typing import Any

from ..sse import SSEEvent, SSEEventTooLarge
from ..toolcalls import ToolCall, ToolDelta, ToolEdit, fragment_count
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
    edge_html,
    json_loads_object,
    retry_headers,
    text_of,
)
from .openai_chat import OpenAIChat

__all__ = ["OLLAMA_ERRORS", "NDJSONDecoder", "OllamaNative"]

MEDIA_TYPE = "application/x-ndjson"
_BUSY = "server busy, please try again.  maximum pending requests exceeded"
#: kind -> (status, message). ``{model}`` is filled in.
OLLAMA_ERRORS: dict[ErrorKind, tuple[int, str]] = {
    ErrorKind.RATE_LIMIT: (429, "too many requests, please try again later"),
    ErrorKind.SLOW_DOWN: (429, "too many requests, please try again later"),
    ErrorKind.QUOTA_EXHAUSTED: (429, "you have reached your usage limit, please upgrade your plan"),
    ErrorKind.SPEND_LIMIT: (429, "you have reached your usage limit, please upgrade your plan"),
    ErrorKind.OVERLOADED: (503, _BUSY),
    ErrorKind.QUEUE_FULL: (503, _BUSY),
    ErrorKind.SERVER_ERROR: (500, "llama runner process has terminated: exit status 2"),
    ErrorKind.BAD_GATEWAY: (502, "bad gateway"),
    ErrorKind.UNAVAILABLE: (503, _BUSY),
    ErrorKind.GATEWAY_TIMEOUT: (504, "gateway timeout"),
    ErrorKind.AUTH: (401, "unauthorized"),
    ErrorKind.PERMISSION: (403, "forbidden"),
    ErrorKind.NOT_FOUND: (404, 'model "{model}" not found, try pulling it first'),
    ErrorKind.CONTEXT_LENGTH: (400, "the input length exceeds the context length"),
    ErrorKind.CONTENT_FILTER: (400, "the request was blocked by a content policy"),
    ErrorKind.INVALID_REQUEST: (400, "invalid request"),
    ErrorKind.REQUEST_TIMEOUT: (408, "request timed out"),
    ErrorKind.CONFLICT: (409, "conflict"),
}
_DONE_OUT = {"stop": "stop", "length": "length", "content_filter": "stop"}
_DONE_IN = {"stop": "stop", "length": "length"}


class NDJSONDecoder:
    """Incremental NDJSON decoder: each complete line is one event (``raw`` keeps its newline,
    ``data`` is the line); blank lines carry no event, as ollama-python never sees them. Framing
    and parsing are separate steps too (:meth:`frames`, :meth:`parse`), as in the SSE decoder."""

    def __init__(self, max_event_bytes: int | None = None) -> None:
        self._buf = bytearray()
        self.max_event_bytes = max_event_bytes

    @property
    def pending(self) -> bytes:
        return bytes(self._buf)

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        return [ev for raw in self.frames(chunk) if (ev := self.parse(raw)) is not None]

    def frames(self, chunk: bytes) -> list[bytes]:
        """The whole lines ``chunk`` completes, each with its newline."""
        self._buf += chunk
        out: list[bytes] = []
        while (i := self._buf.find(b"\n")) >= 0:
            out.append(bytes(self._buf[: i + 1]))
            del self._buf[: i + 1]
        if self.max_event_bytes is not None and len(self._buf) > self.max_event_bytes:
            raise SSEEventTooLarge(len(self._buf), self.max_event_bytes, [e for f in out if (e := self.parse(f))])
        return out

    @staticmethod
    def parse(raw: bytes) -> SSEEvent | None:
        line = raw.strip()
        return SSEEvent(raw=raw, event=None, data=line.decode("utf-8", errors="replace")) if line else None


def ollama_error(spec: ErrorSpec, req: RequestInfo | None) -> tuple[int, str]:
    status, template = OLLAMA_ERRORS[spec.kind]
    return spec.status or status, spec.message or template.format(model=(req.model if req else None) or "llama3.1")


class OllamaNative(Dialect):
    """``/api/chat`` and ``/api/generate`` as an Ollama server answers them."""

    name = "ollama-native"
    stream_media_type = MEDIA_TYPE
    carries_tool_calls = True

    def __init__(self) -> None:
        # requests are read as the Chat Completions they are equivalent to, so fingerprints (and
        # whatever else Chat Completions learns from a conversation) are the same on every dialect
        self._chat = OpenAIChat("ollama")

    def matches(self, method: str, path: str) -> bool:
        return path.rstrip("/") in ("/api/chat", "/api/generate")

    def parse_request(
        self, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str], body: bytes
    ) -> RequestInfo:
        if method != "POST":
            raise BadRequest(f"Method {method} is not allowed on {path}; use POST.", status=405)
        data = json_loads_object(body)
        model = data.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest("model is required")
        operation = "generate" if path.rstrip("/") == "/api/generate" else "chat"
        if operation == "chat":
            messages = data.get("messages")
            if not isinstance(messages, list) or not messages:
                raise BadRequest("messages is required")
            messages = [_chat_message(m) for m in messages]
        else:
            prompt = data.get("prompt")
            if not isinstance(prompt, str):
                raise BadRequest("prompt is required")
            messages = ([{"role": "system", "content": data["system"]}] if data.get("system") else []) + [
                {"role": "user", "content": prompt}
            ]
        options = data.get("options") if isinstance(data.get("options"), dict) else {}
        chat: dict[str, Any] = {"model": model, "messages": messages}
        if isinstance(options.get("num_predict"), int) and options["num_predict"] > 0:
            chat["max_tokens"] = options["num_predict"]
        if operation == "chat" and data.get("tools") is not None:
            chat["tools"] = data["tools"]  # Ollama's tools are Chat Completions' function tools
        info = self._chat.parse_request("POST", "/v1/chat/completions", query, headers, json.dumps(chat).encode())
        stream = data.get("stream", True) is not False
        return dataclasses.replace(info, dialect=self.name, operation=operation, stream=stream, include_usage=False)

    def render_completion(self, req: RequestInfo, completion: Completion) -> Rendered:
        body = _final(req, completion.text, completion)
        calls = completion.tool_calls[:-1] if completion.finish == "length" else completion.tool_calls
        for c in calls:
            _add_call(body["message"], c.name, c.arguments)
        return Rendered(200, [("content-type", "application/json; charset=utf-8")], _line(body)[:-1])

    def render_error(self, spec: ErrorSpec, req: RequestInfo | None = None) -> Rendered:
        status, message = ollama_error(spec, req)
        headers = retry_headers(spec)
        if spec.raw_body is not None:
            return Rendered(status, [("content-type", spec.content_type or "text/html"), *headers], spec.raw_body)
        if spec.kind in (ErrorKind.BAD_GATEWAY, ErrorKind.GATEWAY_TIMEOUT) and spec.message is None:
            return Rendered(status, [("content-type", "text/html"), *headers], edge_html(status))
        body = json.dumps({"error": message}).encode()
        return Rendered(status, [("content-type", "application/json; charset=utf-8"), *headers], body)

    def read_completion(self, body: bytes) -> EventInfo | None:
        try:
            obj = json.loads(body)
        except ValueError:
            return None
        if not isinstance(obj, dict) or "done" not in obj:
            return None
        text, finish, usage = _read(obj)
        return EventInfo(EventKind.CONTENT, text=text, finish=finish, usage=usage, tools=_calls_of(obj))

    def edit_tool_call(self, obj: dict[str, Any], edit: ToolEdit, body: bool = False) -> bool:
        """A line's (or the body's) ``tool_calls[edit.index]``; the same shape in both."""
        message = obj.get("message")
        calls = message.get("tool_calls") if isinstance(message, dict) else None
        if not isinstance(calls, list) or edit.index >= len(calls) or not isinstance(calls[edit.index], dict):
            return False
        fn = calls[edit.index].setdefault("function", {})
        if edit.cut:  # a call the token limit cut is never sent, nor the calls after it
            del calls[edit.index :]
            obj["done_reason"] = "length"
        else:
            if edit.name is not None:
                fn["name"] = edit.name
            if edit.arguments is not None:
                args = _object_of(edit.arguments)
                if args is None:  # not an object: Ollama does not see a call, the text is content
                    del calls[edit.index]
                    said = json.dumps({"name": fn.get("name")}, ensure_ascii=False)[:-1]
                    message["content"] = f'{message.get("content") or ""}{said}, "arguments": {edit.arguments}}}'
                else:
                    fn["arguments"] = args
        if not calls:
            message.pop("tool_calls")
        return True

    def encode_object(self, event: SSEEvent, obj: dict[str, Any]) -> bytes:
        return _line(obj)

    def stream_headers(self, req: RequestInfo) -> list[tuple[str, str]]:
        return [("content-type", MEDIA_TYPE)]

    def stream_decoder(self, max_event_bytes: int | None = None) -> NDJSONDecoder:
        return NDJSONDecoder(max_event_bytes)

    def stream_encoder(self, req: RequestInfo) -> StreamEncoder:
        return _NDJSONEncoder(req)

    def classify(self, event: SSEEvent) -> EventInfo:
        try:
            obj = json.loads(event.data)
        except ValueError:
            return EventInfo(EventKind.MALFORMED)
        if not isinstance(obj, dict):
            return EventInfo(EventKind.MALFORMED)
        if obj.get("error") is not None:
            err = obj["error"]
            return EventInfo(EventKind.ERROR, error=err if isinstance(err, dict) else {"message": str(err)})
        text, finish, usage = _read(obj)
        tools = _calls_of(obj)
        if obj.get("done") is True:
            return EventInfo(EventKind.TERMINATOR, text=text, finish=finish, usage=usage, ends_stream=True, tools=tools)
        return EventInfo(EventKind.CONTENT if text or tools else EventKind.META, text=text, tools=tools)


def _chat_message(msg: Any) -> Any:
    """An Ollama message as Chat Completions writes it: tool-call arguments are objects here and
    JSON strings there."""
    if not isinstance(msg, dict) or not isinstance(msg.get("tool_calls"), list):
        return msg
    calls = []
    for i, call in enumerate(msg["tool_calls"]):
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict):
            continue
        args = fn.get("arguments")
        calls.append(
            {
                "id": call.get("id") or f"call_{i}",
                "type": "function",
                "function": {"name": fn.get("name"), "arguments": args if isinstance(args, str) else json.dumps(args)},
            }
        )
    return {**msg, "tool_calls": calls}


def _calls_of(obj: dict[str, Any]) -> tuple[ToolDelta, ...]:
    """The whole calls one line (or body) carries, numbered within it."""
    message = obj.get("message")
    calls = message.get("tool_calls") if isinstance(message, dict) else None
    if not isinstance(calls, list):
        return ()
    out = []
    for i, call in enumerate(calls):
        fn = call.get("function") if isinstance(call, dict) else None
        if isinstance(fn, dict):
            args = fn.get("arguments")
            text = args if isinstance(args, str) else json.dumps(args if args is not None else {}, ensure_ascii=False)
            out.append(ToolDelta(i, call.get("id"), str(fn.get("name") or ""), text, True))
    return tuple(out)


def _object_of(arguments: str) -> dict[str, Any] | None:
    try:
        value = json.loads(arguments)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _add_call(message: dict[str, Any], name: str, arguments: str) -> None:
    """One call into ``message`` as Ollama writes it (arguments that are no JSON object, which
    Ollama would not have recognised as a call, become the message's text)."""
    args = _object_of(arguments)
    if args is None:
        said = json.dumps({"name": name}, ensure_ascii=False)[:-1]
        message["content"] = f'{message.get("content") or ""}{said}, "arguments": {arguments}}}'
        return
    message.setdefault("tool_calls", []).append({"function": {"name": name, "arguments": args}})


def _read(obj: dict[str, Any]) -> tuple[str, str | None, Usage | None]:
    message = obj.get("message")
    text = text_of(message.get("content")) if isinstance(message, dict) else str(obj.get("response") or "")
    finish = None
    usage = None
    if obj.get("done") is True:
        reason = obj.get("done_reason") or "stop"
        finish = _DONE_IN.get(reason, reason)
        try:
            usage = Usage(int(obj.get("prompt_eval_count") or 0), int(obj.get("eval_count") or 0))
        except (TypeError, ValueError):
            usage = None
    return text, finish, usage


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def _final(req: RequestInfo, text: str, completion: Completion, load_ns: int = 1_500_000) -> dict[str, Any]:
    """The ``done: true`` object: the whole answer, or a stream's last line (``text`` empty)."""
    u = completion.usage
    body: dict[str, Any] = {"model": req.model, "created_at": _now()}
    if req.operation == "generate":
        body["response"] = text
    else:
        body["message"] = {"role": "assistant", "content": text}
    eval_ns = max(1, u.output_tokens) * 16_000_000
    body.update(
        {
            "done": True,
            "done_reason": _DONE_OUT.get(completion.finish, "stop"),
            "total_duration": load_ns + 20_000_000 + eval_ns,
            "load_duration": load_ns,
            "prompt_eval_count": u.input_tokens,
            "prompt_eval_duration": 20_000_000,
            "eval_count": u.output_tokens,
            "eval_duration": eval_ns,
        }
    )
    if req.operation == "generate":
        body["context"] = [1, 2, 3]
    return body


class _NDJSONEncoder(StreamEncoder):
    def __init__(self, req: RequestInfo) -> None:
        self.req = req
        model = json.dumps(req.model)
        key = "response" if req.operation == "generate" else "message"
        self._prefix = f'{{"model":{model},"created_at":"'.encode()
        if key == "message":
            self._middle = b'","message":{"role":"assistant","content":'
            self._suffix = b'},"done":false}\n'
        else:
            self._middle = b'","response":'
            self._suffix = b',"done":false}\n'

    def start(self, tool_calls: bool = False) -> list[Event]:
        return []

    def tool_call_start(self, index: int, call: ToolCall) -> list[Event]:
        return []  # Ollama sends each call whole, once its text parsed as one

    def tool_arguments(self, index: int, fragment: str, tokens: int = 1) -> list[Event]:
        return []

    def tool_call_end(self, index: int, call: ToolCall, complete: bool = True) -> list[Event]:
        if not complete:
            return []  # cut by the token limit: never sent
        message: dict[str, Any] = {"role": "assistant", "content": ""}
        _add_call(message, call.name, call.arguments)
        line = {"model": self.req.model, "created_at": _now(), "message": message, "done": False}
        tools = _calls_of(line)
        kind = EventKind.CONTENT
        # every token of the call arrives with its line
        return [Event(_line(line), kind, text=message["content"], tokens=fragment_count(call.arguments), tools=tools)]

    def cut_tool_call(self, index: int, arguments: str, usage: Usage) -> list[Event]:
        return [Event(_line(_final(self.req, "", Completion("", usage, "length"))), EventKind.TERMINATOR)]

    def content(self, text: str, tokens: int = 1) -> Event:
        data = self._prefix + _now().encode() + self._middle + json.dumps(text).encode() + self._suffix
        return Event(data, EventKind.CONTENT, text=text, tokens=tokens)

    def finish(self, completion: Completion) -> list[Event]:
        return [Event(_line(_final(self.req, "", completion)), EventKind.TERMINATOR)]

    def keepalive(self) -> Event:
        return Event(b"", EventKind.KEEPALIVE)  # Ollama sends nothing while it waits

    def error(self, spec: ErrorSpec) -> list[Event]:
        _, message = ollama_error(spec, self.req)
        return [Event(_line({"error": message}), EventKind.ERROR)]
