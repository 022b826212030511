"""A simulated lane's state at run time: the key its signatures are made with and the response ids
it issued; it admits each request against the lane's :class:`~harness.capabilities.Capabilities`
(or rejects it in the dialect's exact words) and stamps answers with lane-bound state.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import replace
from typing import Any

from .capabilities import (
    Asked,
    Capabilities,
    asked,
    context_error,
    family_of,
    openai_rejection,
    rejection,
    unsupported_error,
)
from .clock import Clock
from .dialects.base import Dialect, Event, EventKind, Rendered, RequestInfo, Usage
from .promptcache import PromptCache, prefixes
from .sse import encode_event

#: a request header the cache_flush fault sets for the simulator behind the lane
CACHE_FLUSH_HEADER = "x-routechaos-cache-flush"

__all__ = ["CACHE_FLUSH_HEADER", "LaneState", "link_peers"]

# -- a lane's state at run time ------------------------------------------------------------------
_MAX_RESPONSES = 100_000  # response ids a lane remembers (oldest forgotten first)
_SHIFT_INDEX = re.compile(rb'(?<!\\)"index":(\d+)')


class LaneState:
    """One simulated lane's capabilities and the state it minted. Signatures are an HMAC under a
    key derived from the lane's name, so a block signed by another lane (or by no lane) fails;
    response ids are remembered, as the Responses API stores responses."""

    def __init__(
        self, lane: str, caps: Capabilities | None = None, *, time_scale: float = 1.0, clock: Clock | None = None
    ) -> None:
        self.lane = lane
        self.caps = caps or Capabilities()
        self.cache = PromptCache(self.caps.cache_min_tokens, self.caps.cache_ttl * time_scale, clock)
        #: every lane of the drill by name (this one included), to tell what a failover lost
        self.peers: dict[str, LaneState] = {lane: self}
        self._key = hashlib.sha256(f"routechaos-lane-state:{lane}".encode()).digest()
        self.responses: OrderedDict[str, int] = OrderedDict()  # id -> conversation tokens so far

    # signatures: base64(nonce || mac(nonce || bound text))
    def sign(self, bound: str) -> str:
        nonce = secrets.token_bytes(12)
        mac = hmac.new(self._key, nonce + bound.encode(), hashlib.sha256).digest()
        return base64.b64encode(nonce + mac).decode()

    def signed_here(self, signature: str, bound: str) -> bool:
        try:
            # clients may send the bytes back URL-safe encoded (google-genai does)
            raw = base64.b64decode(signature.replace("-", "+").replace("_", "/"), validate=True)
        except (ValueError, TypeError):
            return False
        if len(raw) != 44:
            return False
        mac = hmac.new(self._key, raw[:12] + bound.encode(), hashlib.sha256).digest()
        return hmac.compare_digest(mac, raw[12:])

    def context_tokens(self, req: RequestInfo, a: Asked) -> int:
        """Tokens of the conversation the model would see: the request's, plus a stored
        response's conversation when it continues one."""
        prior = self.responses.get(a.previous_response_id, 0) if a.previous_response_id else 0
        return req.prompt_tokens + prior

    def admit(self, req: RequestInfo, dialect: Dialect, body: bytes) -> Rendered | Asked:
        """The provider's exact rejection, or what the request asks for (to stamp the answer)."""
        family = family_of(dialect.name)
        if family is None:
            return Asked()
        a = asked(family, body)
        for feature, param in a.features:
            if not getattr(self.caps, feature):
                return unsupported_error(family, feature, param, req, dialect)
        if a.previous_response_id is not None and a.previous_response_id not in self.responses:
            msg = f"Previous response with id '{a.previous_response_id}' not found."
            return openai_rejection(dialect, req, msg, "previous_response_id", "previous_response_not_found")
        for i, j, text, sig in a.signed_blocks:
            if not self.signed_here(sig, text):
                return rejection(dialect, req, f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block")
        for i, _j, name, sig in a.thought_parts:
            if sig is not None and not self.signed_here(sig, name):
                return rejection(dialect, req, "Corrupted thought signature.")
            if sig is None and a.thinking and self.caps.reasoning and name:
                return rejection(
                    dialect,
                    req,
                    "Function call is missing a thought_signature in functionCall parts. This is required for "
                    "tools to work correctly, and missing thought_signature may lead to degraded model "
                    f"performance. Additional data, function call `default_api:{name}` , position {i + 1}. "
                    "Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details.",
                )
        limit = self.caps.max_context_tokens
        tokens = self.context_tokens(req, a)
        if limit is not None and tokens > limit:
            return context_error(family, tokens, limit, req, dialect)
        return a

    def with_cache(
        self, a: Asked, req: RequestInfo, dialect: Dialect, usage: Usage, headers: Mapping[str, str] | None = None
    ) -> Usage:
        """``usage`` with what this lane's prompt cache read and wrote for the request (a flush
        asked for by the cache_flush fault happens first). Writes are reported where the
        provider bills them (Anthropic's ``cache_creation_input_tokens``)."""
        if headers and any(k.lower() == CACHE_FLUSH_HEADER for k in headers):
            self.cache.flush()
        family = family_of(dialect.name)
        if not self.caps.prompt_cache or family is None or a.body is None:
            return usage
        if family == "anthropic" and not a.cache_marked:
            return usage  # Anthropic caches only where the request asks it to
        prior = self.responses.get(a.previous_response_id, 0) if a.previous_response_id else 0
        marks = prefixes(family, a.body, req.prompt_tokens, prior)
        cached, written = self.cache.use(marks)
        total = usage.input_tokens + prior
        cached = min(cached, total)
        written = min(written, total - cached) if family == "anthropic" else 0
        elsewhere = max((p.cache.peek(marks) for p in self.peers.values() if p is not self), default=0)
        return replace(
            usage,
            input_tokens=total,
            cached_input_tokens=cached,
            cache_write_tokens=written,
            cache_elsewhere_tokens=max(0, min(elsewhere, total) - cached),
        )

    # -- stamping answers with lane-bound state ------------------------------------------------
    def thinking_text(self, req: RequestInfo) -> str:
        return f"Considering the request ({req.fingerprint[:12]}) before answering."

    def remember(self, response_id: str, tokens: int, a: Asked | None = None) -> None:
        """Store a response (its conversation's tokens), and cache that conversation as the
        prefix a continuation with ``previous_response_id`` starts with."""
        self.responses[response_id] = tokens
        if a is not None and a.body is not None and self.caps.prompt_cache:
            head = {k: a.body.get(k) for k in ("tools", "instructions")}
            marks = prefixes("responses", {**head, "previous_response_id": response_id}, 0, tokens)
            if marks:
                self.cache.store(marks[-1][0], marks[-1][1])
        while len(self.responses) > _MAX_RESPONSES:
            self.responses.popitem(last=False)

    def new_response_id(self) -> str:
        return "resp_" + secrets.token_hex(24)

    def stamp_body(self, a: Asked, req: RequestInfo, dialect: Dialect, r: Rendered, output_tokens: int) -> Rendered:
        """A whole answer with this lane's state: its response id, thinking block, signatures."""
        family = family_of(dialect.name)
        if r.status >= 400 or family not in ("responses", "anthropic", "gemini"):
            return r
        if family == "anthropic" and not (a.thinking and self.caps.reasoning):
            return r
        try:
            obj = json.loads(r.body)
        except ValueError:
            return r
        if family == "responses":
            obj["id"] = self.new_response_id()
            obj["previous_response_id"] = a.previous_response_id
            self.remember(obj["id"], self.context_tokens(req, a) + output_tokens, a)
        elif family == "anthropic":
            text = self.thinking_text(req)
            block = {"type": "thinking", "thinking": text, "signature": self.sign(text)}
            obj["content"] = [block, *obj.get("content", [])]
        else:
            if not (a.thinking and self.caps.reasoning):
                return r
            for cand in obj.get("candidates") or []:
                for part in (cand.get("content") or {}).get("parts") or []:
                    if isinstance(part, dict) and isinstance(part.get("functionCall"), dict):
                        part["thoughtSignature"] = self.sign(str(part["functionCall"].get("name") or ""))
        return Rendered(r.status, r.headers, json.dumps(obj).encode())

    def stamp_stream(
        self,
        a: Asked,
        req: RequestInfo,
        dialect: Dialect,
        encoder: Any,
        events: AsyncIterator[list[Event]],
        output_tokens: int,
    ) -> AsyncIterator[list[Event]]:
        """The stream with this lane's state (the encoder's id set before its first event)."""
        family = family_of(dialect.name)
        if family == "responses":
            encoder.id = self.new_response_id()
            self.remember(encoder.id, self.context_tokens(req, a) + output_tokens, a)
            return events
        if not (a.thinking and self.caps.reasoning):
            return events
        if family == "anthropic":
            return self._anthropic_thinking(req, events)
        if family == "gemini":
            return self._gemini_signatures(events)
        return events

    async def _anthropic_thinking(
        self, req: RequestInfo, events: AsyncIterator[list[Event]]
    ) -> AsyncIterator[list[Event]]:
        """A thinking block (index 0, signed by this lane) before the answer's blocks, which move
        up one index, as the Messages API streams them with thinking enabled."""
        text = self.thinking_text(req)

        def ev(obj: dict[str, Any]) -> Event:
            return Event(encode_event(json.dumps(obj, separators=(",", ":")), event=obj["type"]), EventKind.META)

        thinking = [
            ev(
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "thinking", "thinking": "", "signature": ""},
                }
            ),
            ev({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": text}}),
            ev(
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "signature_delta", "signature": self.sign(text)},
                }
            ),
            ev({"type": "content_block_stop", "index": 0}),
        ]
        first = True
        try:
            async for batch in events:
                out: list[Event] = []
                for e in batch:
                    if b"content_block_" in e.data[:40]:
                        e = Event(
                            _SHIFT_INDEX.sub(lambda m: b'"index":%d' % (int(m.group(1)) + 1), e.data, count=1),
                            e.kind,
                            e.text,
                            e.tokens,
                            e.finish,
                            e.usage,
                            e.tools,
                        )
                    out.append(e)
                    if first and e.data.startswith(b"event: message_start"):
                        out += thinking
                        first = False
                yield out
        finally:
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _gemini_signatures(self, events: AsyncIterator[list[Event]]) -> AsyncIterator[list[Event]]:
        """Each ``functionCall`` part carries a ``thoughtSignature`` signed by this lane."""
        try:
            async for batch in events:
                out = []
                for e in batch:
                    if b'"functionCall"' in e.data:
                        obj = json.loads(e.data.decode().removeprefix("data: ").strip())
                        for cand in obj.get("candidates") or []:
                            for part in (cand.get("content") or {}).get("parts") or []:
                                if isinstance(part.get("functionCall"), dict):
                                    part["thoughtSignature"] = self.sign(str(part["functionCall"].get("name") or ""))
                        data = encode_event(json.dumps(obj, separators=(",", ":"), ensure_ascii=False))
                        e = Event(data, e.kind, e.text, e.tokens, e.finish, e.usage, e.tools)
                    out.append(e)
                yield out
        finally:
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()


def link_peers(lanes: Iterable[Any]) -> None:
    """Let the simulated lanes of one drill see each other's prompt caches (only to tell what a
    failover lost: no lane ever reads another's cache)."""
    states = [getattr(getattr(lane, "upstream", None), "simulator", None) for lane in lanes]
    found = [s.lane for s in states if s is not None and isinstance(getattr(s, "lane", None), LaneState)]
    peers = {st.lane: st for st in found}
    for st in found:
        st.peers = peers
