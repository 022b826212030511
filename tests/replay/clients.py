"""One call through a lane with a real SDK, its body bytes kept by a :class:`Tap`."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2
import openai
from google import genai
from google.genai import types as genai_types

from .tap import Tap

PROMPT = "What did the provider really say?"
#: surface -> the lane dialect serving it
SURFACES = {"openai-chat": "openai", "openai-responses": "openai", "anthropic": "anthropic", "gemini": "gemini"}
SECRET = "sk-proj-routechaosSECRETvalue0123456789"


def drive(surface: str, url: str, tap: Tap, *, stream: bool, retries: int = 0, prompt: str = PROMPT) -> str:
    """The answer text the SDK gives for one call (exceptions propagate)."""
    if surface == "openai-chat":
        c = openai.OpenAI(base_url=url + "/v1", api_key=SECRET, max_retries=retries, http_client=tap.client())
        msgs: Any = [{"role": "user", "content": prompt}]
        if stream:
            chunks = c.chat.completions.create(model="gpt-4o-mini", messages=msgs, stream=True)
            return "".join(x.choices[0].delta.content or "" for x in chunks if x.choices)
        return c.chat.completions.create(model="gpt-4o-mini", messages=msgs).choices[0].message.content or ""
    if surface == "openai-responses":
        c = openai.OpenAI(base_url=url + "/v1", api_key=SECRET, max_retries=retries, http_client=tap.client())
        if stream:
            text = ""
            with c.responses.stream(model="gpt-4o-mini", input=prompt) as events:
                for ev in events:
                    if ev.type == "response.output_text.delta":
                        text += ev.delta
            return text
        return c.responses.create(model="gpt-4o-mini", input=prompt).output_text
    if surface == "anthropic":
        a = anthropic.Anthropic(base_url=url, api_key=SECRET, max_retries=retries, http_client=tap.client(httpx2))
        msgs = [{"role": "user", "content": prompt}]
        if stream:
            with a.messages.stream(model="claude-sonnet-4-5", max_tokens=256, messages=msgs) as s:
                return "".join(s.text_stream)
        m = a.messages.create(model="claude-sonnet-4-5", max_tokens=256, messages=msgs)
        return "".join(b.text for b in m.content if b.type == "text")
    if surface == "gemini":
        opts = genai_types.HttpOptions(
            base_url=url,
            client_args={"transport": tap.transport()},
            retry_options=genai_types.HttpRetryOptions(attempts=retries + 1),
        )
        g = genai.Client(api_key="AIza" + "S" * 35, http_options=opts)
        if stream:
            chunks = g.models.generate_content_stream(model="gemini-2.5-flash", contents=prompt)
            return "".join(ch.text or "" for ch in chunks)
        return g.models.generate_content(model="gemini-2.5-flash", contents=prompt).text or ""
    raise ValueError(surface)
