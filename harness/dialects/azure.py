"""Azure OpenAI: Chat Completions and Responses as an Azure OpenAI resource serves them.

A variant of the OpenAI dialects (the journal names them ``openai-chat`` / ``openai-responses``,
and every fault that knows OpenAI applies), on Azure's paths:

- ``/openai/deployments/{deployment}/chat/completions?api-version=...`` (the model is the
  deployment; the body's ``model`` is optional), ``/openai/responses?api-version=...``, and the v1
  API's ``/openai/v1/chat/completions`` and ``/openai/v1/responses`` (no ``api-version``);
- the key in an ``api-key`` header (redacted like ``Authorization``);
- Azure's error bodies: ``code`` is a string (``"429"``, ``"DeploymentNotFound"``), a rate limit
  says "Please retry after N seconds" and comes with ``retry-after`` **and** ``retry-after-ms``
  (the openai SDK prefers the latter), and a content-filter 400 carries ``innererror`` with the
  ``ResponsibleAIPolicyViolation`` code and the per-category ``content_filter_result``;
- ``x-ratelimit-limit-*`` / ``x-ratelimit-remaining-*`` for requests and tokens, without the reset
  durations api.openai.com sends;
- content-filter results on every answer: ``prompt_filter_results`` (a stream's first chunk has
  only that, with empty ``choices``) and each choice's ``content_filter_results``; an answer the
  filter stopped ends with ``finish_reason: content_filter`` and the category that fired.
"""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from collections.abc import Mapping
from typing import Any

from .base import (
    BadRequest,
    Completion,
    ErrorKind,
    ErrorSpec,
    Event,
    EventKind,
    RateLimitSnapshot,
    Rendered,
    RequestInfo,
    StreamEncoder,
    edge_html,
    retry_headers,
)
from .openai_chat import (
    OpenAIChat,
    _ChatEncoder,
    calls_done,
    chat_finish,
    openai_error_fields,
    openai_ratelimit_headers,
)
from .openai_responses import OpenAIResponses

__all__ = ["AZURE_ERRORS", "AzureChat", "AzureResponses", "azure_error_object"]

_DEPLOYMENT = re.compile(r"/openai/deployments/(?P<deployment>[^/]+)/")
_SAFE = {"filtered": False, "severity": "safe"}
_NOT_DETECTED = {"filtered": False, "detected": False}
#: the category the filter "fires" on when an answer or a prompt is filtered
_FIRED = "violence"

#: kind -> (status, code, message template). ``{operation}`` and ``{delay}`` are filled in. Kinds
#: not listed keep OpenAI's body (Azure passes the model's own errors through).
AZURE_ERRORS: dict[ErrorKind, tuple[int, str, str]] = {
    ErrorKind.RATE_LIMIT: (
        429,
        "429",
        "Requests to the {operation} Operation under Azure OpenAI API version 2024-10-21 have exceeded token "
        "rate limit of your current OpenAI S0 pricing tier. Please retry after {delay} seconds. Please go here: "
        "https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit.",
    ),
    ErrorKind.SLOW_DOWN: (
        429,
        "429",
        "Requests to the {operation} Operation under Azure OpenAI API version 2024-10-21 have exceeded call "
        "rate limit of your current OpenAI S0 pricing tier. Please retry after {delay} seconds.",
    ),
    ErrorKind.QUEUE_FULL: (
        429,
        "429",
        "Requests to the {operation} Operation under Azure OpenAI API version 2024-10-21 have exceeded the "
        "concurrency limit of your deployment. Please retry after {delay} seconds.",
    ),
    ErrorKind.QUOTA_EXHAUSTED: (
        429,
        "insufficient_quota",
        "The token quota of your Azure OpenAI subscription for this deployment is exhausted. Please check your "
        "plan and billing details.",
    ),
    ErrorKind.OVERLOADED: (
        503,
        "ServiceUnavailable",
        "The service is temporarily unable to process your request. Please try again later.",
    ),
    ErrorKind.UNAVAILABLE: (
        503,
        "ServiceUnavailable",
        "The service is temporarily unable to process your request. Please try again later.",
    ),
    ErrorKind.AUTH: (
        401,
        "401",
        "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key "
        "for an active subscription and use a correct regional API endpoint for your resource.",
    ),
    ErrorKind.PERMISSION: (403, "PermissionDenied", "Principal does not have access to API/Operation."),
    ErrorKind.NOT_FOUND: (
        404,
        "DeploymentNotFound",
        "The API deployment for this resource does not exist. If you created the deployment within the last "
        "5 minutes, please wait a moment and try again.",
    ),
    ErrorKind.CONTENT_FILTER: (
        400,
        "content_filter",
        "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. "
        "Please modify your prompt and retry. To learn more about our content filtering policies please read "
        "our documentation: https://go.microsoft.com/fwlink/?linkid=2198766",
    ),
}
_RETRY_KINDS = frozenset({ErrorKind.RATE_LIMIT, ErrorKind.SLOW_DOWN, ErrorKind.QUEUE_FULL})


def content_filter_results(fired: bool = False) -> dict[str, Any]:
    """One choice's ``content_filter_results``: every category safe, or ``violence`` filtered."""
    out: dict[str, Any] = {
        "hate": _SAFE,
        "protected_material_code": _NOT_DETECTED,
        "protected_material_text": _NOT_DETECTED,
        "self_harm": _SAFE,
        "sexual": _SAFE,
        "violence": _SAFE,
    }
    if fired:
        out[_FIRED] = {"filtered": True, "severity": "medium"}
    return out


def prompt_filter_results(fired: bool = False) -> list[dict[str, Any]]:
    """The ``prompt_filter_results`` of a request (``jailbreak`` is checked on prompts only)."""
    results: dict[str, Any] = {
        "hate": _SAFE,
        "jailbreak": _NOT_DETECTED,
        "self_harm": _SAFE,
        "sexual": _SAFE,
        "violence": _SAFE,
    }
    if fired:
        results[_FIRED] = {"filtered": True, "severity": "medium"}
    return [{"prompt_index": 0, "content_filter_results": results}]


def azure_error_object(spec: ErrorSpec, req: RequestInfo | None) -> tuple[int, dict[str, Any]]:
    """Status and the ``error`` object for ``spec`` in Azure's words."""
    entry = AZURE_ERRORS.get(spec.kind)
    if entry is None:
        return openai_error_fields(spec, req.model if req else None)
    status, code, template = entry
    operation = "Responses_Create" if req is not None and req.operation == "responses" else "ChatCompletions_Create"
    delay = max(1, round(spec.retry_after)) if spec.retry_after is not None else 1
    err: dict[str, Any] = {"code": code, "message": spec.message or template.format(operation=operation, delay=delay)}
    if spec.kind is ErrorKind.CONTENT_FILTER:
        err.update(
            {
                "type": None,
                "param": "prompt",
                "status": 400,
                "innererror": {
                    "code": "ResponsibleAIPolicyViolation",
                    "content_filter_result": prompt_filter_results(True)[0]["content_filter_results"],
                },
            }
        )
    return spec.status or status, err


def azure_headers(req: RequestInfo | None = None) -> list[tuple[str, str]]:
    """The ids Azure puts on every answer (``x-request-id`` is what the openai SDK surfaces)."""
    rid = str(uuid.uuid4())
    out = [
        ("apim-request-id", rid),
        ("x-request-id", rid),
        ("x-ms-region", "East US"),
        ("x-ms-rai-invoked", "true"),
        ("x-content-type-options", "nosniff"),
        ("azureml-model-session", "d100-20250101000000"),
    ]
    if req is not None and req.model:
        out.append(("x-ms-deployment-name", req.model))
    return out


def azure_ratelimit_headers(snap: RateLimitSnapshot) -> list[tuple[str, str]]:
    """``x-ratelimit-limit-*`` and ``x-ratelimit-remaining-*``: Azure sends no reset durations."""
    return [(k, v) for k, v in openai_ratelimit_headers(snap) if not k.startswith("x-ratelimit-reset-")]


def render_azure_error(spec: ErrorSpec, req: RequestInfo | None) -> Rendered:
    """An Azure error response: its body, ``retry-after`` with ``retry-after-ms``, its ids."""
    status, err = azure_error_object(spec, req)
    retry_ms = spec.retry_after_ms or spec.kind in _RETRY_KINDS
    headers = azure_headers(req) + retry_headers(_with_ms(spec, retry_ms))
    if spec.ratelimit is not None:
        headers += azure_ratelimit_headers(spec.ratelimit)
    if spec.raw_body is not None:
        return Rendered(status, [("content-type", spec.content_type or "text/html"), *headers], spec.raw_body)
    if spec.kind in (ErrorKind.BAD_GATEWAY, ErrorKind.GATEWAY_TIMEOUT) and spec.message is None:
        return Rendered(status, [("content-type", "text/html"), *headers], edge_html(status))
    return Rendered(status, [("content-type", "application/json"), *headers], json.dumps({"error": err}).encode())


def _with_ms(spec: ErrorSpec, retry_ms: bool) -> ErrorSpec:
    return spec if retry_ms == spec.retry_after_ms else dataclasses.replace(spec, retry_after_ms=retry_ms)


def _check_api_version(path: str, query: Mapping[str, str]) -> None:
    """Azure's classic paths need ``api-version``; without it the resource answers 404."""
    if "/openai/v1/" not in path and "/openai/" in path and not query.get("api-version"):
        raise BadRequest("Resource not found", status=404)


class AzureChat(OpenAIChat):
    """Chat Completions on an Azure OpenAI deployment."""

    def __init__(self) -> None:
        super().__init__("openai")
        self.variant = "azure"

    def parse_request(
        self, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str], body: bytes
    ) -> RequestInfo:
        _check_api_version(path, query)
        m = _DEPLOYMENT.search(path)
        if m is not None and b'"model"' not in body:
            # the deployment names the model; the body may leave it out
            try:
                data = json.loads(body)
            except ValueError:
                data = None
            if isinstance(data, dict):
                data["model"] = m["deployment"]
                body = json.dumps(data).encode()
        return super().parse_request(method, path, query, headers, body)

    def _headers(self) -> list[tuple[str, str]]:
        return azure_headers()

    def render_completion(self, req: RequestInfo, completion: Completion) -> Rendered:
        r = super().render_completion(req, completion)
        body = json.loads(r.body)
        body["prompt_filter_results"] = prompt_filter_results()
        body["system_fingerprint"] = "fp_azure0001"
        body["choices"][0]["content_filter_results"] = content_filter_results(completion.finish == "content_filter")
        return Rendered(r.status, r.headers, json.dumps(body).encode())

    def render_error(self, spec: ErrorSpec, req: RequestInfo | None = None) -> Rendered:
        return render_azure_error(spec, req)

    def ratelimit_headers(self, snap: RateLimitSnapshot, now: Any = None) -> list[tuple[str, str]]:
        return azure_ratelimit_headers(snap)

    def stream_encoder(self, req: RequestInfo) -> StreamEncoder:
        return _AzureChatEncoder(req)


class _AzureChatEncoder(_ChatEncoder):
    """OpenAI's chunks, after a first chunk that carries only the prompt's filter results, with
    the answer's filter results on the finish chunk; in-band errors in Azure's words."""

    def start(self, tool_calls: bool = False) -> list[Event]:
        first: dict[str, Any] = {"choices": [], "created": 0, "id": "", "model": "", "object": ""}
        first["prompt_filter_results"] = prompt_filter_results()
        data = b"data: " + json.dumps(first, separators=(",", ":")).encode() + b"\n\n"
        return [Event(data, EventKind.META), *super().start(tool_calls)]

    def finish(self, completion: Completion) -> list[Event]:
        fired = completion.finish == "content_filter"
        reason = "content_filter" if fired else chat_finish(self.req, completion)
        fin = [
            {
                "index": 0,
                "delta": {},
                "logprobs": None,
                "finish_reason": reason,
                "content_filter_results": content_filter_results(fired),
            }
        ]
        out = [Event(self._chunk(fin), EventKind.FINISH, tools=calls_done(completion, reason))]
        if self.req.include_usage:
            out.append(Event(self._chunk([], _chat_usage(completion)), EventKind.FINISH))
        return out + self.terminator()

    def error(self, spec: ErrorSpec) -> list[Event]:
        _, err = azure_error_object(spec, self.req)
        return [Event(b"data: " + json.dumps({"error": err}).encode() + b"\n\n", EventKind.ERROR)]


def _chat_usage(completion: Completion) -> dict[str, Any]:
    u = completion.usage
    out: dict[str, Any] = {
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.total_tokens,
    }
    if u.cached_input_tokens:
        out["prompt_tokens_details"] = {"cached_tokens": u.cached_input_tokens, "audio_tokens": 0}
    return out


class AzureResponses(OpenAIResponses):
    """The Responses API on an Azure OpenAI resource (``/openai/responses`` or the v1 path)."""

    variant = "azure"

    def parse_request(
        self, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str], body: bytes
    ) -> RequestInfo:
        _check_api_version(path, query)
        return super().parse_request(method, path, query, headers, body)

    def render_completion(self, req: RequestInfo, completion: Completion) -> Rendered:
        r = super().render_completion(req, completion)
        return Rendered(r.status, _swap_ids(r.headers, req), r.body)

    def render_error(self, spec: ErrorSpec, req: RequestInfo | None = None) -> Rendered:
        return render_azure_error(spec, req)

    def ratelimit_headers(self, snap: RateLimitSnapshot, now: Any = None) -> list[tuple[str, str]]:
        return azure_ratelimit_headers(snap)

    def stream_headers(self, req: RequestInfo) -> list[tuple[str, str]]:
        return _swap_ids(super().stream_headers(req), req)


def _swap_ids(headers: list[tuple[str, str]], req: RequestInfo) -> list[tuple[str, str]]:
    """OpenAI's ids and organisation headers replaced by Azure's."""
    keep = [(k, v) for k, v in headers if not (k.lower().startswith("openai-") or k.lower() == "x-request-id")]
    return keep + azure_headers(req)
