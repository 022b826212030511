"""Drive one streamed request through a lane with each real client, and report what it saw.

The stream-fault tests assert what a *client* observes (text so far, the exception it raised,
when the first token came), so every dialect gets one small driver built on the client an agent
would really use: the ``openai`` SDK for Chat Completions and Responses, the ``anthropic`` SDK for
Messages, and plain ``httpx`` with an SSE decoder for Gemini (no Gemini SDK is installed).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx
import openai

from harness.canonical import canonical_text, fingerprint
from harness.lanes import BackgroundLanes, LaneSet
from harness.profile import profile_from_dict
from harness.sse import SSEDecoder

#: the four client surfaces under test
DIALECTS = ("chat", "responses", "anthropic", "gemini")
LANE_DIALECT = {"chat": "openai", "responses": "openai", "anthropic": "anthropic", "gemini": "gemini"}
ANSWER_TOKENS = 12
#: fast and small; the simulator groups tokens into events, so faults must split events at tokens
SIM = {"answer_tokens": ANSWER_TOKENS, "tokens_per_second": 2000, "ttft": 0.0}
PROMPT = "Tell me about the lane."


def expected(prompt: str = PROMPT, tokens: int = ANSWER_TOKENS) -> str:
    """The simulator's canonical answer (or its first ``tokens`` tokens)."""
    return canonical_text(fingerprint("", [("user", prompt)]), tokens)


def start(dialect: str, fault: dict[str, Any] | None, *, time_scale: float = 0.1, **sim: Any) -> BackgroundLanes:
    """One lane named ``lane`` on the simulator, with ``fault`` (a profile fault entry) on it."""
    profile = profile_from_dict(
        {
            "time_scale": time_scale,
            "lanes": {"lane": {"dialect": LANE_DIALECT[dialect], "simulator": {**SIM, **sim}}},
            "faults": [{**fault, "lane": "lane"}] if fault else [],
        }
    )
    return BackgroundLanes(LaneSet(profile)).start()


@dataclass
class Seen:
    """What one client observed of one streamed answer."""

    text: str = ""
    exc: BaseException | None = None
    finish: str | None = None  # finish_reason / stop_reason / terminal event type / finishReason
    events: list[str] = field(default_factory=list)
    t_first: float | None = None  # seconds from the request to the first text
    elapsed: float = 0.0
    t_marks: list[float] = field(default_factory=list)  # arrival time of each text piece

    def got(self, text: str, t0: float) -> None:
        if not text:
            return
        now = time.monotonic() - t0
        if self.t_first is None:
            self.t_first = now
        self.t_marks.append(now)
        self.text += text


def _chat(url: str, prompt: str, timeout: float | None, seen: Seen, t0: float) -> None:
    client = openai.OpenAI(base_url=url + "/v1", api_key="sk-test", max_retries=0, timeout=timeout or 30.0)
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}], stream=True
    )
    for chunk in stream:
        seen.events.append("chunk")
        if chunk.choices:
            seen.got(chunk.choices[0].delta.content or "", t0)
            seen.finish = chunk.choices[0].finish_reason or seen.finish


def _responses(url: str, prompt: str, timeout: float | None, seen: Seen, t0: float) -> None:
    client = openai.OpenAI(base_url=url + "/v1", api_key="sk-test", max_retries=0, timeout=timeout or 30.0)
    for ev in client.responses.create(model="gpt-4o-mini", input=prompt, stream=True):
        seen.events.append(ev.type)
        if ev.type == "response.output_text.delta":
            seen.got(ev.delta, t0)
        elif ev.type in ("response.completed", "response.incomplete", "response.failed"):
            seen.finish = ev.type


def _anthropic(url: str, prompt: str, timeout: float | None, seen: Seen, t0: float) -> None:
    client = anthropic.Anthropic(base_url=url, api_key="sk-test", max_retries=0, timeout=timeout or 30.0)
    stream = client.messages.create(
        model="claude-opus-4-6", max_tokens=1024, messages=[{"role": "user", "content": prompt}], stream=True
    )
    for ev in stream:
        seen.events.append(ev.type)
        if ev.type == "content_block_delta" and ev.delta.type == "text_delta":
            seen.got(ev.delta.text, t0)
        elif ev.type == "message_delta":
            seen.finish = ev.delta.stop_reason


def _gemini(url: str, prompt: str, timeout: float | None, seen: Seen, t0: float) -> None:
    """What a Gemini SSE client does: decode events on bytes, parse each ``data:`` as JSON."""
    body = {"contents": [{"role": "user", "parts": [{"text": prompt}]}]}
    path = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    with httpx.stream("POST", url + path, json=body, timeout=timeout or 30.0) as r:
        dec = SSEDecoder()
        for raw in r.iter_bytes():
            for ev in dec.feed(raw):
                if not ev.data:
                    seen.events.append("comment")
                    continue
                obj = json.loads(ev.data)
                if "error" in obj:
                    seen.events.append("error")
                    seen.finish = "error"
                    raise GeminiStreamError(obj["error"])
                seen.events.append("chunk")
                cand = (obj.get("candidates") or [{}])[0]
                seen.got("".join(p.get("text", "") for p in (cand.get("content") or {}).get("parts", [])), t0)
                seen.finish = cand.get("finishReason") or seen.finish


class GeminiStreamError(Exception):
    """The in-band ``{"error": ...}`` chunk of a Gemini stream, as a client would raise it."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("message"))
        self.error = error


_DRIVERS: dict[str, Callable[[str, str, float | None, Seen, float], None]] = {
    "chat": _chat,
    "responses": _responses,
    "anthropic": _anthropic,
    "gemini": _gemini,
}


def drive(dialect: str, url: str, prompt: str = PROMPT, *, timeout: float | None = None) -> Seen:
    """Stream one answer with ``dialect``'s client; never raises (the exception is in ``exc``)."""
    seen = Seen()
    t0 = time.monotonic()
    try:
        _DRIVERS[dialect](url, prompt, timeout, seen, t0)
    except Exception as exc:  # the test asserts the class
        seen.exc = exc
    seen.elapsed = time.monotonic() - t0
    return seen


def utf8_prompt(tokens: int = ANSWER_TOKENS) -> str:
    """A prompt whose canonical answer contains ``café`` or ``naïve`` (deterministic search)."""
    for i in range(500):
        prompt = f"Question number {i}?"
        if any(w in expected(prompt, tokens) for w in ("café", "naïve")):
            return prompt
    raise AssertionError("no prompt with a multi-byte word in 500 tries")


def chain(exc: BaseException | None) -> Iterator[BaseException]:
    """``exc`` and its causes/contexts, to find the transport error a SDK wrapped."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__
