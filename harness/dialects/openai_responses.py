"""OpenAI Responses API (``POST /v1/responses``).

Errors and rate-limit headers are OpenAI's, shared with Chat Completions (``OPENAI_ERRORS``). What
differs is the stream: named SSE events, each with a ``type`` and a monotonically increasing
``sequence_number``, ending with a terminal ``response.completed`` | ``response.incomplete`` |
``response.failed`` event and **no** ``data: [DONE]``. A client that waits for ``[DONE]`` hangs
here, which is one of the things this dialect lets a drill show.
"""

from __future__ import annotations

import json
import re
import time
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
    text_of,
)
from .openai_chat import openai_error_fields, openai_headers, openai_ratelimit_headers

__all__ = ["OpenAIResponses"]

_DATA_LINE = re.compile(rb"^data: ?(.*)$", re.MULTILINE)

_ROLE = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
#: canonical finish -> (response.status, incomplete_details.reason)
_FINISH_OUT: dict[str, tuple[str, str | None]] = {
    "stop": ("completed", None),
    "length": ("incomplete", "max_output_tokens"),
    "content_filter": ("incomplete", "content_filter"),
}
_INCOMPLETE_IN = {"max_output_tokens": "length", "content_filter": "content_filter"}
#: in-band ``response.failed`` codes: ``ResponseError.code`` is a closed Literal in the SDK, and
#: of its values only these two describe capacity, so every other kind is a ``server_error``.
_RATE_KINDS = frozenset(
    {
        ErrorKind.RATE_LIMIT,
        ErrorKind.SLOW_DOWN,
        ErrorKind.QUOTA_EXHAUSTED,
        ErrorKind.SPEND_LIMIT,
        ErrorKind.QUEUE_FULL,
    }
)


class OpenAIResponses(Dialect):
    """The Responses API as api.openai.com serves it."""

    name = "openai-responses"
    carries_tool_calls = True

    def matches(self, method: str, path: str) -> bool:
        return path.rstrip("/").endswith("/responses")

    def parse_request(
        self, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str], body: bytes
    ) -> RequestInfo:
        if method != "POST":
            raise BadRequest(f"Method {method} is not allowed on {path}; use POST.", status=405)
        data = json_loads_object(body)
        model = data.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest("Missing required parameter: 'model'.")
        instructions = data.get("instructions")
        conv = Conversation()
        if instructions:
            conv.add("system", text_of(instructions))
        _input_turns(data.get("input"), conv)
        if not conv.turns and not (data.get("previous_response_id") or data.get("conversation") or data.get("prompt")):
            raise BadRequest("Missing required parameter: 'input'.")
        max_tokens = data.get("max_output_tokens")
        tools, choice, forced = _tools(data)
        fields = conversation_fields(conv, tools)
        if data.get("previous_response_id"):
            fields["tool_rounds"] += _orphan_rounds(conv)
        return RequestInfo(
            dialect=self.name,
            operation="responses",
            model=model,
            stream=bool(data.get("stream")),
            max_tokens=max_tokens if isinstance(max_tokens, int) and max_tokens > 0 else None,
            tool_choice=choice,
            forced_tool=forced,
            parallel_tool_calls=data.get("parallel_tool_calls") is not False,
            **fields,
        )

    def render_completion(self, req: RequestInfo, completion: Completion) -> Rendered:
        status, reason = _FINISH_OUT.get(completion.finish, _FINISH_OUT["stop"])
        item_status = "completed" if reason is None else "incomplete"
        output = []
        if completion.text or not completion.tool_calls:
            output.append(_message_item("msg_" + request_id("")[:24], completion.text, item_status))
        n = len(completion.tool_calls)
        for k, c in enumerate(completion.tool_calls):
            last_cut = reason is not None and k == n - 1
            output.append(_call_item(c, c.arguments, "incomplete" if last_cut else "completed"))
        body = _response_obj(
            "resp_" + request_id(""), req, status, output, usage=_usage(completion.usage), incomplete=reason
        )
        return Rendered(200, [("content-type", "application/json"), *openai_headers()], json.dumps(body).encode())

    def render_error(self, spec: ErrorSpec, req: RequestInfo | None = None) -> Rendered:
        status, err = openai_error_fields(spec, req.model if req else None)
        headers = openai_headers() + retry_headers(spec)
        if spec.ratelimit is not None:
            headers += self.ratelimit_headers(spec.ratelimit)
        if spec.raw_body is not None:
            return Rendered(status, [("content-type", spec.content_type or "text/html"), *headers], spec.raw_body)
        if spec.kind in (ErrorKind.BAD_GATEWAY, ErrorKind.GATEWAY_TIMEOUT) and spec.message is None:
            return Rendered(status, [("content-type", "text/html"), *headers], edge_html(status))
        return Rendered(status, [("content-type", "application/json"), *headers], json.dumps({"error": err}).encode())

    def read_completion(self, body: bytes) -> EventInfo | None:
        try:
            obj = json.loads(body)
            text = "".join(
                part.get("text") or ""
                for item in obj["output"]
                if item.get("type") == "message"
                for part in item.get("content") or []
                if part.get("type") == "output_text"
            )
            tools = tuple(
                ToolDelta(i, item.get("call_id"), item.get("name"), str(item.get("arguments") or ""), _done(item))
                for i, item in enumerate(obj["output"])
                if item.get("type") == "function_call"
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
        usage = _parse_usage(obj.get("usage"))
        return EventInfo(EventKind.CONTENT, text=text, finish=_finish_of(obj), usage=usage, tools=tools)

    def edit_tool_call(self, obj: dict[str, Any], edit: ToolEdit, body: bool = False) -> bool:
        if body:
            calls = [o for o in obj.get("output") or [] if isinstance(o, dict) and o.get("type") == "function_call"]
            if edit.index >= len(calls) or not _edit_item(calls[edit.index], edit, whole=True):
                return False
            if edit.cut:
                calls[edit.index]["status"] = "incomplete"
                later = {id(c) for c in calls[edit.index + 1 :]}
                obj["output"] = [o for o in obj["output"] if id(o) not in later]
                obj["status"] = "incomplete"
                obj["incomplete_details"] = {"reason": "max_output_tokens"}
            return True
        etype = obj.get("type")
        at = obj.get("output_index") == edit.index
        if etype == "response.function_call_arguments.delta":
            if at and edit.fragment is not None:
                obj["delta"] = edit.fragment
                return True
            return False
        if etype == "response.function_call_arguments.done":
            if at and edit.arguments is not None:
                obj["arguments"] = edit.arguments
                return True
            return False
        if etype in ("response.output_item.added", "response.output_item.done"):
            item = obj.get("item")
            return at and isinstance(item, dict) and _edit_item(item, edit, whole=etype.endswith("done"))
        resp = obj.get("response")
        output = resp.get("output") if isinstance(resp, dict) else None
        if isinstance(output, list) and edit.index < len(output) and isinstance(output[edit.index], dict):
            return _edit_item(output[edit.index], edit, whole=True)
        return False

    def ratelimit_headers(self, snap: RateLimitSnapshot, now: Any = None) -> list[tuple[str, str]]:
        return openai_ratelimit_headers(snap)

    def stream_headers(self, req: RequestInfo) -> list[tuple[str, str]]:
        return super().stream_headers(req) + openai_headers()

    def stream_encoder(self, req: RequestInfo) -> StreamEncoder:
        return _ResponsesEncoder(req)

    def classify(self, event: SSEEvent) -> EventInfo:
        obj = json_event(event)
        if isinstance(obj, EventInfo):
            return obj
        etype = obj.get("type") or event.event
        if etype == "response.output_text.delta":
            return EventInfo(EventKind.CONTENT, text=str(obj.get("delta") or ""))
        if etype == "response.function_call_arguments.delta":
            delta = str(obj.get("delta") or "")
            kind = EventKind.CONTENT if delta else EventKind.META
            return EventInfo(kind, tools=(ToolDelta(_index(obj), arguments=delta),))
        if etype in (
            "response.output_item.added",
            "response.output_item.done",
            "response.function_call_arguments.done",
        ):
            item = obj.get("item") if isinstance(obj.get("item"), dict) else {}
            if etype == "response.output_item.added" and item.get("type") == "function_call":
                opening = ToolDelta(
                    _index(obj), item.get("call_id"), item.get("name"), str(item.get("arguments") or "")
                )
                return EventInfo(EventKind.META, tools=(opening,))
            if etype == "response.function_call_arguments.done" or (
                item.get("type") == "function_call" and _done(item)
            ):
                return EventInfo(EventKind.META, tools=(ToolDelta(_index(obj), done=True),))
            return EventInfo(EventKind.META)
        if etype == "error":
            return EventInfo(
                EventKind.ERROR,
                error={"code": obj.get("code"), "message": obj.get("message"), "param": obj.get("param")},
            )
        resp = obj.get("response") if isinstance(obj.get("response"), dict) else {}
        if etype == "response.failed":
            err = resp.get("error")
            return EventInfo(
                EventKind.ERROR,
                error=err if isinstance(err, dict) else {"message": str(err)},
                ends_stream=True,
            )
        if etype in ("response.completed", "response.incomplete"):
            usage = _parse_usage(resp.get("usage"))
            return EventInfo(EventKind.TERMINATOR, finish=_finish_of(resp), usage=usage, ends_stream=True)
        return EventInfo(EventKind.META)


def _input_turns(items: Any, conv: Conversation) -> None:
    """``input`` into the conversation, so it fingerprints as it would in Chat Completions.

    A ``function_call`` item joins the assistant message before it (or opens an empty assistant
    turn, like a Chat message whose content is null), and each ``function_call_output`` is one
    ``tool`` turn. Reasoning and other items carry no conversation text and are skipped.
    """
    if items is None:
        return
    if isinstance(items, str):
        conv.add("user", items)
        return
    if not isinstance(items, list):
        raise BadRequest("Invalid type for 'input': expected a string or an array of input items.")
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise BadRequest(f"Invalid type for 'input[{i}]': expected an object.")
        itype = item.get("type", "message")
        if itype == "message":
            if "role" not in item:
                raise BadRequest(f"Missing required parameter: 'input[{i}].role'.")
            conv.add(_ROLE.get(str(item["role"]), "user"), text_of(item.get("content")))
        elif itype == "function_call":
            if not isinstance(item.get("name"), str):
                raise BadRequest(f"Missing required parameter: 'input[{i}].name'.")
            conv.add_calls([(item.get("call_id"), item["name"], item.get("arguments") or "")])
        elif itype == "function_call_output":
            conv.add_result(item.get("call_id"), None, text_of(item.get("output")))


def _orphan_rounds(conv: Conversation) -> int:
    """With ``previous_response_id`` the calls live on the server, and the input holds only their
    results: results whose call is not in the input stand for one round of the script."""
    paired = sum(1 for c in conv.calls if c.has_result)
    results = sum(1 for t in conv.turns if t[0] == "tool")
    return 1 if results > paired else 0


def _tools(data: dict[str, Any]) -> tuple[tuple[ToolSpec, ...], str, str | None]:
    """Function tools offered (built-in tools such as ``web_search`` are not function calls) and
    the ``tool_choice``."""
    raw = data.get("tools")
    if raw is not None and not isinstance(raw, list):
        raise BadRequest("Invalid type for 'tools': expected an array.")
    specs: list[ToolSpec] = []
    for i, tool in enumerate(raw or []):
        if not isinstance(tool, dict):
            raise BadRequest(f"Invalid type for 'tools[{i}]': expected an object.")
        if tool.get("type") != "function":
            continue
        if not isinstance(tool.get("name"), str) or not tool["name"]:
            raise BadRequest(f"Missing required parameter: 'tools[{i}].name'.")
        params = tool.get("parameters")
        specs.append(ToolSpec(tool["name"], params if isinstance(params, dict) else None))
    choice = data.get("tool_choice")
    if isinstance(choice, str):
        return tuple(specs), choice if choice in ("none", "required") else "auto", None
    if isinstance(choice, dict):
        if choice.get("type") == "allowed_tools":
            names = {t.get("name") for t in choice.get("tools") or [] if isinstance(t, dict)}
            mode = "required" if choice.get("mode") == "required" else "auto"
            return tuple(s for s in specs if s.name in names), mode, None
        if choice.get("type") == "function" and isinstance(choice.get("name"), str):
            return tuple(specs), "required", choice["name"]
    return tuple(specs), "auto", None


def _index(obj: dict[str, Any]) -> int:
    index = obj.get("output_index")
    return index if isinstance(index, int) else 0


def _done(item: dict[str, Any]) -> bool:
    """A ``function_call`` item whose arguments are whole (the API marks a cut one incomplete)."""
    return item.get("status") in (None, "completed")


def call_ids(call: ToolCall) -> tuple[str, str]:
    """The output item id (``fc_…``) and the ``call_id`` (``call_…``) of a tool call."""
    return "fc_" + call.key[:48], "call_" + call.key[-24:]


def _edit_item(item: dict[str, Any], edit: ToolEdit, *, whole: bool) -> bool:
    """A ``function_call`` item renamed and, once it is whole (``.done``, the final response),
    given the edited arguments."""
    if item.get("type") != "function_call":
        return False
    if edit.name is not None:
        item["name"] = edit.name
    if whole and edit.arguments is not None:
        item["arguments"] = edit.arguments
    return True


def _call_item(call: ToolCall, arguments: str, status: str) -> dict[str, Any]:
    item_id, cid = call_ids(call)
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": cid,
        "name": call.name,
        "arguments": arguments,
        "status": status,
    }


def _finish_of(resp: dict[str, Any]) -> str | None:
    """Canonical finish of a ``response`` object: its ``status`` and ``incomplete_details``."""
    status = resp.get("status")
    if status == "incomplete":
        return _INCOMPLETE_IN.get((resp.get("incomplete_details") or {}).get("reason"), "length")
    return "stop" if status == "completed" else None


def _usage(u: Usage) -> dict[str, Any]:
    return {
        "input_tokens": u.input_tokens,
        "input_tokens_details": {"cached_tokens": u.cached_input_tokens, "cache_write_tokens": u.cache_write_tokens},
        "output_tokens": u.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": u.total_tokens,
    }


def _parse_usage(obj: Any) -> Usage | None:
    if not isinstance(obj, dict):
        return None
    try:
        details = obj.get("input_tokens_details")
        details = details if isinstance(details, dict) else {}
        return Usage(
            int(obj.get("input_tokens") or 0),
            int(obj.get("output_tokens") or 0),
            int(details.get("cached_tokens") or 0),
            int(details.get("cache_write_tokens") or 0),
        )
    except (TypeError, ValueError):
        return None


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _message_item(item_id: str, text: str | None, status: str) -> dict[str, Any]:
    """An assistant output message; ``text=None`` gives the empty item of ``output_item.added``."""
    content = [] if text is None else [_text_part(text)]
    return {"type": "message", "id": item_id, "status": status, "role": "assistant", "content": content}


def _response_obj(
    resp_id: str,
    req: RequestInfo,
    status: str,
    output: list[dict[str, Any]],
    *,
    created_at: int | None = None,
    usage: dict[str, Any] | None = None,
    incomplete: str | None = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A full ``response`` object, with every field the SDK's ``Response`` model requires (``tools``,
    ``tool_choice``, ``parallel_tool_calls`` ...) and the defaults the real API echoes back."""
    return {
        "id": resp_id,
        "object": "response",
        "created_at": created_at if created_at is not None else int(time.time()),
        "status": status,
        "background": False,
        "error": error,
        "incomplete_details": {"reason": incomplete} if incomplete else None,
        "instructions": None,
        "max_output_tokens": req.max_tokens,
        "max_tool_calls": None,
        "model": req.model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": [],
        "top_logprobs": 0,
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": usage,
        "user": None,
        "metadata": {},
    }


class _ResponsesEncoder(StreamEncoder):
    """Every event carries the next ``sequence_number``, so no event is fully precomputed; the
    delta event is still spliced from a fixed prefix rather than built as a dict."""

    def __init__(self, req: RequestInfo) -> None:
        self.req = req
        self.id = "resp_" + request_id("")
        self.item_id = "msg_" + request_id("")[:24]
        self.created = int(time.time())
        self.seq = 0
        self._sent: list[str] = []  # delta texts, for the *.done events that repeat the whole text
        self._args: dict[int, list[str]] = {}  # tool call arguments streamed, by output index
        self._items: dict[int, dict[str, Any]] = {}  # finished function_call items, by output index
        self._item_ids: dict[int, str] = {}
        self._tool_prefix: dict[int, bytes] = {}
        self._open: dict[int, dict[str, Any]] = {}  # function_call items as they were opened
        self._delta_prefix = (
            'event: response.output_text.delta\ndata: {"type":"response.output_text.delta",'
            f'"item_id":"{self.item_id}",'
            '"output_index":0,"content_index":0,"logprobs":[],"sequence_number":'
        ).encode()

    def _event(self, etype: str, fields: dict[str, Any], kind: EventKind, **extra: Any) -> Event:
        obj = {"type": etype, "sequence_number": self.seq, **fields}
        self.seq += 1
        return Event(encode_event(json.dumps(obj, separators=(",", ":")), event=etype), kind, **extra)

    def _response(self, status: str, output: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
        return _response_obj(self.id, self.req, status, output, created_at=self.created, **kw)

    def start(self, tool_calls: bool = False) -> list[Event]:
        loc = {"item_id": self.item_id, "output_index": 0, "content_index": 0}
        lifecycle = [
            self._event("response.created", {"response": self._response("in_progress", [])}, EventKind.META),
            self._event("response.in_progress", {"response": self._response("in_progress", [])}, EventKind.META),
        ]
        if tool_calls:
            return lifecycle
        return [
            *lifecycle,
            self._event(
                "response.output_item.added",
                {"output_index": 0, "item": _message_item(self.item_id, None, "in_progress")},
                EventKind.META,
            ),
            self._event("response.content_part.added", {**loc, "part": _text_part("")}, EventKind.META),
        ]

    def content(self, text: str, tokens: int = 1) -> Event:
        self._sent.append(text)
        data = b'%s%d,"delta":%s}\n\n' % (self._delta_prefix, self.seq, json.dumps(text).encode())
        self.seq += 1
        return Event(data, EventKind.CONTENT, text=text, tokens=tokens)

    def tool_call_start(self, index: int, call: ToolCall) -> list[Event]:
        self._args[index] = []
        item = _call_item(call, "", "in_progress")
        self._item_ids[index] = item["id"]
        self._open[index] = item
        delta = ToolDelta(index, item["call_id"], call.name, total=len(call.arguments))
        added = {"output_index": index, "item": item}
        return [self._event("response.output_item.added", added, EventKind.META, tools=(delta,))]

    def tool_arguments(self, index: int, fragment: str, tokens: int = 1) -> list[Event]:
        self._args.setdefault(index, []).append(fragment)
        prefix = self._tool_prefix.get(index)
        if prefix is None:  # spliced like a text delta: the sequence number and the fragment change
            prefix = self._tool_prefix[index] = (
                'event: response.function_call_arguments.delta\ndata: {"type":"response.function_call_arguments.delta",'
                f'"item_id":"{self._item_ids.get(index, "")}","output_index":{index},"sequence_number":'
            ).encode()
        data = b'%s%d,"delta":%s}\n\n' % (prefix, self.seq, json.dumps(fragment).encode())
        self.seq += 1
        return [Event(data, EventKind.CONTENT, tokens=tokens, tools=(ToolDelta(index, arguments=fragment),))]

    def tool_call_end(self, index: int, call: ToolCall, complete: bool = True) -> list[Event]:
        # the .done events repeat what was streamed, as the API does; a cut call only ends its item
        args = "".join(self._args.get(index, []))
        item = _call_item(call, args, "completed" if complete else "incomplete")
        self._items[index] = item
        done = (ToolDelta(index, done=True),) if complete else ()
        out = []
        if complete:
            fields = {"item_id": item["id"], "output_index": index, "arguments": args}
            out.append(self._event("response.function_call_arguments.done", fields, EventKind.META, tools=done))
        out.append(self._event("response.output_item.done", {"output_index": index, "item": item}, EventKind.META))
        return out

    def finish(self, completion: Completion) -> list[Event]:
        if completion.tool_calls:
            status, reason = _FINISH_OUT.get(completion.finish, _FINISH_OUT["stop"])
            output = [self._items[k] for k in sorted(self._items)]
            final = self._response(status, output, usage=_usage(completion.usage), incomplete=reason)
            terminal = "response.completed" if status == "completed" else "response.incomplete"
            return [self._event(terminal, {"response": final}, EventKind.TERMINATOR)]
        # the *.done events repeat what was actually streamed, as the API does
        text = "".join(self._sent) if self._sent else completion.text
        status, reason = _FINISH_OUT.get(completion.finish, _FINISH_OUT["stop"])
        item = _message_item(self.item_id, text, "completed" if reason is None else "incomplete")
        loc = {"item_id": self.item_id, "output_index": 0, "content_index": 0}
        final = self._response(status, [item], usage=_usage(completion.usage), incomplete=reason)
        terminal = "response.completed" if status == "completed" else "response.incomplete"
        return [
            self._event("response.output_text.done", {**loc, "text": text, "logprobs": []}, EventKind.META),
            self._event("response.content_part.done", {**loc, "part": _text_part(text)}, EventKind.META),
            self._event("response.output_item.done", {"output_index": 0, "item": item}, EventKind.META),
            self._event(terminal, {"response": final}, EventKind.TERMINATOR),
        ]

    def cut_tool_call(self, index: int, arguments: str, usage: Usage) -> list[Event]:
        item = dict(self._open.get(index) or {"type": "function_call", "id": "", "call_id": "", "name": ""})
        item.update(arguments=arguments, status="incomplete")
        self._items[index] = item
        done = self._event("response.output_item.done", {"output_index": index, "item": item}, EventKind.META)
        output = [self._items[k] for k in sorted(self._items)]
        final = self._response("incomplete", output, usage=_usage(usage), incomplete="max_output_tokens")
        return [done, self._event("response.incomplete", {"response": final}, EventKind.TERMINATOR)]

    def observe(self, event: Event) -> None:
        """The upstream's response id, sequence number and function-call items, so that events
        written after its own continue its stream (the SDK checks every identity)."""
        m = _DATA_LINE.search(event.data)
        try:
            obj = json.loads(m.group(1)) if m else None
        except ValueError:
            return
        if not isinstance(obj, dict):
            return
        if isinstance(obj.get("sequence_number"), int):
            self.seq = obj["sequence_number"] + 1
        resp = obj.get("response")
        if isinstance(resp, dict) and isinstance(resp.get("id"), str):
            self.id = resp["id"]
            self.created = resp.get("created_at", self.created)
        item = obj.get("item")
        if isinstance(item, dict) and item.get("type") == "function_call" and isinstance(obj.get("output_index"), int):
            target = self._open if obj.get("type") == "response.output_item.added" else self._items
            target[obj["output_index"]] = item

    def keepalive(self) -> Event:
        return Event(encode_comment("keep-alive"), EventKind.KEEPALIVE)

    def error(self, spec: ErrorSpec) -> list[Event]:
        _, err = openai_error_fields(spec, self.req.model)
        code = "rate_limit_exceeded" if spec.kind in _RATE_KINDS else "server_error"
        failed = self._response("failed", [], error={"code": code, "message": err["message"]})
        return [self._event("response.failed", {"response": failed}, EventKind.ERROR)]
