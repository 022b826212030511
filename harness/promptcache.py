"""A prompt cache per lane: repeated conversation prefixes above a minimum size are read from the
cache, billed at the cached-input price and reported in each dialect's own usage fields.

Providers cache the longest prefix of the prompt they have seen recently (OpenAI and Gemini
implicitly, from 1024 tokens; Anthropic up to the request's ``cache_control`` breakpoints), for
minutes. A router that fails over loses that: the fallback lane starts cold, and each turn there
pays full price for the whole conversation. This module is that cache, pure and clock-injected:

- :func:`prefixes` turns a request body into cumulative prefix hashes at message boundaries, each
  with the number of prompt tokens up to it (scaled to the request's own prompt token count);
- :class:`PromptCache` answers ``(cached, written)`` for them and remembers them for ``ttl``.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from typing import Any

from .canonical import estimate_tokens
from .clock import Clock, MonotonicClock

__all__ = ["PromptCache", "prefixes"]

_MAX_ENTRIES = 200_000


def _segments(family: str, obj: dict[str, Any]) -> list[Any]:
    """The prompt in the order a provider caches it: tools and system first, then the turns."""
    if family == "chat":
        return [obj.get("tools") or obj.get("functions"), *(obj.get("messages") or [])]
    if family == "responses":
        inp = obj.get("input")
        items = inp if isinstance(inp, list) else [inp]
        return [obj.get("tools"), obj.get("instructions"), {"previous": obj.get("previous_response_id")}, *items]
    if family == "anthropic":
        return [obj.get("tools"), obj.get("system"), *(obj.get("messages") or [])]
    if family == "gemini":
        sys_ = obj.get("systemInstruction", obj.get("system_instruction"))
        return [obj.get("tools"), sys_, *(obj.get("contents") or [])]
    return []


def prefixes(family: str, obj: dict[str, Any], prompt_tokens: int, prior_tokens: int = 0) -> list[tuple[str, int]]:
    """``[(hash, tokens)]``: the prompt's prefixes ending at each segment, shortest first.
    ``prior_tokens`` are the tokens of a stored conversation the request continues (a Responses
    ``previous_response_id``): they count from that segment on (the instructions before it are
    a prefix of their own)."""
    segs = [s for s in _segments(family, obj) if s not in (None, [], "", {"previous": None})]
    if not segs:
        return []
    sizes = [estimate_tokens(json.dumps(s, sort_keys=True, default=str)) for s in segs]
    total = sum(sizes)
    h = hashlib.sha256(family.encode())
    out = []
    seen = 0
    prior = 0
    for seg, size in zip(segs, sizes, strict=True):
        h.update(json.dumps(seg, sort_keys=True, default=str).encode())
        seen += size
        if isinstance(seg, dict) and "previous" in seg:
            prior = prior_tokens
        out.append((h.copy().hexdigest()[:32], prior + round(prompt_tokens * seen / total)))
    return out


class PromptCache:
    """One lane's cache: prefix hash -> expiry. Every prefix of at least ``min_tokens`` that a
    request carries is written (an entry read again has its ``ttl`` renewed, as providers do)."""

    def __init__(self, min_tokens: int = 1024, ttl: float = 300.0, clock: Clock | None = None) -> None:
        self.min_tokens = min_tokens
        self.ttl = ttl
        self.clock = clock or MonotonicClock()
        self._entries: OrderedDict[str, float] = OrderedDict()
        self.flushes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def peek(self, prefixes: list[tuple[str, int]]) -> int:
        """The longest live prefix, without reading it (another lane asking what it lost)."""
        now = self.clock.now()
        for h, tokens in reversed(prefixes):
            expiry = self._entries.get(h)
            if expiry is not None and expiry > now and tokens >= self.min_tokens:
                return tokens
        return 0

    def use(self, prefixes: list[tuple[str, int]]) -> tuple[int, int]:
        """``(cached, written)`` tokens for a request with these prefixes: the longest live
        prefix read from the cache, and the tokens it adds beyond that."""
        now = self.clock.now()
        cached = 0
        for h, tokens in reversed(prefixes):
            expiry = self._entries.get(h)
            if expiry is not None and expiry > now and tokens >= self.min_tokens:
                cached = tokens
                break
        longest = 0
        for h, tokens in prefixes:
            if tokens >= self.min_tokens:
                self._entries[h] = now + self.ttl
                self._entries.move_to_end(h)
                longest = tokens
        while len(self._entries) > _MAX_ENTRIES:
            self._entries.popitem(last=False)
        return cached, max(0, longest - cached)

    def store(self, prefix: str, tokens: int) -> None:
        """Keep one prefix (a stored conversation a later request will continue)."""
        if tokens >= self.min_tokens:
            self._entries[prefix] = self.clock.now() + self.ttl
            self._entries.move_to_end(prefix)

    def flush(self) -> None:
        """Forget everything (a provider-side eviction, a deployment restart: the cache_flush fault)."""
        self._entries.clear()
        self.flushes += 1
