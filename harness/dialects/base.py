"""What every dialect knows, as pure code (no sockets, no clock of its own).

A dialect turns a provider's wire format into the few facts the rest of the harness needs and
back: it recognises a request (:class:`RequestInfo`), renders a completion or an error exactly as
that provider would (:class:`Rendered`), encodes a stream as events (:class:`StreamEncoder`) and
classifies the events of a stream it did not write (:meth:`Dialect.classify`). Because the proxy,
the simulator and the faults only speak these types, a fault written once applies to every
provider.
"""

from __future__ import annotations

import datetime as _dt
import enum
import secrets
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ..canonical import estimate_tokens
from ..safejson import loads as strict_json
from ..sse import SSEDecoder, SSEEvent, encode_event
from ..toolcalls import Conversation, ToolCall, ToolDelta, ToolEdit, ToolSpec

__all__ = [
    "BadRequest",
    "Completion",
    "Dialect",
    "ErrorKind",
    "ErrorSpec",
    "Event",
    "EventInfo",
    "EventKind",
    "RateLimitSnapshot",
    "Rendered",
    "RequestInfo",
    "StreamDecoder",
    "StreamEncoder",
    "ToolCall",
    "ToolDelta",
    "ToolEdit",
    "ToolSpec",
    "Usage",
    "go_duration",
    "parse_retry_after",
    "request_id",
]


class BadRequest(Exception):
    """The request cannot be understood: the proxy answers with the dialect's 400, never a crash."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """What a dialect learned from one request: enough to decide a fault and to answer it."""

    dialect: str
    operation: str  # "chat" | "responses" | "messages" | "generate"
    model: str | None
    stream: bool
    fingerprint: str
    prompt_tokens: int
    max_tokens: int | None = None
    include_usage: bool = False  # OpenAI chat: stream_options.include_usage
    text: str = ""  # the conversation's text, system prompt included (faults keyed on content)
    last_role: str | None = None  # the last turn's role: "assistant" when the request ends in a prefill
    #: function tools the request offers, and how it lets the model use them: ``tool_choice`` is
    #: ``auto``, ``none`` or ``required``; ``forced_tool`` names the one tool it must call
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: str = "auto"
    forced_tool: str | None = None
    parallel_tool_calls: bool = True
    #: the tool calls of the conversation (``Attempt.tool_history``), the fingerprint of the
    #: conversation before its trailing tool-calls + results turns, and how many assistant turns
    #: called tools since the last user turn (the simulator's script reads it)
    tool_history: tuple[dict[str, Any], ...] = ()
    parent_fingerprint: str | None = None
    tool_rounds: int = 0


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens as a provider bills them. ``input_tokens`` is every prompt token, cached or not
    (OpenAI's and Gemini's sense); ``cached_input_tokens`` of them were read from the prompt
    cache and ``cache_write_tokens`` written to it (Anthropic reports the three apart: each
    dialect writes its own fields from these)."""

    input_tokens: int
    output_tokens: int
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    #: the harness's own note, written by no dialect: tokens of this prompt that another lane of
    #: the drill held in its cache (a failover lost them)
    cache_elsewhere_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def uncached_input_tokens(self) -> int:
        return max(0, self.input_tokens - self.cached_input_tokens - self.cache_write_tokens)

    def to_dict(self) -> dict[str, int]:
        out = {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}
        if self.cached_input_tokens:
            out["cached_input_tokens"] = self.cached_input_tokens
        if self.cache_write_tokens:
            out["cache_write_tokens"] = self.cache_write_tokens
        if self.cache_elsewhere_tokens:
            out["cache_elsewhere_tokens"] = self.cache_elsewhere_tokens
        return out


@dataclass(frozen=True, slots=True)
class Completion:
    """A whole answer: the simulator's, or what a fault pretends was produced.

    ``finish`` is canonical: ``stop``, ``length`` or ``content_filter``; each dialect maps it to
    its own word (``end_turn``, ``max_tokens``, ``MAX_TOKENS``, ``SAFETY`` ...). An answer with
    ``tool_calls`` that ends normally has finish ``stop`` too, which dialects write as their own
    tool-call finish (``tool_calls``, ``tool_use``; Responses and Gemini have none).
    """

    text: str
    usage: Usage
    finish: str = "stop"
    tool_calls: tuple[ToolCall, ...] = ()


class ErrorKind(enum.StrEnum):
    """Every error a route can produce, independent of provider. Dialects map each to the
    provider's status, body and headers (see reference/provider-wire-formats.md)."""

    RATE_LIMIT = "rate_limit"  # 429 retryable (RPM/TPM)
    SLOW_DOWN = "slow_down"  # 429 ramp/acceleration limit
    QUOTA_EXHAUSTED = "quota_exhausted"  # 429 billing / zero quota: never retry
    SPEND_LIMIT = "spend_limit"  # 429 Anthropic enforced_spend_limit_reached
    OVERLOADED = "overloaded"  # OpenAI 503, Anthropic 529, Gemini 503 UNAVAILABLE
    QUEUE_FULL = "queue_full"  # capacity queue overflow (Ollama 503, others 429/529/503)
    SERVER_ERROR = "server_error"  # 500
    BAD_GATEWAY = "bad_gateway"  # 502 (edge)
    UNAVAILABLE = "unavailable"  # 503 generic / capacity withdrawn
    GATEWAY_TIMEOUT = "gateway_timeout"  # 504
    AUTH = "auth"  # 401
    PERMISSION = "permission"  # 403
    NOT_FOUND = "not_found"  # 404 model gone
    CONTEXT_LENGTH = "context_length"  # 400
    CONTENT_FILTER = "content_filter"  # 400
    INVALID_REQUEST = "invalid_request"  # 400 malformed request
    REQUEST_TIMEOUT = "request_timeout"  # 408
    CONFLICT = "conflict"  # 409


@dataclass(frozen=True, slots=True)
class RateLimitSnapshot:
    """The truth about a lane's rate-limit buckets at one instant, for response headers.

    ``*_reset`` are seconds from now until the bucket is full again; dialects format them
    (Go duration for OpenAI, RFC 3339 instant for Anthropic, nothing for Gemini).
    """

    requests_limit: int | None = None
    requests_remaining: int | None = None
    requests_reset: float | None = None
    tokens_limit: int | None = None
    tokens_remaining: int | None = None
    tokens_reset: float | None = None
    input_tokens_limit: int | None = None
    input_tokens_remaining: int | None = None
    input_tokens_reset: float | None = None
    output_tokens_limit: int | None = None
    output_tokens_remaining: int | None = None
    output_tokens_reset: float | None = None


@dataclass(frozen=True, slots=True)
class ErrorSpec:
    """One error to render. Only ``kind`` is required; every other field overrides a default.

    ``retry_after`` (seconds) becomes ``retry-after`` (and ``retry-after-ms`` when
    ``retry_after_ms`` is set, and ``RetryInfo`` in Gemini bodies); ``retry_after_raw`` is written
    verbatim instead, for the edge forms (HTTP-date, ``abc``, ``-1``). ``raw_body`` replaces the
    body entirely (an HTML page from an edge proxy, or ``b""``) with ``content_type``.
    """

    kind: ErrorKind
    status: int | None = None
    message: str | None = None
    retry_after: float | None = None
    retry_after_raw: str | None = None
    retry_after_ms: bool = False
    should_retry: bool | None = None
    ratelimit: RateLimitSnapshot | None = None
    raw_body: bytes | None = None
    content_type: str | None = None
    extra_headers: tuple[tuple[str, str], ...] = ()
    #: a provider's variant of ``kind`` where one API family words it several ways: for
    #: CONTENT_FILTER on OpenAI lanes, ``azure`` (Azure OpenAI's ``content_filter``, the default)
    #: or ``openai`` (api.openai.com's ``content_policy_violation``); other dialects ignore it
    flavour: str | None = None

    @property
    def delay_hint(self) -> float | None:
        """The wait this error tells the client about, in seconds, or None when it gives none:
        ``retry_after``, else a ``retry_after_raw`` a client can parse (seconds >= 0, or an
        HTTP-date, counted from now). A message that names a delay must name this one."""
        if self.retry_after is not None:
            return self.retry_after
        return parse_retry_after(self.retry_after_raw)


@dataclass(frozen=True, slots=True)
class Rendered:
    """A complete non-streaming HTTP response."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


class EventKind(enum.StrEnum):
    META = "meta"  # framing without content: message_start, response.created, role chunk
    CONTENT = "content"  # carries answer text
    KEEPALIVE = "keepalive"  # ping event or SSE comment
    FINISH = "finish"  # carries the finish reason / final usage (not yet the terminator)
    TERMINATOR = "terminator"  # the semantic end: [DONE], message_stop, response.completed
    ERROR = "error"  # an in-band error
    MALFORMED = "malformed"  # cannot be parsed


@dataclass(frozen=True, slots=True)
class Event:
    """One stream event ready for the wire, with what it means."""

    data: bytes
    kind: EventKind
    text: str = ""
    tokens: int = 0
    finish: str | None = None  # canonical finish reason, when known (set when classifying)
    usage: Usage | None = None
    tools: tuple[ToolDelta, ...] = ()  # what the event says about the answer's tool calls


@dataclass(frozen=True, slots=True)
class EventInfo:
    """What :meth:`Dialect.classify` learned from an event it did not write."""

    kind: EventKind
    text: str = ""
    finish: str | None = None  # canonical finish reason when the event carries one
    usage: Usage | None = None
    error: dict[str, Any] | None = None
    ends_stream: bool = False  # True for the dialect's terminator (or terminal event)
    tools: tuple[ToolDelta, ...] = ()  # tool calls: deltas of a stream event, whole calls of a body


class StreamEncoder(ABC):
    """Encodes one streamed response. Created per response so it can keep ids and counters
    (``sequence_number`` in Responses, block indexes in Anthropic)."""

    @abstractmethod
    def start(self, tool_calls: bool = False) -> list[Event]:
        """Events before any content (may be empty); ``tool_calls`` when the answer begins with
        tool calls rather than text (no text block or message item is opened then)."""

    @abstractmethod
    def content(self, text: str, tokens: int = 1) -> Event:
        """One content event carrying ``text``."""

    @abstractmethod
    def finish(self, completion: Completion) -> list[Event]:
        """Everything after the last content event, terminator included (finish reason, usage)."""

    @abstractmethod
    def keepalive(self) -> Event:
        """What this provider sends while it has nothing to say (``ping``, or an SSE comment)."""

    @abstractmethod
    def error(self, spec: ErrorSpec) -> list[Event]:
        """An in-band error after the 200 was committed, as this provider encodes it."""

    def terminator(self) -> list[Event]:
        """The bare terminator (``[DONE]``); empty for dialects whose terminator is ``finish``."""
        return []

    # tool calls: a dialect that carries them overrides these three; ``index`` is the call's
    # position in the answer, and every event carries a :class:`ToolDelta` saying what it is
    def tool_call_start(self, index: int, call: ToolCall) -> list[Event]:
        """Events that open tool call ``index`` (its id and name)."""
        raise NotImplementedError(f"{type(self).__name__} carries no tool calls")

    def tool_arguments(self, index: int, fragment: str, tokens: int = 1) -> list[Event]:
        """Events carrying a fragment of call ``index``'s arguments (none for a dialect that
        sends each call whole, like Gemini)."""
        raise NotImplementedError(f"{type(self).__name__} carries no tool calls")

    def tool_call_end(self, index: int, call: ToolCall, complete: bool = True) -> list[Event]:
        """Events that close call ``index``: its arguments are complete, or (``complete`` False)
        they stop there because the answer hit its token limit."""
        raise NotImplementedError(f"{type(self).__name__} carries no tool calls")

    def cut_tool_call(self, index: int, arguments: str, usage: Usage) -> list[Event]:
        """Everything that ends the answer now because it hit its token limit inside the call at
        stream ``index`` (as :meth:`Dialect.classify` numbers calls), whose arguments so far are
        ``arguments``: the provider's length finish and its terminator. Ids come from what the
        encoder wrote or learnt with :meth:`observe`."""
        raise NotImplementedError(f"{type(self).__name__} carries no tool calls")

    def observe(self, event: Event) -> None:
        """Learn from an upstream event this encoder did not write the ids and state the events
        it writes next must continue (Responses' response id, sequence number and output items).
        Nothing to learn by default."""
        return None


class StreamDecoder(Protocol):
    """An incremental decoder of one stream framing: :class:`~harness.sse.SSEDecoder` for SSE,
    and the same interface for NDJSON lines or AWS event-stream frames. Each event keeps its exact
    bytes in ``raw`` (the concatenated ``raw`` of every event plus ``pending`` is every byte fed,
    so a forwarding lane loses none); ``pending`` holds bytes of an event not yet complete. The
    non-SSE decoders also split the two steps, ``frames(chunk) -> list[bytes]`` and
    ``parse(raw) -> SSEEvent | None``, for readers that frame every read but parse only some."""

    def feed(self, chunk: bytes) -> list[SSEEvent]: ...

    @property
    def pending(self) -> bytes: ...


class Dialect(ABC):
    """One provider's wire format. Stateless; instances may carry variant settings."""

    name: str = ""
    #: the media type of this dialect's streamed answers: a forwarding lane reads a response of
    #: this type as a stream, framed by :meth:`stream_decoder` (SSE unless the dialect says not)
    stream_media_type: str = "text/event-stream"
    #: True when the dialect renders, encodes and classifies tool calls (the simulator answers a
    #: dialect without them with text, tools offered or not)
    carries_tool_calls: bool = False
    #: headers whose values must never be written anywhere (journal, logs)
    secret_headers: tuple[str, ...] = ("authorization", "x-api-key", "api-key", "x-goog-api-key")

    @abstractmethod
    def matches(self, method: str, path: str) -> bool:
        """True when this dialect serves ``path`` (used to route a request on a lane)."""

    @abstractmethod
    def parse_request(
        self, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str], body: bytes
    ) -> RequestInfo:
        """Recognise a request; raise :class:`BadRequest` when it is malformed."""

    @abstractmethod
    def render_completion(self, req: RequestInfo, completion: Completion) -> Rendered:
        """A successful non-streaming answer."""

    @abstractmethod
    def render_error(self, spec: ErrorSpec, req: RequestInfo | None = None) -> Rendered:
        """An error response with the provider's status, body and headers."""

    @abstractmethod
    def stream_encoder(self, req: RequestInfo) -> StreamEncoder:
        """A fresh encoder for one streamed answer."""

    @abstractmethod
    def classify(self, event: SSEEvent) -> EventInfo:
        """What an upstream stream event means (content, keepalive, terminator, error ...)."""

    def stream_decoder(self, max_event_bytes: int | None = None) -> StreamDecoder:
        """A fresh decoder for one stream in this dialect's framing (SSE by default); an event
        past ``max_event_bytes`` is refused (:class:`~harness.sse.SSEEventTooLarge`)."""
        return SSEDecoder(max_event_bytes)

    def edit_tool_call(self, obj: dict[str, Any], edit: ToolEdit, body: bool = False) -> bool:
        """Apply ``edit`` to the parsed JSON of one stream event (``edit.index`` is the call's
        index as :meth:`classify` reports it) or of a whole body (``body``: ``edit.index`` is the
        call's position among the body's calls), in place; True when something changed. Tool-call
        faults use it so that every id, index and sequence number stays the upstream's own."""
        raise NotImplementedError(f"{type(self).__name__} carries no tool calls")

    def event_object(self, event: SSEEvent) -> dict[str, Any] | None:
        """The JSON object one stream event carries, for a tool-call fault to edit with
        :meth:`edit_tool_call` (None when it carries none). SSE's ``data`` by default; a dialect
        whose events are framed otherwise (NDJSON lines, event-stream frames, base64 chunks)
        says where its object is."""
        import json

        if event.is_comment_only:
            return None
        try:
            obj = json.loads(event.data)
        except ValueError:
            return None
        return obj if isinstance(obj, dict) else None

    def encode_object(self, event: SSEEvent, obj: dict[str, Any]) -> bytes:
        """``event`` framed again around ``obj`` (the inverse of :meth:`event_object`)."""
        import json

        return encode_event(json.dumps(obj, separators=(",", ":"), ensure_ascii=False), event=event.event)

    def read_completion(self, body: bytes) -> EventInfo | None:
        """Text, finish reason and usage of a non-streamed answer body (None if unreadable).
        Lets the journal count what a real upstream answered, not only what the simulator did."""
        return None

    def stream_headers(self, req: RequestInfo) -> list[tuple[str, str]]:
        """Headers of a 200 streamed answer (content type plus the provider's ids)."""
        return [("content-type", "text/event-stream; charset=utf-8"), ("cache-control", "no-cache")]

    def ratelimit_headers(self, snap: RateLimitSnapshot, now: _dt.datetime | None = None) -> list[tuple[str, str]]:
        """Rate-limit headers in this provider's format; none by default (Gemini has none)."""
        return []


def conversation_fields(conv: Conversation, tools: tuple[ToolSpec, ...]) -> dict[str, Any]:
    """The :class:`RequestInfo` fields every dialect derives from its conversation the same way:
    fingerprint, its parent's, the tool history, the script's round count and a token estimate."""
    facts = conv.facts(tools)
    return {
        "fingerprint": facts.fingerprint,
        "prompt_tokens": estimate_tokens(facts.text),
        "tools": tools,
        "tool_history": facts.tool_history,
        "parent_fingerprint": facts.parent_fingerprint,
        "tool_rounds": facts.tool_rounds,
        "text": facts.text,
        "last_role": conv.turns[-1][0] if conv.turns else None,
    }


def request_id(prefix: str = "req_") -> str:
    """A provider-looking request id."""
    return prefix + secrets.token_hex(12)


def go_duration(seconds: float) -> str:
    """Format a duration the way OpenAI's ``x-ratelimit-reset-*`` headers do: ``6m0s``, ``1.7s``,
    ``12ms``."""
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        return f"{max(1, round(seconds * 1000))}ms"
    total = round(seconds, 3)
    hours, rem = divmod(total, 3600)
    minutes, secs = divmod(rem, 60)
    sec_txt = f"{secs:.3f}".rstrip("0").rstrip(".") if secs != int(secs) else str(int(secs))
    out = ""
    if hours:
        out += f"{int(hours)}h"
    if hours or minutes:
        out += f"{int(minutes)}m"
    return out + f"{sec_txt}s"


def rfc3339(seconds_from_now: float, now: _dt.datetime | None = None) -> str:
    """An instant ``seconds_from_now`` ahead as RFC 3339 (Anthropic's reset headers)."""
    base = now or _dt.datetime.now(_dt.UTC)
    at = base + _dt.timedelta(seconds=seconds_from_now)
    if at.microsecond:  # round up: a reset time must never be earlier than the truth
        at = at.replace(microsecond=0) + _dt.timedelta(seconds=1)
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


EDGE_HTML = (
    "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
    "<center><h1>{status} {reason}</h1></center>\r\n<hr><center>cloudflare</center>\r\n"
    "</body>\r\n</html>\r\n"
)


def edge_html(status: int) -> bytes:
    """The HTML page an edge proxy (Cloudflare, nginx) sends for a 502/504: not JSON at all."""
    reason = {502: "Bad Gateway", 503: "Service Temporarily Unavailable", 504: "Gateway Time-out"}.get(status, "Error")
    return EDGE_HTML.format(status=status, reason=reason).encode()


def text_of(content: Any) -> str:
    """Plain text of a message ``content`` in any of the shapes providers accept: a string, a
    list of parts (``{"type": "text", "text": ...}``, ``{"text": ...}``), or nothing."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out = []
        for part in content:
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, dict):
                for key in ("text", "input_text", "output_text", "content"):
                    val = part.get(key)
                    if isinstance(val, str):
                        out.append(val)
                        break
                    if isinstance(val, list):
                        out.append(text_of(val))
                        break
        return "\n".join(out)
    if isinstance(content, dict):
        return text_of([content])
    return str(content)


def parse_retry_after(raw: str | None, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` value asks for, as clients read it (a number of seconds, or an
    HTTP-date relative to ``now``); None when a client cannot use it (``abc``, negative)."""
    if raw is None:
        return None
    import email.utils
    import math
    import time

    try:
        value = float(raw)
    except ValueError:
        parsed = email.utils.parsedate_tz(raw)
        if parsed is None:
            return None
        value = email.utils.mktime_tz(parsed) - (time.time() if now is None else now)
    return value if math.isfinite(value) and value >= 0 else None


def retry_headers(spec: ErrorSpec) -> list[tuple[str, str]]:
    """``retry-after`` / ``retry-after-ms`` / ``x-should-retry`` as asked by ``spec``."""
    out: list[tuple[str, str]] = []
    if spec.retry_after_raw is not None:
        out.append(("retry-after", spec.retry_after_raw))
    elif spec.retry_after is not None:
        ra = spec.retry_after
        out.append(("retry-after", str(int(ra)) if float(ra).is_integer() else f"{ra:g}"))
        if spec.retry_after_ms:
            out.append(("retry-after-ms", str(round(ra * 1000))))
    if spec.should_retry is not None:
        out.append(("x-should-retry", "true" if spec.should_retry else "false"))
    out.extend(spec.extra_headers)
    return out


def json_event(event: SSEEvent) -> dict[str, Any] | EventInfo:
    """The JSON object an SSE event carries, or the :class:`EventInfo` that settles it at once: a
    comment-only frame is a keep-alive, and anything that is not a JSON object is malformed."""
    import json

    if event.is_comment_only:
        return EventInfo(EventKind.KEEPALIVE)
    try:
        obj = json.loads(event.data)
    except ValueError:
        return EventInfo(EventKind.MALFORMED)
    return obj if isinstance(obj, dict) else EventInfo(EventKind.MALFORMED)


def json_loads_object(body: bytes, what: str = "request body") -> dict[str, Any]:
    """Parse a JSON object or raise :class:`BadRequest` that says what was wrong."""
    try:  # strict: no NaN/Infinity, no lone surrogate, bounded nesting (each a 400, never a 500)
        data = strict_json(body or b"null")
    except ValueError as exc:
        raise BadRequest(f"We could not parse the JSON body of your request: {exc}") from None
    if not isinstance(data, dict):
        raise BadRequest(f"The {what} must be a JSON object.")
    return data
