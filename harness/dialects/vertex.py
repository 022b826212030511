"""Google Vertex AI: Gemini and Claude behind ``{region}-aiplatform.googleapis.com``.

Two variants, both on ``/v1[beta1]/projects/{project}/locations/{location}/publishers/...``:

- **Gemini** (``publishers/google/models/{m}:generateContent`` / ``:streamGenerateContent?alt=sse``)
  is the Gemini dialect with Vertex's errors: a 429 is ``RESOURCE_EXHAUSTED`` "Resource
  exhausted. Please try again later." (shared capacity, no ``QuotaFailure`` detail) or "Quota
  exceeded for aiplatform.googleapis.com/..." (a project's per-minute quota, with one), a 404
  names the publisher model's full resource path, and a delay, when there is one, is a
  ``RetryInfo`` detail (Vertex sends no ``Retry-After``);
- **Claude** (``publishers/anthropic/models/{m}:rawPredict`` / ``:streamRawPredict``) is the
  Messages API with the model in the path and ``anthropic_version: "vertex-2023-10-16"`` in the
  body; its answers and streams are Anthropic's, and so are the model's own errors (529
  ``overloaded_error``, 400 ``invalid_request_error``), while what Google's front end decides
  (quota, availability, credentials, a model that does not exist) comes in Google's
  ``{"error": {"code", "message", "status"}}`` shape. The anthropic SDK picks its exception
  class by status either way.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from typing import Any

from .anthropic import AnthropicMessages
from .base import (
    BadRequest,
    ErrorKind,
    ErrorSpec,
    Rendered,
    RequestInfo,
    json_loads_object,
    retry_headers,
)
from .gemini import Gemini, gemini_error_object

__all__ = ["VertexAnthropic", "VertexGemini", "vertex_error_object"]

_ANTHROPIC_PATH = re.compile(
    r"^/v1[a-z0-9]*/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/publishers/anthropic/models/"
    r"(?P<model>[^/:]+):(?P<method>rawPredict|streamRawPredict)$"
)
VERTEX_ANTHROPIC_VERSION = "vertex-2023-10-16"
_HELP_429 = "https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429"

#: kind -> (HTTP status, google.rpc status, message template); other kinds are Gemini's. ``{model}``
#: and ``{metric}`` are filled in.
_VERTEX_ERRORS: dict[ErrorKind, tuple[int, str, str]] = {
    ErrorKind.RATE_LIMIT: (
        429,
        "RESOURCE_EXHAUSTED",
        f"Resource exhausted. Please try again later. Please refer to {_HELP_429} for more details.",
    ),
    ErrorKind.SLOW_DOWN: (
        429,
        "RESOURCE_EXHAUSTED",
        f"Resource exhausted. Please try again later. Please refer to {_HELP_429} for more details.",
    ),
    ErrorKind.QUEUE_FULL: (
        429,
        "RESOURCE_EXHAUSTED",
        f"Resource exhausted. Please try again later. Please refer to {_HELP_429} for more details.",
    ),
    ErrorKind.QUOTA_EXHAUSTED: (
        429,
        "RESOURCE_EXHAUSTED",
        "Quota exceeded for aiplatform.googleapis.com/{metric} with base model: {model}. Please submit a quota "
        "increase request. https://cloud.google.com/vertex-ai/docs/generative-ai/quotas-genai.",
    ),
    ErrorKind.OVERLOADED: (503, "UNAVAILABLE", "The service is currently unavailable."),
    ErrorKind.UNAVAILABLE: (503, "UNAVAILABLE", "The service is currently unavailable."),
    ErrorKind.AUTH: (
        401,
        "UNAUTHENTICATED",
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other "
        "valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
    ),
    ErrorKind.PERMISSION: (
        403,
        "PERMISSION_DENIED",
        "Permission 'aiplatform.endpoints.predict' denied on resource (or it may not exist).",
    ),
    ErrorKind.NOT_FOUND: (
        404,
        "NOT_FOUND",
        "Publisher Model `projects/routechaos/locations/us-central1/publishers/{publisher}/models/{model}` "
        "was not found or your project does not have access to it.",
    ),
}
#: the front end's decisions on a Claude lane; everything else is the model's (Anthropic's shape)
_GOOGLE_KINDS_FOR_CLAUDE = frozenset(
    {
        ErrorKind.RATE_LIMIT,
        ErrorKind.SLOW_DOWN,
        ErrorKind.QUOTA_EXHAUSTED,
        ErrorKind.SPEND_LIMIT,
        ErrorKind.UNAVAILABLE,
        ErrorKind.AUTH,
        ErrorKind.PERMISSION,
        ErrorKind.NOT_FOUND,
    }
)


def vertex_error_object(spec: ErrorSpec, req: RequestInfo | None, publisher: str = "google") -> tuple[int, dict]:
    """Status and the google.rpc.Status object as Vertex AI writes it."""
    entry = _VERTEX_ERRORS.get(spec.kind)
    if entry is None:
        return gemini_error_object(spec, req)
    status, rpc_status, template = entry
    model = (req.model if req else None) or ("gemini-2.5-flash" if publisher == "google" else "claude-sonnet-4-5")
    metric = (
        "generate_content_requests_per_minute_per_project_per_base_model"
        if publisher == "google"
        else "online_prediction_requests_per_base_model"
    )
    message = spec.message or template.format(model=model, metric=metric, publisher=publisher)
    err: dict[str, Any] = {"code": spec.status or status, "message": message, "status": rpc_status}
    details: list[dict[str, Any]] = []
    if spec.kind is ErrorKind.QUOTA_EXHAUSTED:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [{"subject": f"aiplatform.googleapis.com/{metric}", "description": message}],
            }
        )
    if spec.retry_after is not None:
        details.append(
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{max(0, int(spec.retry_after))}s"}
        )
    if details:
        err["details"] = details
    return spec.status or status, err


def _google_error(spec: ErrorSpec, req: RequestInfo | None, publisher: str) -> Rendered:
    status, err = vertex_error_object(spec, req, publisher)
    headers = retry_headers(dataclasses.replace(spec, retry_after=None))  # the delay is in RetryInfo
    if spec.raw_body is not None:
        return Rendered(status, [("content-type", spec.content_type or "text/html"), *headers], spec.raw_body)
    return Rendered(
        status,
        [("content-type", "application/json; charset=UTF-8"), ("x-content-type-options", "nosniff"), *headers],
        json.dumps({"error": err}).encode(),
    )


class VertexGemini(Gemini):
    """Gemini on Vertex AI's publisher-model paths."""

    variant = "vertex"

    def matches(self, method: str, path: str) -> bool:
        return "/publishers/google/" in path and super().matches(method, path)

    def render_error(self, spec: ErrorSpec, req: RequestInfo | None = None) -> Rendered:
        if spec.kind in _VERTEX_ERRORS or spec.raw_body is not None:
            return _google_error(spec, req, "google")
        return super().render_error(spec, req)


class VertexAnthropic(AnthropicMessages):
    """Claude on Vertex AI: ``rawPredict`` / ``streamRawPredict``."""

    variant = "vertex"

    def matches(self, method: str, path: str) -> bool:
        return _ANTHROPIC_PATH.match(path) is not None

    def parse_request(
        self, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str], body: bytes
    ) -> RequestInfo:
        m = _ANTHROPIC_PATH.match(path)
        if m is None:
            raise BadRequest(f"{path} is not a Vertex AI rawPredict path.", status=404)
        data = json_loads_object(body)
        if "anthropic_version" not in data:
            raise BadRequest("anthropic_version: Field required")
        data["model"] = m["model"]
        info = super().parse_request(method, "/v1/messages", query, headers, json.dumps(data).encode())
        return dataclasses.replace(info, stream=m["method"] == "streamRawPredict")

    def render_error(self, spec: ErrorSpec, req: RequestInfo | None = None) -> Rendered:
        if spec.kind in _GOOGLE_KINDS_FOR_CLAUDE:
            return _google_error(spec, req, "anthropic")
        return super().render_error(spec, req)
