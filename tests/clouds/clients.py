"""Drive one call through a cloud lane with that provider's official client, and say what it saw.

One *surface* per client and API: ``azure-chat`` (``openai.AzureOpenAI``, deployments path),
``azure-responses`` (``AzureOpenAI``, ``/openai/responses``), ``azure-v1`` (``openai.OpenAI`` on
``/openai/v1``), ``openrouter`` (``openai.OpenAI`` on ``/api/v1``), ``ollama-chat`` and
``ollama-generate`` (``ollama.Client``), ``bedrock-converse`` (boto3 ``bedrock-runtime``),
``bedrock-invoke`` (``anthropic.AnthropicBedrock``), ``vertex-gemini`` (``google-genai`` with
Vertex settings) and ``vertex-anthropic`` (``anthropic.AnthropicVertex``). No credential is
real and nothing leaves loopback.
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass
from typing import Any

import anthropic
import boto3
import ollama
import openai
from botocore.config import Config
from google import genai
from google.genai import types as genai_types
from google.oauth2.credentials import Credentials

SURFACES = [
    "azure-chat",
    "azure-responses",
    "azure-v1",
    "openrouter",
    "ollama-chat",
    "ollama-generate",
    "bedrock-converse",
    "bedrock-invoke",
    "vertex-gemini",
    "vertex-anthropic",
]
#: the lane dialect that serves each surface
LANE = {
    "azure-chat": "azure",
    "azure-responses": "azure",
    "azure-v1": "azure",
    "openrouter": "openrouter",
    "ollama-chat": "ollama",
    "ollama-generate": "ollama",
    "bedrock-converse": "bedrock",
    "bedrock-invoke": "bedrock",
    "vertex-gemini": "vertex",
    "vertex-anthropic": "vertex",
}
PROMPT = "Which cloud answered this?"
BEDROCK_MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
SECRET = "routechaos-secret-credential"
#: one TLS context for every client: each SDK would load the CA bundle again (~0.1-0.3 s a client)
TLS = ssl.create_default_context()


@dataclass
class Seen:
    """The client-visible result of one call."""

    exc: BaseException | None
    text: str
    finish: Any
    elapsed: float

    @property
    def exc_name(self) -> str | None:
        return None if self.exc is None else type(self.exc).__name__


def _azure(url: str, retries: int, timeout: float) -> openai.AzureOpenAI:
    return openai.AzureOpenAI(
        azure_endpoint=url,
        api_key=SECRET,
        api_version="2024-10-21",
        max_retries=retries,
        timeout=timeout,
        http_client=openai.DefaultHttpxClient(verify=TLS),
    )


def _openai_chat(c: openai.OpenAI, model: str, stream: bool) -> tuple[str, Any]:
    msgs = [{"role": "user", "content": PROMPT}]
    if not stream:
        r = c.chat.completions.create(model=model, messages=msgs)
        return r.choices[0].message.content or "", r.choices[0].finish_reason
    text, finish = "", None
    opts = {"include_usage": True}  # usage is only on the wire when asked for
    for ch in c.chat.completions.create(model=model, messages=msgs, stream=True, stream_options=opts):
        if ch.choices:
            text += ch.choices[0].delta.content or ""
            finish = ch.choices[0].finish_reason or finish
    return text, finish


def _openai_responses(c: openai.OpenAI, stream: bool) -> tuple[str, Any]:
    if not stream:
        r = c.responses.create(model="gpt-4o", input=PROMPT)
        return r.output_text, r.status
    text, finish = "", None
    for ev in c.responses.create(model="gpt-4o", input=PROMPT, stream=True):
        if ev.type == "response.output_text.delta":
            text += ev.delta
        elif ev.type in ("response.completed", "response.incomplete", "response.failed"):
            finish = ev.response.status
    return text, finish


def _bedrock(url: str, retries: int, timeout: float) -> Any:
    return boto3.client(
        "bedrock-runtime",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="AKIDROUTECHAOS",
        aws_secret_access_key=SECRET,
        aws_session_token=SECRET,
        config=Config(retries={"total_max_attempts": retries + 1, "mode": "standard"}, read_timeout=timeout),
    )


def _converse(c: Any, stream: bool) -> tuple[str, Any]:
    msgs = [{"role": "user", "content": [{"text": PROMPT}]}]
    if not stream:
        r = c.converse(modelId=BEDROCK_MODEL, messages=msgs)
        return r["output"]["message"]["content"][0]["text"], r["stopReason"]
    text, finish = "", None
    for ev in c.converse_stream(modelId=BEDROCK_MODEL, messages=msgs)["stream"]:
        if "contentBlockDelta" in ev:
            text += ev["contentBlockDelta"]["delta"].get("text", "")
        elif "messageStop" in ev:
            finish = ev["messageStop"]["stopReason"]
    return text, finish


def _anthropic_messages(c: Any, model: str, stream: bool) -> tuple[str, Any]:
    msgs = [{"role": "user", "content": PROMPT}]
    if not stream:
        r = c.messages.create(model=model, max_tokens=512, messages=msgs)
        return "".join(b.text for b in r.content if b.type == "text"), r.stop_reason
    with c.messages.stream(model=model, max_tokens=512, messages=msgs) as s:
        text = "".join(s.text_stream)
        return text, s.get_final_message().stop_reason


def _genai(url: str, retries: int, timeout: float) -> genai.Client:
    options = genai_types.HttpOptions(
        base_url=url, timeout=int(timeout * 1000), client_args={"verify": TLS}, async_client_args={"verify": TLS}
    )
    if retries:
        options.retry_options = genai_types.HttpRetryOptions(attempts=retries + 1, initial_delay=0.01, max_delay=0.05)
    return genai.Client(
        vertexai=True,
        project="routechaos",
        location="us-central1",
        credentials=Credentials(token=SECRET),
        http_options=options,
    )


def _vertex_gemini(c: genai.Client, stream: bool) -> tuple[str, Any]:
    if not stream:
        r = c.models.generate_content(model="gemini-2.5-flash", contents=PROMPT)
        return r.text or "", r.candidates[0].finish_reason
    text, finish = "", None
    for ch in c.models.generate_content_stream(model="gemini-2.5-flash", contents=PROMPT):
        text += ch.text or ""
        if ch.candidates and ch.candidates[0].finish_reason:
            finish = ch.candidates[0].finish_reason
    return text, finish


def _ollama(c: ollama.Client, surface: str, stream: bool) -> tuple[str, Any]:
    if surface == "ollama-chat":
        msgs = [{"role": "user", "content": PROMPT}]
        if not stream:
            r = c.chat(model="llama3.1", messages=msgs)
            return r.message.content or "", r.done_reason
        text, finish = "", None
        for ch in c.chat(model="llama3.1", messages=msgs, stream=True):
            text += ch.message.content or ""
            finish = ch.done_reason or finish
        return text, finish
    if not stream:
        g = c.generate(model="llama3.1", prompt=PROMPT)
        return g.response, g.done_reason
    text, finish = "", None
    for ch in c.generate(model="llama3.1", prompt=PROMPT, stream=True):
        text += ch.response
        finish = ch.done_reason or finish
    return text, finish


def client(surface: str, url: str, retries: int = 0, timeout: float = 30.0) -> Any:
    """The official client for ``surface`` pointed at the lane ``url``. Make one per lane and
    reuse it for that lane's calls (building one costs up to half a second), but never across
    lanes: a later lane may get the same port, and a pooled connection to the old one would
    fail the first request."""
    if surface in ("azure-chat", "azure-responses"):
        return _azure(url, retries, timeout)
    if surface == "azure-v1":
        base = url + "/openai/v1/"
    elif surface == "openrouter":
        base = url + "/api/v1"
    else:
        base = ""
    if base:
        http = openai.DefaultHttpxClient(verify=TLS)
        return openai.OpenAI(base_url=base, api_key=SECRET, max_retries=retries, timeout=timeout, http_client=http)
    if surface.startswith("ollama"):
        return ollama.Client(host=url, timeout=timeout, verify=TLS)
    if surface == "bedrock-converse":
        return _bedrock(url, retries, timeout)
    if surface == "bedrock-invoke":
        return anthropic.AnthropicBedrock(
            base_url=url,
            aws_region="us-east-1",
            aws_access_key="AKIDROUTECHAOS",
            aws_secret_key=SECRET,
            aws_session_token=SECRET,
            max_retries=retries,
            timeout=timeout,
            http_client=anthropic.DefaultHttpxClient(verify=TLS),
        )
    if surface == "vertex-gemini":
        return _genai(url, retries, timeout)
    if surface == "vertex-anthropic":
        return anthropic.AnthropicVertex(
            region="us-east5",
            project_id="routechaos",
            access_token=SECRET,
            base_url=url + "/v1",
            max_retries=retries,
            timeout=timeout,
            http_client=anthropic.DefaultHttpxClient(verify=TLS),
        )
    raise ValueError(surface)


def drive(surface: str, url: str, *, stream: bool, retries: int = 0, timeout: float = 30.0, using: Any = None) -> Seen:
    """One call on ``surface`` at lane ``url`` (with the client ``using``, or a new one);
    exceptions are caught and returned."""
    t0 = time.monotonic()
    text, finish, exc = "", None, None
    c = using if using is not None else client(surface, url, retries, timeout)
    try:
        if surface in ("azure-chat", "openrouter"):
            text, finish = _openai_chat(c, "openai/gpt-4o" if surface == "openrouter" else "gpt-4o", stream)
        elif surface in ("azure-responses", "azure-v1"):
            text, finish = _openai_responses(c, stream)
        elif surface.startswith("ollama"):
            text, finish = _ollama(c, surface, stream)
        elif surface == "bedrock-converse":
            text, finish = _converse(c, stream)
        elif surface == "bedrock-invoke":
            text, finish = _anthropic_messages(c, BEDROCK_MODEL, stream)
        elif surface == "vertex-gemini":
            text, finish = _vertex_gemini(c, stream)
        else:
            text, finish = _anthropic_messages(c, "claude-sonnet-4-5@20250929", stream)
    except Exception as e:  # the point: which class the real client raised
        exc = e
    return Seen(exc, text, finish, time.monotonic() - t0)
