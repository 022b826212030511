"""Agents with one known flaw each: small variations of the reference :class:`Router`.

Each docstring names the flaw, the real-world pattern it stands for, and the check that catches
it. ``tests/examples/test_flawed_agents.py`` proves that each fails exactly that check on a
profile chosen for its flaw, while the reference router passes the same profile and checks.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from .router import AttemptFailed, LaneConfig, Result, Router

__all__ = [
    "AGENTS",
    "AcceptsCutStream",
    "AppRetriesAroundSdk",
    "IgnoresRetryAfter",
    "NeverReturnsToPrimary",
    "NoStreamIdleTimeout",
    "RetriesForever",
]

SDK_DIALECTS = ("openai", "openai-chat", "vllm", "ollama")

#: safety cap so a test of RetriesForever stays bounded
RETRIES_FOREVER_CAP = 40


class RetriesForever(Router):
    """Retries the failing primary "until it works": no per-lane bound worth the name (capped at
    40 attempts only so tests end), no circuit breaker, no fallback until the cap.
    Caught by ``retries_bounded`` (attempts per call)."""

    def __init__(self, lanes: Sequence[Any], **kw: Any) -> None:
        kw.setdefault("max_attempts_per_lane", RETRIES_FOREVER_CAP)
        kw.setdefault("backoff_base", 0.01)
        kw.setdefault("backoff_cap", 0.02)
        kw.setdefault("breaker_failures", 10**9)
        super().__init__(lanes, **kw)


class IgnoresRetryAfter(Router):
    """Retries a throttled lane after a fixed 10 ms, whatever ``Retry-After`` asked for (the
    hand-rolled retry loop of F01/F09). Caught by ``honors_retry_after``."""

    def __init__(self, lanes: Sequence[Any], **kw: Any) -> None:
        kw.setdefault("max_attempts_per_lane", 3)
        super().__init__(lanes, **kw)

    async def attempt(self, client: httpx.AsyncClient, lane: LaneConfig, *args: Any) -> Result:
        try:
            return await super().attempt(client, lane, *args)
        except AttemptFailed as exc:
            exc.retry_after = None  # the flaw: the server's delay is never read
            raise

    def backoff(self, n: int) -> float:
        return self.s(0.01)


class NoStreamIdleTimeout(Router):
    """No stream watchdog: it trusts the socket (the Stainless default of a 600 s read timeout),
    so a stream that stalls mid-answer holds the call until the stall ends (F17). Caught by
    ``latency_budget`` (total time)."""

    def __init__(self, lanes: Sequence[Any], **kw: Any) -> None:
        for name in ("ttft_timeout", "idle_timeout", "generation_timeout"):
            kw.setdefault(name, 600.0)
        kw.setdefault("call_deadline", 1800.0)
        kw.setdefault("min_tokens_per_second", 0.0)
        super().__init__(lanes, **kw)


class AcceptsCutStream(Router):
    """Takes whatever text arrived before the connection closed as the answer: a stream cut
    mid-answer (no ``[DONE]``, no ``finish_reason``) is reported as a complete success (F16).
    Caught by ``no_truncated_success``."""

    def transport_failed(self, exc: httpx.HTTPError, text_so_far: str) -> None:
        if not text_so_far:
            super().transport_failed(exc, text_so_far)
        # the flaw: text arrived, so the connection closing "must" be the end of the answer

    def check_ending(self, ended: bool, finish: str | None) -> None:
        return None  # the flaw: EOF is taken for the end of the answer, terminator or not


class NeverReturnsToPrimary(Router):
    """Fails over once and stays there: after one failure a lane is written off for good (no
    half-open probe), so the premium lane is never used again after it heals (F29).
    Caught by ``recovers_within``."""

    def __init__(self, lanes: Sequence[Any], **kw: Any) -> None:
        kw.setdefault("permanent_cooldown", math.inf)
        super().__init__(lanes, **kw)

    async def attempt(self, client: httpx.AsyncClient, lane: LaneConfig, *args: Any) -> Result:
        try:
            return await super().attempt(client, lane, *args)
        except AttemptFailed as exc:
            exc.lane_down = True  # the flaw: every failure is forever
            raise


class AppRetriesAroundSdk(Router):
    """Calls OpenAI-dialect lanes through the official ``openai`` SDK with its default
    ``max_retries=2``, inside an application retry loop of 3: up to 3 × 3 = 9 attempts per call,
    two retry layers multiplying (LiteLLM docs: set the SDK's retries to 0 when you own the loop).
    Caught by ``retries_bounded`` with ``max_amplification: 1`` (the SDK's
    ``x-stainless-retry-count`` restarts at 0 for each application retry)."""

    def __init__(self, lanes: Sequence[Any], **kw: Any) -> None:
        kw.setdefault("max_attempts_per_lane", 3)  # the application's own loop
        super().__init__(lanes, **kw)
        import openai

        # one SDK client per OpenAI lane, built up front (building one costs ~100 ms)
        self._sdk = {
            lane.name: openai.OpenAI(
                base_url=lane.base_url + "/v1",
                api_key="sk-routechaos",
                timeout=self.s(self.call_deadline),
                # max_retries left at its default (2): the flaw
            )
            for lane in self.lanes
            if lane.dialect in SDK_DIALECTS
        }

    async def attempt(
        self, client: httpx.AsyncClient, lane: LaneConfig, prompt: str, headers: dict[str, str], deadline: float
    ) -> Result:
        if lane.name not in self._sdk:
            return await super().attempt(client, lane, prompt, headers, deadline)
        return await asyncio.to_thread(self._sdk_attempt, lane, prompt, headers)

    def _sdk_attempt(self, lane: LaneConfig, prompt: str, headers: Mapping[str, str]) -> Result:
        import openai

        sdk = self._sdk[lane.name]
        text: list[str] = []
        try:
            stream = sdk.chat.completions.create(
                model=lane.model,
                messages=[{"role": "user", "content": prompt}],
                stream=True,
                stream_options={"include_usage": True},
                extra_headers=dict(headers),
            )
            usage = None
            for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    text.append(chunk.choices[0].delta.content)
                if chunk.usage is not None:
                    usage = {"input_tokens": chunk.usage.prompt_tokens, "output_tokens": chunk.usage.completion_tokens}
        except openai.APIStatusError as exc:
            raise AttemptFailed(f"SDK: {type(exc).__name__} {exc.status_code}", status=exc.status_code) from None
        except openai.APIError as exc:
            raise AttemptFailed(f"SDK: {type(exc).__name__}") from None
        return Result("".join(text), lane.name, True, usage=usage, model=lane.model)


#: agent name (CLI) -> class
AGENTS: dict[str, type[Router]] = {
    "router": Router,
    "retries_forever": RetriesForever,
    "ignores_retry_after": IgnoresRetryAfter,
    "no_stream_idle_timeout": NoStreamIdleTimeout,
    "accepts_cut_stream": AcceptsCutStream,
    "never_returns_to_primary": NeverReturnsToPrimary,
    "app_retries_around_sdk": AppRetriesAroundSdk,
}
