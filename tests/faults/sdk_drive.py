"""Drive one call through a lane with the real client of its dialect and report what it saw."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx
import openai

DIALECTS = ["openai-chat", "openai-responses", "anthropic", "gemini"]
PROMPT = "Tell me about the lane."


@dataclass
class Seen:
    """The client-visible result of one call."""

    exc: BaseException | None
    text: str
    finish: str | None
    elapsed: float
    status: int | None = None
    body: Any = None

    @property
    def exc_name(self) -> str | None:
        return None if self.exc is None else type(self.exc).__name__


def lane_dialect(dialect: str) -> str:
    """The lane dialect to declare for a client dialect (openai serves both OpenAI APIs)."""
    return "openai" if dialect.startswith("openai") else dialect


def drive(
    dialect: str, url: str, *, stream: bool = False, max_retries: int = 2, timeout: float = 10.0, headers=None
) -> Seen:
    t0 = time.monotonic()
    text, finish, exc, status, body = "", None, None, None, None
    try:
        if dialect == "openai-chat":
            c = openai.OpenAI(base_url=url + "/v1", api_key="sk-test", max_retries=max_retries, timeout=timeout)
            msgs = [{"role": "user", "content": PROMPT}]
            if stream:
                for ch in c.chat.completions.create(model="m", messages=msgs, stream=True, extra_headers=headers):
                    if ch.choices:
                        text += ch.choices[0].delta.content or ""
                        finish = ch.choices[0].finish_reason or finish
            else:
                r = c.chat.completions.create(model="m", messages=msgs, extra_headers=headers)
                text, finish = r.choices[0].message.content, r.choices[0].finish_reason
        elif dialect == "openai-responses":
            c = openai.OpenAI(base_url=url + "/v1", api_key="sk-test", max_retries=max_retries, timeout=timeout)
            if stream:
                for ev in c.responses.create(model="m", input=PROMPT, stream=True, extra_headers=headers):
                    if ev.type == "response.output_text.delta":
                        text += ev.delta
                    elif ev.type in ("response.completed", "response.incomplete"):
                        finish = ev.response.status
            else:
                r = c.responses.create(model="m", input=PROMPT, extra_headers=headers)
                text = r.output_text
                finish = r.status if r.status != "incomplete" else r.incomplete_details.reason
        elif dialect == "anthropic":
            c = anthropic.Anthropic(base_url=url, api_key="sk-ant-test", max_retries=max_retries, timeout=timeout)
            msgs = [{"role": "user", "content": PROMPT}]
            if stream:
                with c.messages.stream(
                    model="claude-opus-4-6", max_tokens=512, messages=msgs, extra_headers=headers
                ) as s:
                    for t in s.text_stream:
                        text += t
                    finish = s.get_final_message().stop_reason
            else:
                r = c.messages.create(model="claude-opus-4-6", max_tokens=512, messages=msgs, extra_headers=headers)
                text, finish = "".join(b.text for b in r.content if b.type == "text"), r.stop_reason
        elif dialect == "gemini" and stream:
            import json

            body_in = {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]}
            url_s = f"{url}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
            with httpx.stream("POST", url_s, json=body_in, timeout=timeout, headers=headers) as r:
                status = r.status_code
                for line in r.iter_lines():
                    if not line.startswith("data: "):
                        continue
                    chunk = json.loads(line[6:])
                    if "error" in chunk:
                        body = chunk
                        continue
                    cand = chunk["candidates"][0]
                    text += "".join(p.get("text", "") for p in (cand.get("content") or {}).get("parts", []))
                    finish = cand.get("finishReason") or finish
        elif dialect == "gemini":
            body_in = {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]}
            r = httpx.post(
                f"{url}/v1beta/models/gemini-2.5-flash:generateContent", json=body_in, timeout=timeout, headers=headers
            )
            status = r.status_code
            body = r.json() if "json" in r.headers.get("content-type", "") else r.text
            if status == 200:
                cand = body["candidates"][0]
                text = "".join(p.get("text", "") for p in cand["content"]["parts"])
                finish = cand.get("finishReason")
        else:
            raise ValueError(dialect)
    except Exception as e:  # the client-visible failure is the result under test
        exc = e
        status = getattr(e, "status_code", status)
        body = getattr(e, "body", body)
    return Seen(exc, text, finish, time.monotonic() - t0, status, body)
