"""Agents as they are: a primary/fallback agent on the plain openai and anthropic SDKs, which sends
nothing routechaos-specific. Tests tag each request with a header routechaos does not read
(``x-test-call``), so the journal holds the ground truth to compare attribution against."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anthropic
import openai

from harness.drill import Drill

TRUTH_HEADER = "x-test-call"
_truth: contextvars.ContextVar[str | None] = contextvars.ContextVar("truth", default=None)


@contextmanager
def truth(call: str) -> Iterator[None]:
    token = _truth.set(call)
    try:
        yield
    finally:
        _truth.reset(token)


def _headers() -> dict[str, str]:
    t = _truth.get()
    return {TRUTH_HEADER: t} if t else {}


class PlainAgent:
    """Streams from the openai-dialect primary; on an exception or a missing ``stop`` falls back to
    the anthropic-dialect stable lane. ``accept_cut`` keeps whatever text a broken stream gave
    (the F16 flaw); ``max_retries`` is the SDK's own retry loop (``x-stainless-retry-count``)."""

    def __init__(self, drill: Drill, *, accept_cut: bool = False, max_retries: int = 0) -> None:
        self.primary = openai.OpenAI(base_url=drill.base_url("primary"), api_key="sk-x", max_retries=max_retries)
        self.stable = anthropic.Anthropic(base_url=drill.url("stable"), api_key="sk-ant-x", max_retries=max_retries)
        self.aprimary = openai.AsyncOpenAI(base_url=drill.base_url("primary"), api_key="sk-x", max_retries=max_retries)
        self.astable = anthropic.AsyncAnthropic(
            base_url=drill.url("stable"), api_key="sk-ant-x", max_retries=max_retries
        )
        self.accept_cut = accept_cut

    def complete(self, prompt: str) -> dict[str, Any]:
        text, finish = "", None
        try:
            stream = self.primary.chat.completions.create(
                model="gpt-4o",
                messages=[{"role": "user", "content": prompt}],
                stream=True,
                extra_headers=_headers(),
            )
            for chunk in stream:
                if chunk.choices:
                    text += chunk.choices[0].delta.content or ""
                    finish = chunk.choices[0].finish_reason or finish
            if finish == "stop" or self.accept_cut:
                return {"text": text, "lane": "primary"}
        except openai.APIError:
            if self.accept_cut and text:
                return {"text": text, "lane": "primary"}
        msg = self.stable.messages.create(
            model="claude-sonnet-4-5",
            max_tokens=256,
            messages=[{"role": "user", "content": prompt}],
            extra_headers=_headers(),
        )
        return {"text": msg.content[0].text, "lane": "stable"}

    async def acomplete(self, prompt: str) -> dict[str, Any]:
        text, finish = "", None
        try:
            stream = await self.aprimary.chat.completions.create(
                model="gpt-4o",
                messages=[{"role": "user", "content": prompt}],
                stream=True,
                extra_headers=_headers(),
            )
            async for chunk in stream:
                if chunk.choices:
                    text += chunk.choices[0].delta.content or ""
                    finish = chunk.choices[0].finish_reason or finish
            if finish == "stop" or self.accept_cut:
                return {"text": text, "lane": "primary"}
        except openai.APIError:
            if self.accept_cut and text:
                return {"text": text, "lane": "primary"}
        msg = await self.astable.messages.create(
            model="claude-sonnet-4-5",
            max_tokens=256,
            messages=[{"role": "user", "content": prompt}],
            extra_headers=_headers(),
        )
        return {"text": msg.content[0].text, "lane": "stable"}


def ground_truth(drill: Drill) -> dict[str, str]:
    """Attempt id -> the call that really made it (from the test's own header)."""
    return {a.id: a.headers[TRUTH_HEADER] for a in drill.journal.attempts() if TRUTH_HEADER in a.headers}
