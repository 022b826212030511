"""The reference router agent: a high-value lane with fallback to slower, stable lanes.

This is the agent routechaos's examples and tests hold up as "graceful". It is written to be read
and copied, so every policy is a named parameter with a comment, and every timing is in seconds
(multiplied by ``time_scale``, so the same agent works in a drill compressed to 0.05)::

    router = Router([("ultraspeed", drill.url("ultraspeed"), "openai"),
                     ("stable", drill.url("stable"), "anthropic")], time_scale=drill.time_scale)
    result = drill.call(router.complete, "What is a lane?")

What it does, per call:

1. **Lanes in order.** The primary first, then the fallbacks. A lane is skipped while its
   **circuit breaker** is open (K consecutive failures; a single half-open probe after a
   cooldown that doubles while the lane keeps failing, or exactly the ``Retry-After`` the lane
   gave, so traffic returns to the primary soon after it heals) or while the lane asked us to
   wait (``Retry-After``) longer than we are willing to. If every lane tried fails, a lane whose
   circuit is only cooling down after transient failures gets one early probe (last resort).
2. **Bounded retries per lane** with exponential backoff and full jitter
   (``sleep = uniform(0, min(cap, base * 2**n))``), honouring ``retry-after-ms`` /
   ``Retry-After`` (seconds or HTTP-date) and Gemini's ``RetryInfo.retryDelay``. A server delay
   longer than ``max_retry_after`` is not waited for: the router falls back instead, and keeps
   the lane aside until the delay has passed (no other call hammers it meanwhile).
3. **Permanent errors fall back at once**, never retried on the same lane: 400 (context length,
   content filter, bad request), 401/403 (credentials), 402/404 (billing, model gone), and the
   429s that are really billing (``insufficient_quota``, ``enforced_spend_limit_reached``,
   ``limit: 0``). Lane-wide ones (credentials, billing, model gone) also disable the lane for
   ``permanent_cooldown``. ``x-should-retry: false`` is obeyed.
4. **Always streaming, with a watchdog**: a time-to-first-token timeout (headers and keep-alives
   do not count: only answer text does), a content-idle timeout that keep-alive ``ping`` events
   and SSE comments do **not** reset, a throughput floor (tokens per second over a sliding
   window: a lane that silently collapses to a few tokens/s, F15), a generation timeout (first
   token to the end), and the call's overall deadline. A watchdog failure falls back at once
   (the user already waited): no same-lane retry.
5. **Never a truncated success.** An answer counts only when the dialect's terminator arrived
   (``[DONE]``, ``message_stop``, ``response.completed``, Gemini's ``finishReason``), or, for a
   stream that ended cleanly after a ``stop`` finish reason, without it (F22). A cut stream, an
   in-band error, a malformed event, or a ``length`` / ``content_filter`` stop is a failed
   attempt: the router retries or falls back. The whole answer is buffered, so a retry never shows
   the caller half an answer twice.

The result names the lane that answered, with ``usage`` and ``model``, and ``complete=True``;
when every lane failed it carries ``error`` / ``error_type`` instead (a clean, classified error:
the drill judges it, the router does not raise).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import re
import ssl
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from harness.clientkit import DEFAULT_MODELS, build_request, dialect_for
from harness.dialects.base import Dialect, EventKind, Usage
from harness.drill import call_headers
from harness.toolcalls import ToolCallLog

__all__ = ["AttemptFailed", "CircuitBreaker", "LaneConfig", "Result", "Router", "parse_lanes"]

_SSL_CONTEXT: ssl.SSLContext | None = None


def _ssl_context() -> ssl.SSLContext:
    """One SSL context for every client (building one costs ~100 ms; lanes are plain HTTP anyway)."""
    global _SSL_CONTEXT
    if _SSL_CONTEXT is None:
        _SSL_CONTEXT = ssl.create_default_context()
    return _SSL_CONTEXT


# -- what a call returns ----------------------------------------------------------------------


@dataclass
class Result:
    """One call's answer. ``drill.call`` reads ``text``, ``lane``, ``complete``, ``error``."""

    text: str | None
    lane: str | None
    complete: bool
    usage: dict[str, int] | None = None
    model: str | None = None
    error: str | None = None
    error_type: str | None = None
    attempts: list[str] = field(default_factory=list)  # "lane: outcome" per attempt, for humans
    #: the answer's tool calls ``(id, name, arguments as text, arguments ended normally)``
    tool_calls: list[tuple[str | None, str | None, str, bool]] = field(default_factory=list)
    finish: str | None = None


# -- lanes ------------------------------------------------------------------------------------


@dataclass
class LaneConfig:
    """One route: where to send, in which dialect, and which model to ask for."""

    name: str
    base_url: str
    dialect: str
    model: str | None = None

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        # the lane URL a drill hands out is the server root; strip an SDK-style /v1 suffix
        if self.base_url.endswith("/v1"):
            self.base_url = self.base_url[: -len("/v1")]
        if self.model is None:
            self.model = DEFAULT_MODELS.get(self.dialect, "model")


def parse_lanes(lanes: Iterable[Any]) -> list[LaneConfig]:
    """Lanes from ``(name, base_url, dialect)`` tuples (optionally a 4th item, the model) or
    :class:`LaneConfig` objects; the first is the primary."""
    out = []
    for lane in lanes:
        out.append(lane if isinstance(lane, LaneConfig) else LaneConfig(*lane))
    if not out:
        raise ValueError("a router needs at least one lane")
    return out


# -- failures ---------------------------------------------------------------------------------


class AttemptFailed(Exception):
    """One attempt did not produce a whole answer, and what to do about it.

    ``retry_same_lane``: worth another attempt on this lane (after ``retry_after`` if the server
    said so, else after backoff). ``lane_down``: the lane itself is unusable for a long while
    (credentials, billing, model gone), not just this request. ``counts_for_breaker``: whether the
    failure says something about the lane's health (a prompt too long for this model does not).
    """

    def __init__(
        self,
        reason: str,
        *,
        retry_same_lane: bool = True,
        retry_after: float | None = None,
        lane_down: bool = False,
        counts_for_breaker: bool = True,
        status: int | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_same_lane = retry_same_lane
        self.retry_after = retry_after
        self.lane_down = lane_down
        self.counts_for_breaker = counts_for_breaker
        self.status = status


_LANE_DOWN_STATUS = {401, 402, 403, 404}
_REQUEST_PERMANENT_STATUS = {400, 413, 422}
_RETRYABLE_STATUS = {408, 409, 429}
#: words that turn a 429 (or a 400) into "billing: this lane is gone for the day"
_BILLING_MARKERS = (
    "insufficient_quota",
    "enforced_spend_limit_reached",
    "billing_error",
    "credit balance",
    "credit_balance",
    "spending cap",
    "limit: 0,",
    '"quotavalue": "0"',
)


def parse_retry_after(headers: Mapping[str, str], body: Any = None, *, now: float | None = None) -> float | None:
    """The delay the server asked for, in seconds: ``retry-after-ms``, then ``retry-after`` (a
    number or an HTTP-date), then Gemini's ``RetryInfo.retryDelay`` in the error body. Malformed,
    negative and past values mean "no delay given" (``None``)."""
    h = {k.lower(): v for k, v in headers.items()}
    raw_ms = h.get("retry-after-ms")
    if raw_ms is not None:
        try:
            value = float(raw_ms) / 1000.0
            if value > 0:
                return value
        except ValueError:
            pass
    raw = h.get("retry-after")
    if raw is not None:
        try:
            value = float(raw)
            return value if value > 0 else None
        except ValueError:
            parsed = email.utils.parsedate_tz(raw)
            if parsed is not None:
                value = email.utils.mktime_tz(parsed) - (time.time() if now is None else now)
                return value if value > 0 else None
    if isinstance(body, dict):
        err = body.get("error", body)
        details = err.get("details") if isinstance(err, dict) else None
        for d in details if isinstance(details, list) else []:
            if isinstance(d, dict) and str(d.get("@type", "")).endswith("RetryInfo"):
                m = re.fullmatch(r"\s*([0-9.]+)s\s*", str(d.get("retryDelay", "")))
                if m:
                    return float(m.group(1)) or None
    return None


def classify_http_error(status: int, headers: Mapping[str, str], raw: bytes) -> AttemptFailed:
    """An HTTP error response as an :class:`AttemptFailed` (status, body words, headers)."""
    try:
        body = json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError):
        body = None  # an edge proxy's HTML page, or nothing: judge by the status alone
    words = (json.dumps(body) if body is not None else raw[:500].decode("utf-8", "replace")).lower()
    retry_after = parse_retry_after(headers, body)
    lower = {k.lower(): v for k, v in headers.items()}
    should_retry = lower.get("x-should-retry")
    reason = f"HTTP {status}"
    if "x-amzn-errortype" in lower:  # Bedrock names the exception in a header, not the body
        reason += " " + lower["x-amzn-errortype"].split(":")[0]
    elif body is not None:
        err = body.get("error", body) if isinstance(body, dict) else body
        if isinstance(err, dict):
            kind = err.get("code") or err.get("type") or err.get("status")
            if kind:
                reason += f" {kind}"
    billing = any(m in words for m in _BILLING_MARKERS)
    if status in _LANE_DOWN_STATUS or (billing and status in (400, 429)):
        return AttemptFailed(reason, retry_same_lane=False, lane_down=True, status=status)
    if status in _REQUEST_PERMANENT_STATUS:
        return AttemptFailed(reason, retry_same_lane=False, counts_for_breaker=False, status=status)
    retryable = status in _RETRYABLE_STATUS or status >= 500
    if should_retry is not None:
        retryable = should_retry.strip().lower() == "true"
    return AttemptFailed(reason, retry_same_lane=retryable, retry_after=retry_after, status=status)


def classify_inband_error(error: Mapping[str, Any] | None) -> AttemptFailed:
    """An error event inside an HTTP 200 stream, treated like the status it stands for."""
    words = json.dumps(error or {}).lower()
    if any(m in words for m in _BILLING_MARKERS):
        return AttemptFailed(f"in-band error {words[:120]}", retry_same_lane=False, lane_down=True)
    if "context_length" in words or "content_filter" in words or "invalid_request" in words:
        return AttemptFailed(f"in-band error {words[:120]}", retry_same_lane=False, counts_for_breaker=False)
    return AttemptFailed(f"in-band error {words[:120]}")


# -- circuit breaker --------------------------------------------------------------------------


class CircuitBreaker:
    """Closed → open after ``failures`` consecutive failures → half-open after ``cooldown``
    (one probe at a time) → closed on a success, or open again with the cooldown doubled (up to
    ``max_cooldown``) on a failure. ``trip(for_seconds)`` opens it at once (lane-wide permanent
    errors). Times are real seconds on ``time.monotonic``."""

    def __init__(self, failures: int, cooldown: float, max_cooldown: float) -> None:
        self.threshold = failures
        self.base_cooldown = cooldown
        self.max_cooldown = max_cooldown
        self.consecutive = 0
        self.state = "closed"
        self.cooldown = cooldown
        self.reopen_at = 0.0
        self.probing = False
        self.tripped = False

    def allow(self, now: float) -> bool:
        """May an attempt start now? In half-open, only one (the probe)."""
        if self.state == "closed":
            return True
        if now < self.reopen_at or self.probing:
            return False
        self.state = "half-open"
        self.probing = True
        return True

    def success(self) -> None:
        self.state, self.consecutive, self.probing, self.cooldown = "closed", 0, False, self.base_cooldown
        self.tripped = False

    def failure(self, now: float, retry_after: float | None = None) -> None:
        """Count a failure. When the lane said when to come back (``Retry-After``), an opening
        circuit waits exactly that long (up to ``max_cooldown``) instead of its own cooldown."""
        self.consecutive += 1
        if self.state == "half-open":
            self.cooldown = min(self.cooldown * 2, self.max_cooldown)
        elif self.consecutive < self.threshold:
            return
        self._open(now, self.cooldown if retry_after is None else min(retry_after, self.max_cooldown))

    def trip(self, now: float, for_seconds: float) -> None:
        """Open now for ``for_seconds`` (lane-wide permanent errors): no early probe."""
        self._open(now, for_seconds)
        self.tripped = True

    def force_probe(self, now: float) -> bool:
        """End the cooldown early so one probe goes through (every other lane failed), unless
        the circuit was tripped by a permanent error or a probe is already out."""
        if self.state == "closed" or self.tripped or self.probing:
            return False
        self.reopen_at = min(self.reopen_at, now)
        return True

    def _open(self, now: float, seconds: float) -> None:
        self.state, self.reopen_at, self.probing, self.tripped = "open", now + seconds, False, False

    def neutral(self) -> None:
        """The attempt ended without saying anything about the lane's health (a half-open probe
        whose prompt was too long): let another probe go."""
        self.probing = False


# -- the router -------------------------------------------------------------------------------


class Router:
    """Route each call over ``lanes`` (primary first) with retries, fallback, a stream watchdog
    and circuit breakers. Every duration below is in seconds, multiplied by ``time_scale``."""

    def __init__(
        self,
        lanes: Sequence[Any],
        *,
        time_scale: float = 1.0,
        # retries on one lane
        max_attempts_per_lane: int = 2,  # 1 retry, then the next lane
        backoff_base: float = 0.25,  # full jitter: uniform(0, min(cap, base * 2**n))
        backoff_cap: float = 2.0,
        max_retry_after: float = 2.0,  # a longer server delay means "fall back now"
        max_lane_block: float = 120.0,  # never keep a lane aside longer than this for a Retry-After
        # stream watchdog
        ttft_timeout: float = 3.0,  # request sent -> first answer text (pings do not count)
        idle_timeout: float = 2.0,  # between two pieces of answer text (pings do not reset it)
        generation_timeout: float = 4.5,  # first answer text -> end of the answer
        min_tokens_per_second: float = 8.0,  # throughput floor (tokens counted as words) ...
        throughput_window: float = 0.75,  # ... over any window this long once generation started
        call_deadline: float = 30.0,  # the whole call, retries and fallbacks included
        # circuit breaker
        breaker_failures: int = 3,
        breaker_cooldown: float = 5.0,  # open -> half-open; doubles while probes fail ...
        breaker_max_cooldown: float = 10.0,  # ... up to this
        permanent_cooldown: float = 300.0,  # credentials, billing, model gone
        seed: int | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.lanes = parse_lanes(lanes)
        self.time_scale = time_scale
        self.max_attempts_per_lane = max_attempts_per_lane
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_retry_after = max_retry_after
        self.max_lane_block = max_lane_block
        self.ttft_timeout = ttft_timeout
        self.idle_timeout = idle_timeout
        self.generation_timeout = generation_timeout
        self.min_tokens_per_second = min_tokens_per_second
        self.throughput_window = throughput_window
        self.call_deadline = call_deadline
        self.permanent_cooldown = permanent_cooldown
        self.breakers = {
            lane.name: CircuitBreaker(breaker_failures, self.s(breaker_cooldown), self.s(breaker_max_cooldown))
            for lane in self.lanes
        }
        self.blocked_until: dict[str, float] = {lane.name: 0.0 for lane in self.lanes}
        self.random = random.Random(seed)
        self.client = client
        _ssl_context()  # build it now, not inside the first call's latency
        self._dialects = {lane.name: self._dialect(lane) for lane in self.lanes}

    # -- public API ---------------------------------------------------------------------------
    def s(self, seconds: float) -> float:
        """Real seconds for a duration in the agent's own (unscaled) seconds."""
        return seconds * self.time_scale

    def complete(self, prompt: str, *, headers: Mapping[str, str] | None = None) -> Result:
        """Answer ``prompt`` (blocking). Sends the drill's call id header when run inside
        ``drill.call``."""
        return asyncio.run(self.acomplete(prompt, headers=headers if headers is not None else call_headers()))

    async def acomplete(self, prompt: str, *, headers: Mapping[str, str] | None = None) -> Result:
        """Answer ``prompt``: try the lanes in order until one gives a whole answer."""
        headers = dict(call_headers() if headers is None else headers)
        if self.client is not None:
            return await self._route(self.client, prompt, headers)
        async with httpx.AsyncClient(verify=_ssl_context(), timeout=None) as client:
            return await self._route(client, prompt, headers)

    # -- routing ------------------------------------------------------------------------------
    async def _route(self, client: httpx.AsyncClient, prompt: str, headers: dict[str, str]) -> Result:
        deadline = time.monotonic() + self.s(self.call_deadline)
        log: list[str] = []
        last_error = "no lane available"
        planned = self.plan()
        for lane in planned:
            try:
                return await self._try_lane(client, lane, prompt, headers, deadline, log)
            except AttemptFailed as exc:
                last_error = f"{lane.name}: {exc.reason}"
            if time.monotonic() >= deadline:
                break
        # last resort: every lane we tried failed, so probe a lane whose circuit is only cooling
        # down after transient failures (it may have healed while the fallbacks broke)
        for lane in self.lanes:
            if (
                lane in planned
                or time.monotonic() >= deadline
                or not self.breakers[lane.name].force_probe(time.monotonic())
            ):
                continue
            try:
                return await self._try_lane(client, lane, prompt, headers, deadline, log)
            except AttemptFailed as exc:
                last_error = f"{lane.name}: {exc.reason}"
        for lane in self.lanes:  # say why the lanes not tried were left out
            if not any(entry.startswith(lane.name + ":") for entry in log):
                b = self.breakers[lane.name]
                why = "disabled by a permanent error" if b.tripped else f"circuit {b.state}"
                if self.blocked_until[lane.name] > time.monotonic():
                    why = "asked us to wait (Retry-After)"
                log.append(f"{lane.name}: skipped, {why}")
        return Result(None, None, False, error=last_error, error_type="AllLanesFailed", attempts=log)

    def plan(self) -> list[LaneConfig]:
        """The lanes to try for one call, in order: those whose breaker lets traffic through
        and that did not ask us to wait longer than we would; if none does, the one that will be
        available first (better a probe than a certain failure)."""
        now = time.monotonic()
        usable = [lane for lane in self.lanes if self.available(lane, now)]
        if usable:
            return usable
        return [
            min(self.lanes, key=lambda lane: max(self.breakers[lane.name].reopen_at, self.blocked_until[lane.name]))
        ]

    def available(self, lane: LaneConfig, now: float) -> bool:
        """Whether ``lane`` should get a new call now (peeks; does not take the probe)."""
        if self.blocked_until[lane.name] - now > self.s(self.max_retry_after):
            return False
        b = self.breakers[lane.name]
        return b.state == "closed" or (now >= b.reopen_at and not b.probing)

    async def _try_lane(
        self,
        client: httpx.AsyncClient,
        lane: LaneConfig,
        prompt: str,
        headers: dict[str, str],
        deadline: float,
        log: list[str],
    ) -> Result:
        """Up to ``max_attempts_per_lane`` attempts on ``lane``; raises the last failure."""
        breaker = self.breakers[lane.name]
        failure = AttemptFailed("circuit open", retry_same_lane=False)
        for n in range(self.max_attempts_per_lane):
            wait = self.blocked_until[lane.name] - time.monotonic()
            if wait > 0:  # the server asked for a pause: honour it (it was short, or we'd have left)
                if time.monotonic() + wait >= deadline or wait > self.s(self.max_retry_after):
                    raise failure  # another call was told to wait longer meanwhile: fall back now
                await asyncio.sleep(wait)
            now = time.monotonic()
            if not breaker.allow(now):
                raise failure
            try:
                result = await self.attempt(client, lane, prompt, headers, deadline)
            except AttemptFailed as exc:
                failure = exc
                now = time.monotonic()
                log.append(f"{lane.name}: {exc.reason}")
                if exc.lane_down:
                    breaker.trip(now, self.s(self.permanent_cooldown))
                elif exc.counts_for_breaker:
                    breaker.failure(now, exc.retry_after)
                else:
                    breaker.neutral()
                if exc.retry_after is not None:
                    self.blocked_until[lane.name] = now + min(exc.retry_after, self.s(self.max_lane_block))
                if not exc.retry_same_lane or n + 1 >= self.max_attempts_per_lane:
                    raise
                if exc.retry_after is not None:
                    if exc.retry_after > self.s(self.max_retry_after):
                        raise  # not worth waiting for: fall back now
                    continue  # the top of the loop waits for blocked_until
                delay = self.backoff(n)
                if time.monotonic() + delay >= deadline:
                    raise
                await asyncio.sleep(delay)
                continue
            breaker.success()
            log.append(f"{lane.name}: ok")
            result.attempts = log
            return result
        raise failure

    def backoff(self, n: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**n)], real seconds."""
        return self.random.uniform(0, self.s(min(self.backoff_cap, self.backoff_base * 2**n)))

    # -- one attempt, streamed, under the watchdog --------------------------------------------
    def request_for(self, lane: LaneConfig, prompt: str) -> tuple[str, dict[str, Any]]:
        path, body = build_request(lane.dialect, prompt, model=lane.model, stream=True)
        if path.split("?")[0].endswith("/chat/completions"):
            body["stream_options"] = {"include_usage": True}  # usage in the stream (reports_fallback_model)
        return path, body

    @staticmethod
    def _dialect(lane: LaneConfig) -> Dialect:
        return dialect_for(lane.dialect, build_request(lane.dialect, "x", stream=True)[0])

    async def attempt(
        self, client: httpx.AsyncClient, lane: LaneConfig, prompt: str, headers: dict[str, str], deadline: float
    ) -> Result:
        """One streamed request; returns a whole answer or raises :class:`AttemptFailed`."""
        path, body = self.request_for(lane, prompt)
        dialect = self._dialects[lane.name]
        loop = asyncio.get_running_loop()
        start = loop.time()
        call_end = start + max(0.0, deadline - time.monotonic())
        first_token_by = start + self.s(self.ttft_timeout)
        stage = "time to first token"
        text: list[str] = []
        recent: deque[tuple[float, int]] = deque()  # (time, tokens) of the last throughput_window
        usage_in = usage_out = 0
        saw_usage = False
        finish: str | None = None
        ended = False  # the dialect's terminator arrived
        calls = ToolCallLog()  # the answer's tool calls, added up from their fragments
        try:
            async with asyncio.timeout_at(min(first_token_by, call_end)) as watchdog:
                async with client.stream(
                    "POST", lane.base_url + path, json=body, headers=self.headers_for(lane, headers)
                ) as resp:
                    if resp.status_code >= 400:
                        raise classify_http_error(resp.status_code, resp.headers, await resp.aread())
                    decoder = dialect.stream_decoder()  # SSE, Ollama's NDJSON or Bedrock's binary frames
                    first_at: float | None = None
                    async for chunk in resp.aiter_bytes():
                        for ev in decoder.feed(chunk):
                            info = dialect.classify(ev)
                            if info.usage is not None:
                                saw_usage = True
                                usage_in = max(usage_in, info.usage.input_tokens)
                                usage_out = max(usage_out, info.usage.output_tokens)
                            if info.finish is not None:
                                finish = info.finish
                            if info.kind is EventKind.ERROR:
                                raise classify_inband_error(info.error)
                            if info.kind is EventKind.MALFORMED:
                                raise AttemptFailed("malformed stream event")
                            if info.tools:
                                calls.feed(info.tools)
                            fragments = sum(1 for d in info.tools if d.arguments)  # tool arguments are content too
                            if (info.text or fragments) and info.kind in (EventKind.CONTENT, EventKind.TERMINATOR):
                                now = loop.time()
                                if first_at is None:
                                    first_at = now
                                    stage = "content idle"
                                text.append(info.text)
                                self._check_throughput(recent, now, first_at, len(info.text.split()) + fragments)
                                # only answer text moves the watchdog; keep-alives never do
                                watchdog.reschedule(
                                    min(
                                        now + self.s(self.idle_timeout),
                                        first_at + self.s(self.generation_timeout),
                                        call_end,
                                    )
                                )
                            if info.ends_stream:
                                ended = True
                                break
                        if ended:
                            break  # stop on the semantic end, even if the body lingers (F23)
        except TimeoutError:
            now = loop.time()
            what = "call deadline" if now >= call_end - 1e-3 else stage
            raise AttemptFailed(f"watchdog: {what} exceeded", retry_same_lane=False) from None
        except httpx.HTTPError as exc:
            self.transport_failed(exc, "".join(text))
        self.check_ending(ended, finish)
        usage = Usage(usage_in, usage_out).to_dict() if saw_usage else None
        tool_calls = [(c.id, c.name, "".join(c.parts), c.done) for c in calls.calls]
        return Result(
            "".join(text), lane.name, True, usage=usage, model=lane.model, tool_calls=tool_calls, finish=finish
        )

    def transport_failed(self, exc: httpx.HTTPError, text_so_far: str) -> None:
        """A connection error (refused, reset, a body closed before its end): always a failed
        attempt, whatever text had arrived."""
        raise AttemptFailed(f"transport: {type(exc).__name__}") from None

    def check_ending(self, ended: bool, finish: str | None) -> None:
        """Raise unless the stream ended with a whole answer: the dialect's terminator arrived
        (or, F22, the body ended cleanly right after a ``stop`` finish reason), and the answer was
        not stopped early by a length limit or a content filter."""
        if not ended and finish != "stop":
            raise AttemptFailed("stream ended without its terminator (cut)")
        if finish in ("length", "content_filter"):
            # a semantic stop: the answer is incomplete, and this lane will stop it the same way
            raise AttemptFailed(
                f"answer stopped early: finish {finish}", retry_same_lane=False, counts_for_breaker=False
            )

    def _check_throughput(self, recent: deque[tuple[float, int]], now: float, first_at: float, tokens: int) -> None:
        """Fail the attempt when, once a whole window of generation has passed, fewer than
        ``min_tokens_per_second`` tokens arrived in the last ``throughput_window`` (F15: a lane
        that silently degrades to a few tokens per second)."""
        window = self.s(self.throughput_window)
        recent.append((now, tokens))
        while recent and recent[0][0] < now - window:
            recent.popleft()
        if now - first_at >= window and sum(n for _, n in recent) < self.min_tokens_per_second * self.throughput_window:
            raise AttemptFailed("watchdog: throughput below the floor", retry_same_lane=False)

    def headers_for(self, lane: LaneConfig, headers: Mapping[str, str]) -> dict[str, str]:
        """The provider's auth and version headers, plus the drill's call id."""
        out = {"accept": "text/event-stream"}
        if lane.dialect == "anthropic":
            out.update({"x-api-key": "sk-ant-routechaos", "anthropic-version": "2023-06-01"})
        elif lane.dialect == "gemini":
            out["x-goog-api-key"] = "routechaos"
        elif lane.dialect == "azure":
            out["api-key"] = "routechaos"
        else:  # OpenAI and OpenAI-compatible; Bedrock and Vertex take a bearer token too
            out["authorization"] = "Bearer sk-routechaos"
        out.update(headers)
        return out
