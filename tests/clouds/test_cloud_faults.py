"""Each fault family on every cloud surface, as that provider's official client sees it.

A lane on the simulator carries one fault; the official client makes a whole and a streamed call
(stream faults: streamed only) and must raise its *real* exception class for that provider's
error, with the provider's status or error code: openai's ``RateLimitError``, botocore's modeled
``ThrottlingException``, botocore's ``EventStreamError`` from inside the stream iterator,
google-genai's ``ClientError`` / ``ServerError``, ollama's ``ResponseError`` ... Clients make one
attempt each (no SDK retries) so the journal holds exactly the attempts made.
"""

from __future__ import annotations

from typing import Any

import pytest

from harness.profile import profile_from_dict
from tests.conftest import expected_answer

from .clients import LANE, PROMPT, SURFACES, Seen, client, drive

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

AZURE = ("azure-chat", "azure-responses", "azure-v1")
OLLAMA = ("ollama-chat", "ollama-generate")


def expect(**by_surface: tuple[str, Any]) -> dict[str, tuple[str, Any]]:
    """``{surface: (exception class, status or error code)}``, ``azure`` and ``ollama`` expanded."""
    out: dict[str, tuple[str, Any]] = {}
    for key, value in by_surface.items():
        key = key.replace("_", "-")
        names = AZURE if key == "azure" else OLLAMA if key == "ollama" else (key,)
        out.update(dict.fromkeys(names, value))
    assert set(out) == set(SURFACES), set(SURFACES) ^ set(out)
    return out


#: (family, fault, streamed only, expectations)
CASES: list[tuple[str, dict[str, Any], bool, dict[str, tuple[str, Any]]]] = [
    (
        "rate-limit",
        {"fault": "rate_limit", "retry_after": 1},
        False,
        expect(
            azure=("RateLimitError", 429),
            openrouter=("RateLimitError", 429),
            ollama=("ResponseError", 429),
            bedrock_converse=("ThrottlingException", "ThrottlingException"),
            bedrock_invoke=("RateLimitError", 429),
            vertex_gemini=("ClientError", 429),
            vertex_anthropic=("RateLimitError", 429),
        ),
    ),
    (
        "overload",
        {"fault": "overloaded", "retry_after": 1},
        False,
        expect(
            azure=("InternalServerError", 503),
            openrouter=("InternalServerError", 502),
            ollama=("ResponseError", 503),
            bedrock_converse=("ServiceUnavailableException", "ServiceUnavailableException"),
            bedrock_invoke=("ServiceUnavailableError", 503),
            vertex_gemini=("ServerError", 503),
            vertex_anthropic=("OverloadedError", 529),
        ),
    ),
    (
        "server-error",
        {"fault": "server_error"},
        False,
        expect(
            azure=("InternalServerError", 500),
            openrouter=("InternalServerError", 500),
            ollama=("ResponseError", 500),
            bedrock_converse=("InternalServerException", "InternalServerException"),
            bedrock_invoke=("InternalServerError", 500),
            vertex_gemini=("ServerError", 500),
            vertex_anthropic=("InternalServerError", 500),
        ),
    ),
    (
        "stream-cut",
        {"fault": "stream_cut", "after_tokens": 4},
        True,
        expect(
            azure=("APIConnectionError", None),
            openrouter=("APIConnectionError", None),
            ollama=("RemoteProtocolError", None),
            bedrock_converse=("ProtocolError", None),
            bedrock_invoke=("RemoteProtocolError", None),
            vertex_gemini=("RemoteProtocolError", None),
            vertex_anthropic=("RemoteProtocolError", None),
        ),
    ),
    (
        "in-band-error",
        {"fault": "inband_error", "after_tokens": 3},
        True,
        expect(
            azure_chat=("APIError", None),
            # Responses reports it as a response.failed event: the SDK raises nothing
            azure_responses=("", "failed"),
            azure_v1=("", "failed"),
            openrouter=("APIError", None),
            ollama=("ResponseError", -1),
            bedrock_converse=("EventStreamError", "modelStreamErrorException"),
            bedrock_invoke=("APIStatusError", 200),
            vertex_gemini=("ServerError", 503),
            vertex_anthropic=("APIStatusError", 200),
        ),
    ),
    (
        "in-band-throttle",
        {"fault": "inband_error", "after_tokens": 3, "kind": "rate_limit"},
        True,
        expect(
            azure_chat=("APIError", None),
            azure_responses=("", "failed"),
            azure_v1=("", "failed"),
            openrouter=("APIError", None),
            ollama=("ResponseError", -1),
            bedrock_converse=("EventStreamError", "throttlingException"),
            bedrock_invoke=("APIStatusError", 200),
            vertex_gemini=("ClientError", 429),
            vertex_anthropic=("APIStatusError", 200),
        ),
    ),
    (
        "permanent-auth",
        {"fault": "auth_revoked"},
        False,
        expect(
            azure=("AuthenticationError", 401),
            openrouter=("AuthenticationError", 401),
            ollama=("ResponseError", 401),
            bedrock_converse=("ClientError", "UnrecognizedClientException"),
            bedrock_invoke=("PermissionDeniedError", 403),
            vertex_gemini=("ClientError", 401),
            vertex_anthropic=("AuthenticationError", 401),
        ),
    ),
    (
        "permanent-model-gone",
        {"fault": "model_gone"},
        False,
        expect(
            azure=("NotFoundError", 404),
            openrouter=("NotFoundError", 404),
            ollama=("ResponseError", 404),
            bedrock_converse=("ResourceNotFoundException", "ResourceNotFoundException"),
            bedrock_invoke=("NotFoundError", 404),
            vertex_gemini=("ClientError", 404),
            vertex_anthropic=("NotFoundError", 404),
        ),
    ),
    (
        "permanent-content-filter",
        {"fault": "content_filter"},
        False,
        expect(
            azure=("BadRequestError", 400),
            openrouter=("PermissionDeniedError", 403),
            ollama=("ResponseError", 400),
            bedrock_converse=("ValidationException", "ValidationException"),
            bedrock_invoke=("BadRequestError", 400),
            vertex_gemini=("ClientError", 400),
            vertex_anthropic=("BadRequestError", 400),
        ),
    ),
]


def code_of(exc: BaseException | None) -> Any:
    """The status or error code the client exposes on its exception."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):  # botocore: ClientError and EventStreamError
        return response["Error"]["Code"]
    for attr in ("status_code", "code"):
        value = getattr(exc, attr, None)
        if isinstance(value, int):
            return value
    return None


def _start(start_lanes, surface: str, fault: dict[str, Any]):
    profile = profile_from_dict(
        {
            "time_scale": 0.05,
            "lanes": {
                "x": {
                    "dialect": LANE[surface],
                    "simulator": {"answer_tokens": 12, "ttft": 0, "tokens_per_second": 2000},
                }
            },
            "faults": [{"lane": "x", **fault}],
        }
    )
    return start_lanes(profile)


def _check(seen: Seen, exc_name: str, code: Any) -> None:
    if exc_name == "":  # no exception: the fault is in the answer
        assert seen.exc is None, seen.exc
        assert seen.finish == code
        return
    assert seen.exc_name == exc_name, repr(seen.exc)
    assert code_of(seen.exc) == code, repr(seen.exc)


@pytest.mark.parametrize("surface", SURFACES)
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_fault_family_raises_the_clients_real_exception(start_lanes, case, surface):
    family, fault, streamed_only, expectations = case
    exc_name, code = expectations[surface]
    bg = _start(start_lanes, surface, fault)
    modes = (True,) if streamed_only else (False, True)
    c = client(surface, bg.urls["x"])
    for stream in modes:
        seen = drive(surface, bg.urls["x"], stream=stream, using=c)
        _check(seen, exc_name, code)
        if streamed_only:  # what arrived before the fault is the answer's beginning, never more
            answer = expected_answer(PROMPT, 12)
            assert answer.startswith(seen.text) and len(seen.text) < len(answer), seen.text
    assert bg.journal.wait_for(len(modes))
    attempts = bg.journal.attempts()
    assert len(attempts) == len(modes), [(a.status, a.end_reason) for a in attempts]
    for a in attempts:
        assert a.fault is not None and a.fault["name"] == fault["fault"]
        if family == "stream-cut":
            assert a.end_reason == "cut" and a.outcome == "unknown"
        elif family.startswith("in-band"):
            assert a.status == 200 and a.end_reason == "inband_error" and a.outcome == "error"
        else:
            assert a.status >= 400 and a.end_reason == "error_response" and a.outcome == "error"


def test_boto3_retries_a_throttle_before_the_stream_but_not_inside_it(start_lanes):
    """The trap the issue names: boto3's retry covers the HTTP ThrottlingException, while a
    throttlingException inside ConverseStream escapes the iterator after one attempt."""
    bg = _start(start_lanes, "bedrock-converse", {"fault": "rate_limit", "schedule": {"first": 2}})
    seen = drive("bedrock-converse", bg.urls["x"], stream=True, retries=2)
    assert seen.exc is None and seen.text == expected_answer(PROMPT, 12)
    assert bg.journal.wait_for(3, 30)
    assert [a.status for a in bg.journal.attempts()] == [429, 429, 200]

    bg = _start(start_lanes, "bedrock-converse", {"fault": "inband_error", "kind": "rate_limit", "after_tokens": 2})
    seen = drive("bedrock-converse", bg.urls["x"], stream=True, retries=2)
    assert seen.exc_name == "EventStreamError" and code_of(seen.exc) == "throttlingException"
    assert bg.journal.wait_for(1, 30)
    assert len(bg.journal.attempts()) == 1


def test_bedrock_model_not_ready_is_its_own_exception(start_lanes):
    bg = _start(start_lanes, "bedrock-converse", {"fault": "unavailable", "status": 429})
    seen = drive("bedrock-converse", bg.urls["x"], stream=False)
    assert seen.exc_name == "ModelNotReadyException" and code_of(seen.exc) == "ModelNotReadyException"


def test_vertex_quota_exhaustion_carries_retry_info_to_google_genai(start_lanes):
    bg = _start(start_lanes, "vertex-gemini", {"fault": "quota_exhausted", "retry_after": 600})
    seen = drive("vertex-gemini", bg.urls["x"], stream=False)
    assert seen.exc_name == "ClientError" and seen.exc.status == "RESOURCE_EXHAUSTED"
    details = seen.exc.details["error"]["details"]
    assert {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "30s"} in details  # scaled 0.05
    assert any(d["@type"].endswith("QuotaFailure") for d in details)


def test_azure_content_filter_400_carries_innererror(start_lanes):
    bg = _start(start_lanes, "azure-chat", {"fault": "content_filter"})
    seen = drive("azure-chat", bg.urls["x"], stream=False)
    assert seen.exc_name == "BadRequestError" and seen.exc.code == "content_filter"
    inner = seen.exc.body["innererror"]
    assert inner["code"] == "ResponsibleAIPolicyViolation"
    assert inner["content_filter_result"]["violence"] == {"filtered": True, "severity": "medium"}
