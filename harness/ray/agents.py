"""A light asyncio agent for drills at scale: one OpenAI Chat streaming client, a few hundred
of them per process.

It is what a load generator is (LLMPerf's clients are the same shape): stream the answer, retry
a refusal after the ``Retry-After`` it was given (the truth, with a shared limiter), move to the
next replica when one stops answering, fall back to a second lane when the first keeps failing.
It sends the call id the drill gave it, so attempts are tied to calls exactly.

``light_agent`` is the factory an :class:`~harness.ray.actors.AgentActor` calls (picklable, no
state); the agents of one actor share one connection pool.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from ..drill import call_headers

__all__ = ["LightAgent", "light_agent"]

_SESSIONS: dict[int, aiohttp.ClientSession] = {}


class LightAgent:
    """``await agent(prompt)`` -> ``{"text", "lane"}``; tries ``lanes`` in order."""

    def __init__(
        self,
        urls: dict[str, list[str]],
        index: int,
        *,
        lanes: list[str] | None = None,
        attempts: int = 4,
        backoff: float = 0.05,
        max_tokens: int | None = None,
        max_wait: float | None = None,
    ) -> None:
        self.urls = urls
        self.index = index
        self.lanes = lanes or list(urls)
        self.attempts = attempts
        self.backoff = backoff
        self.max_tokens = max_tokens
        self.max_wait = max_wait  # cap on a Retry-After wait (None: wait what the lane said)
        #: HTTP attempts this agent sent (the client's side of the count the merged journal keeps)
        self.attempts_made = 0

    def _session(self) -> aiohttp.ClientSession:
        loop = id(asyncio.get_running_loop())
        s = _SESSIONS.get(loop)
        if s is None or s.closed:
            s = _SESSIONS[loop] = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=120)
            )
        return s

    async def __call__(self, prompt: str) -> dict[str, Any]:
        body: dict[str, Any] = {"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": prompt}]}
        if self.max_tokens:
            body["max_tokens"] = self.max_tokens
        last = "no attempt"
        for lane in self.lanes:
            replicas = self.urls[lane]
            for k in range(self.attempts):
                url = replicas[(self.index + k) % len(replicas)] + "/v1/chat/completions"
                try:
                    status, wait, text = await self._attempt(url, body)
                except (TimeoutError, aiohttp.ClientError) as exc:
                    last = f"{type(exc).__name__}: {exc}"
                    await asyncio.sleep(self.backoff)
                    continue
                if status == 200 and text is not None:
                    return {"text": text, "lane": lane}
                last = f"HTTP {status}"
                if status not in (408, 409, 429, 500, 502, 503, 504, 529) and status != 200:
                    break
                delay = wait if wait is not None else self.backoff * (2**k)
                await asyncio.sleep(delay if self.max_wait is None else min(delay, self.max_wait))
        raise RuntimeError(f"every lane failed ({last})")

    async def _attempt(self, url: str, body: dict[str, Any]) -> tuple[int, float | None, str | None]:
        """One attempt: (status, retry-after seconds, the streamed text or None if cut)."""
        self.attempts_made += 1
        async with self._session().post(url, json=body, headers=call_headers()) as r:
            if r.status != 200:
                ra = r.headers.get("retry-after-ms")
                wait = (
                    float(ra) / 1000
                    if ra
                    else (float(r.headers["retry-after"]) if "retry-after" in r.headers else None)
                )
                await r.read()
                return r.status, wait, None
            parts: list[str] = []
            done = False
            async for raw in r.content:
                line = raw.strip()
                if not line.startswith(b"data:"):
                    continue
                data = line[5:].strip()
                if data == b"[DONE]":
                    done = True
                    break
                event = json.loads(data)
                for choice in event.get("choices") or ():
                    piece = (choice.get("delta") or {}).get("content")
                    if piece:
                        parts.append(piece)
            return 200, None, "".join(parts) if done else None

    async def aclose(self) -> None:
        return None


def light_agent(urls: dict[str, list[str]], index: int) -> LightAgent:
    """The default agent factory of a Ray drill's workload."""
    return LightAgent(urls, index)
