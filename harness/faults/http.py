"""Provider errors and semantic route faults: the lane answers itself, provider-exact.

Every fault here renders through the lane's dialect, so a ``rate_limit`` is OpenAI's 429 with
``x-ratelimit-*`` Go durations on an OpenAI lane, Anthropic's ``rate_limit_error`` with RFC 3339
resets on an Anthropic lane, and Gemini's ``RESOURCE_EXHAUSTED`` with ``RetryInfo`` on a Gemini
lane (reference: provider-wire-formats.md, F01-F09, F24-F28).
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, ClassVar

from ..canonical import canonical_tokens
from ..dialects.base import (
    Completion,
    ErrorKind,
    ErrorSpec,
    Event,
    EventKind,
    RateLimitSnapshot,
    Rendered,
    Usage,
    edge_html,
    parse_retry_after,
)
from ..proxy.hooks import AttemptContext, StreamItem
from .base import Fault, FaultAttrError, attr, register, seconds
from .tools import InToolArguments, cut_body_in_tool_arguments, cut_in_tool_arguments

__all__ = ["ErrorFault"]

_STATUS_KIND = {
    400: ErrorKind.INVALID_REQUEST,
    401: ErrorKind.AUTH,
    403: ErrorKind.PERMISSION,
    404: ErrorKind.NOT_FOUND,
    408: ErrorKind.REQUEST_TIMEOUT,
    409: ErrorKind.CONFLICT,
    429: ErrorKind.RATE_LIMIT,
    500: ErrorKind.SERVER_ERROR,
    502: ErrorKind.BAD_GATEWAY,
    503: ErrorKind.UNAVAILABLE,
    504: ErrorKind.GATEWAY_TIMEOUT,
    529: ErrorKind.OVERLOADED,
}


@dataclass
class ErrorFault(Fault):
    """Answer with an error response. ``retry_after`` (seconds, scaled with the drill) becomes
    ``retry-after`` (plus ``retry-after-ms`` when asked) or Gemini's ``RetryInfo``; with
    ``retry_after_format: http-date`` it is written as an HTTP-date that many seconds after the
    moment the response is sent (rounded up to the whole second an HTTP-date can say, and journaled
    as the exact wait it asks for). ``retry_after_raw`` is sent verbatim for the other edge forms:
    ``1.5``, ``abc``, ``-1``, or a value beyond a client's cap such as ``300``. The provider's
    message names the same delay as the headers, or none when they give none."""

    kind: ClassVar[ErrorKind] = ErrorKind.SERVER_ERROR
    status: int | None = attr(None, "override the status code")
    message: str | None = attr(None, "override the provider's message")
    retry_after: float | None = seconds(None, "seconds the client is asked to wait")
    retry_after_format: str = attr(
        "seconds",
        "how retry_after is written: seconds, or http-date (that many seconds after the response is sent)",
        ("seconds", "http-date"),
    )
    retry_after_raw: str | None = attr(None, "a raw Retry-After value, sent as is")
    retry_after_ms: bool = attr(False, "also send retry-after-ms (OpenAI)")
    should_retry: bool | None = attr(None, "send x-should-retry: true/false")
    body: str = attr("json", "json (the provider's), html (an edge proxy's page) or empty", ("json", "html", "empty"))

    #: the status an edge proxy answers with when this fault sends a non-JSON body (502/504)
    edge_status: ClassVar[int | None] = None

    def validate(self) -> None:
        if self.retry_after_format == "http-date" and (self.retry_after is None or self.retry_after_raw is not None):
            raise FaultAttrError("http-date needs retry_after (seconds) and no retry_after_raw", "retry_after_format")

    def spec(self, ctx: AttemptContext) -> ErrorSpec:
        ra = self.s(ctx, self.retry_after) if self.retry_after is not None else None
        raw = self.retry_after_raw
        if ra is not None and self.retry_after_format == "http-date":
            now = time.time()
            at = math.ceil(now + ra)  # an HTTP-date has whole seconds: never ask for less than meant
            raw, ra = email.utils.formatdate(at, usegmt=True), at - now
        raw_body: bytes | None = None
        ctype = None
        status = self.status
        if self.body != "json" and status is None:
            status = self.edge_status
        if self.body == "empty":
            raw_body, ctype = b"", "text/plain"
        elif self.body == "html":
            raw_body, ctype = edge_html(status or 502), "text/html"
        return ErrorSpec(
            self.error_kind(),
            status=status,
            message=self.message,
            retry_after=ra,
            retry_after_raw=raw,
            retry_after_ms=self.retry_after_ms,
            should_retry=self.should_retry,
            ratelimit=self.snapshot(ctx, ra if ra is not None else parse_retry_after(raw)),
            raw_body=raw_body,
            content_type=ctype,
        )

    def error_kind(self) -> ErrorKind:
        return self.kind

    def snapshot(self, ctx: AttemptContext, retry_after: float | None) -> RateLimitSnapshot | None:
        """Rate-limit counters for the headers; ``retry_after`` is the wait the error gives (None:
        it gives none, and the bucket that ran out then has no reset header either)."""
        return None

    async def before(self, ctx: AttemptContext) -> Rendered | None:
        spec = self.spec(ctx)
        if spec.retry_after is not None:
            ctx.attempt.retry_after = spec.retry_after
        return ctx.dialect.render_error(spec, ctx.request)


@register("http_error")
@dataclass
class HttpError(ErrorFault):
    """Any status, with the provider's body for it (or an edge page with ``body: html``)."""

    status: int | None = attr(500, "the HTTP status")

    def error_kind(self) -> ErrorKind:
        return _STATUS_KIND.get(
            self.status or 500, ErrorKind.SERVER_ERROR if (self.status or 500) >= 500 else ErrorKind.INVALID_REQUEST
        )

    def validate(self) -> None:
        super().validate()
        if self.status is None or not 400 <= self.status <= 599:
            raise FaultAttrError("must be an HTTP error status between 400 and 599", "status")


@register("rate_limit")
@dataclass
class RateLimit(ErrorFault):
    """F01/F02: a retryable 429 with ``Retry-After`` and rate-limit headers at zero. With
    ``retry_after: null`` no header, no reset of the exhausted bucket and no "try again in" in
    the message hint at a delay: the client is told nothing about when to come back."""

    kind: ClassVar[ErrorKind] = ErrorKind.RATE_LIMIT
    retry_after: float | None = seconds(1.0, "seconds the client is asked to wait (null: no header)")
    limit: str = attr("requests", "which limit ran out: requests or tokens", ("requests", "tokens"))

    def snapshot(self, ctx: AttemptContext, retry_after: float | None) -> RateLimitSnapshot:
        reset = retry_after
        if self.limit == "tokens":
            return RateLimitSnapshot(
                requests_limit=60,
                requests_remaining=59,
                requests_reset=1.0,
                tokens_limit=30000,
                tokens_remaining=0,
                tokens_reset=reset,
                input_tokens_limit=30000,
                input_tokens_remaining=0,
                input_tokens_reset=reset,
            )
        return RateLimitSnapshot(
            requests_limit=60,
            requests_remaining=0,
            requests_reset=reset,
            tokens_limit=30000,
            tokens_remaining=29000,
            tokens_reset=1.0,
        )


@register("slow_down")
@dataclass
class SlowDown(ErrorFault):
    """F04: the ramp limit: traffic grew too fast (OpenAI ``slow_down``)."""

    kind: ClassVar[ErrorKind] = ErrorKind.SLOW_DOWN


@register("quota_exhausted")
@dataclass
class QuotaExhausted(ErrorFault):
    """F03: billing quota gone: retrying never helps, yet Stainless SDKs retry every 429."""

    kind: ClassVar[ErrorKind] = ErrorKind.QUOTA_EXHAUSTED


@register("spend_limit")
@dataclass
class SpendLimit(ErrorFault):
    """F03: Anthropic's enforced spend limit (a 429 that must not be retried)."""

    kind: ClassVar[ErrorKind] = ErrorKind.SPEND_LIMIT


@register("overloaded")
@dataclass
class Overloaded(ErrorFault):
    """F05: shared capacity exhausted: OpenAI 503, Anthropic 529 (x-should-retry: true), Gemini 503."""

    kind: ClassVar[ErrorKind] = ErrorKind.OVERLOADED


@register("server_error")
@dataclass
class ServerError(ErrorFault):
    """F06: a 500 in the provider's words."""

    kind: ClassVar[ErrorKind] = ErrorKind.SERVER_ERROR


@register("bad_gateway")
@dataclass
class BadGateway(ErrorFault):
    """F07: an edge proxy's 502, an HTML page unless ``body: json``."""

    kind: ClassVar[ErrorKind] = ErrorKind.BAD_GATEWAY
    edge_status: ClassVar[int | None] = 502
    body: str = attr("html", "html (default), json or empty", ("json", "html", "empty"))


@register("gateway_timeout")
@dataclass
class GatewayTimeout(BadGateway):
    """F07: an edge proxy's 504."""

    kind: ClassVar[ErrorKind] = ErrorKind.GATEWAY_TIMEOUT
    edge_status: ClassVar[int | None] = 504


@register("unavailable")
@dataclass
class Unavailable(ErrorFault):
    """F28 (premium variant): 503, capacity for this model is not available."""

    kind: ClassVar[ErrorKind] = ErrorKind.UNAVAILABLE


@register("auth_revoked")
@dataclass
class AuthRevoked(ErrorFault):
    """F27: the lane's credentials stop working (401), or permission is withdrawn (403)."""

    status: int | None = attr(401, "401 (authentication) or 403 (permission)")

    def error_kind(self) -> ErrorKind:
        return ErrorKind.PERMISSION if self.status == 403 else ErrorKind.AUTH

    def validate(self) -> None:
        super().validate()
        if self.status not in (401, 403):
            raise FaultAttrError("must be 401 or 403", "status")


@register("model_gone")
@dataclass
class ModelGone(ErrorFault):
    """F28: the model was retired or withdrawn: 404."""

    kind: ClassVar[ErrorKind] = ErrorKind.NOT_FOUND


@register("context_length")
@dataclass
class ContextLength(ErrorFault):
    """F25: the prompt does not fit this lane's model: 400, never worth a same-lane retry."""

    kind: ClassVar[ErrorKind] = ErrorKind.CONTEXT_LENGTH


@register("queue")
@dataclass
class Queue(Fault):
    """F13: the premium lane is saturated: the response headers come ``delay`` seconds late."""

    delay: float = seconds(2.0, "seconds before the response starts")

    async def before(self, ctx: AttemptContext) -> Rendered | None:
        await asyncio.sleep(self.s(ctx, self.delay))
        return None


def _canonical(ctx: AttemptContext, tokens: int) -> str:
    return "".join(canonical_tokens(ctx.request.fingerprint, tokens))


@dataclass
class _SemanticFinish(Fault):
    """The answer ends early with a finish reason (not a transport failure)."""

    finish: ClassVar[str] = "length"
    after_tokens: int = attr(8, "tokens delivered before the answer stops")

    async def before(self, ctx: AttemptContext) -> Rendered | None:
        if ctx.request.stream:
            return None
        n = self.after_tokens
        completion = Completion(_canonical(ctx, n), Usage(ctx.request.prompt_tokens, n), self.finish)
        ctx.attempt.tokens = n
        ctx.attempt.finish = self.finish
        return ctx.dialect.render_completion(ctx.request, completion)

    async def transform(self, ctx: AttemptContext, events: AsyncIterator[list[Event]]) -> AsyncIterator[StreamItem]:  # type: ignore[override]
        sent = 0
        text = ""
        async for batch in events:
            out: list[Event] = []
            for ev in batch:
                if ev.kind is EventKind.CONTENT:
                    if sent >= self.after_tokens:
                        continue
                    take = min(ev.tokens or 1, self.after_tokens - sent)
                    if take < (ev.tokens or 1):
                        ev = ctx.encoder.content(_take_tokens(ev.text, take), take)
                    sent += take
                    text += ev.text
                    out.append(ev)
                elif ev.kind in (EventKind.FINISH, EventKind.TERMINATOR):
                    continue
                else:
                    out.append(ev)
            if out:
                yield out
        completion = Completion(text, Usage(ctx.request.prompt_tokens, sent), self.finish)
        ctx.attempt.finish = self.finish
        yield ctx.encoder.finish(completion)


def _take_tokens(text: str, n: int) -> str:
    """The first ``n`` canonical tokens of ``text`` (each token is a space and a word)."""
    words = text.split(" ")
    lead = words[0] == ""
    parts = words[1 : n + 1] if lead else words[:n]
    return (" " if lead else "") + " ".join(parts)


@register("finish_length")
@dataclass
class FinishLength(InToolArguments, _SemanticFinish):
    """F24: ``finish_reason: length`` / ``max_tokens`` / ``MAX_TOKENS`` after ``after_tokens``.

    With ``in: tool_arguments`` the token limit falls inside a tool call's arguments instead,
    ``after_fraction`` of the way through call number ``call`` (half of the first by default):
    each dialect's own truncated call (Responses' incomplete item, Anthropic's closed block with
    ``max_tokens``; Gemini sends no call at all), streamed or in a whole body."""

    finish: ClassVar[str] = "length"

    def validate(self) -> None:
        self.validate_position()

    async def before(self, ctx: AttemptContext) -> Rendered | None:
        return None if self.in_tool_arguments else await super().before(ctx)

    async def upstream_response(self, ctx: AttemptContext, response: Any) -> None:
        if self.in_tool_arguments:
            cut_body_in_tool_arguments(ctx, response, self.fraction, self.call or 0)

    def transform(self, ctx: AttemptContext, events: AsyncIterator[list[Event]]) -> AsyncIterator[StreamItem]:
        if self.in_tool_arguments:
            return cut_in_tool_arguments(ctx, events, self.fraction, self.call or 0)
        return super().transform(ctx, events)


@register("content_filter")
@dataclass
class ContentFilter(_SemanticFinish):
    """F26: the content filter: a 400 (``mode: error``) or an answer that stops with
    ``finish_reason: content_filter`` / ``refusal`` / ``SAFETY`` (``mode: finish``)."""

    finish: ClassVar[str] = "content_filter"
    mode: str = attr("error", "error (a 400) or finish (the answer stops)", ("error", "finish"))
    flavour: str = attr(
        "azure",
        "the 400 on OpenAI lanes: azure (code content_filter, with innererror) or openai (content_policy_violation)",
        ("azure", "openai"),
    )

    async def before(self, ctx: AttemptContext) -> Rendered | None:
        if self.mode == "error":
            spec = ErrorSpec(ErrorKind.CONTENT_FILTER, flavour=self.flavour)
            return ctx.dialect.render_error(spec, ctx.request)
        return await super().before(ctx)

    def transform(self, ctx: AttemptContext, events: AsyncIterator[list[Event]]) -> AsyncIterator[Any]:
        return super().transform(ctx, events) if self.mode == "finish" else events  # type: ignore[return-value]
