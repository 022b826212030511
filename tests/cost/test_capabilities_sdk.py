"""Lane capabilities through the official SDKs: a context window, features a lane lacks, and
state one lane minted that another rejects, each as the provider's own exception."""

from __future__ import annotations

import anthropic
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as gtypes

from harness.capabilities import Capabilities, rejection_reason
from harness.journal import Journal
from harness.profile import LaneSpec, Profile
from tests.conftest import FAST

LONG = "word " * 400  # about 500 tokens


def _lanes(start_lanes, dialect: str, **caps):
    """Two simulated lanes of one dialect: ``premium`` (everything) and ``fallback`` (``caps``)."""
    profile = Profile(
        name="caps",
        lanes={
            "premium": LaneSpec("premium", dialect, simulator=FAST),
            "fallback": LaneSpec("fallback", dialect, simulator=FAST, capabilities=Capabilities(**caps)),
        },
    )
    return start_lanes(profile, Journal())


def _last_error(bg, lane):
    assert bg.journal.wait_for(1)
    return bg.journal.attempts(lane)[-1].error


# -- context window ----------------------------------------------------------------------------
def test_openai_chat_context_length(start_lanes):
    bg = _lanes(start_lanes, "openai", max_context_tokens=100)
    client = openai.OpenAI(base_url=bg.urls["fallback"] + "/v1", api_key="sk-x", max_retries=0)
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": LONG}])
    err = exc.value.body
    assert err["code"] == "context_length_exceeded" and err["param"] == "messages"
    assert err["message"].startswith("This model's maximum context length is 100 tokens. However, your messages")
    assert rejection_reason(_last_error(bg, "fallback")) == "context_length"
    ok = openai.OpenAI(base_url=bg.urls["premium"] + "/v1", api_key="sk-x", max_retries=0)
    assert ok.chat.completions.create(model="m", messages=[{"role": "user", "content": LONG}]).choices


def test_anthropic_context_length(start_lanes):
    bg = _lanes(start_lanes, "anthropic", max_context_tokens=100)
    client = anthropic.Anthropic(base_url=bg.urls["fallback"], api_key="sk-x", max_retries=0)
    with pytest.raises(anthropic.BadRequestError) as exc:
        client.messages.create(model="m", max_tokens=50, messages=[{"role": "user", "content": LONG}])
    assert exc.value.type == "invalid_request_error"
    assert "prompt is too long:" in str(exc.value) and "> 100 maximum" in str(exc.value)


def test_gemini_context_length(start_lanes):
    bg = _lanes(start_lanes, "gemini", max_context_tokens=100)
    client = genai.Client(api_key="k", http_options=gtypes.HttpOptions(base_url=bg.urls["fallback"]))
    with pytest.raises(genai_errors.ClientError) as exc:
        client.models.generate_content(model="gemini-2.5-flash", contents=LONG)
    assert exc.value.code == 400 and exc.value.status == "INVALID_ARGUMENT"
    assert "exceeds the maximum number of tokens allowed (100)" in exc.value.message


def test_responses_context_counts_the_stored_conversation(start_lanes):
    """A ``previous_response_id`` brings its conversation along: it counts against the window."""
    bg = _lanes(start_lanes, "openai-responses", max_context_tokens=520)
    client = openai.OpenAI(base_url=bg.urls["fallback"] + "/v1", api_key="sk-x", max_retries=0)
    first = client.responses.create(model="m", input=LONG)
    with pytest.raises(openai.BadRequestError) as exc:
        client.responses.create(model="m", input="and then? " * 10, previous_response_id=first.id)
    assert exc.value.body["code"] == "context_length_exceeded" and exc.value.body["param"] == "input"


# -- features ------------------------------------------------------------------------------------
def test_openai_unsupported_parameters(start_lanes):
    bg = _lanes(start_lanes, "openai", parallel_tool_calls=False, structured_output=False, reasoning=False)
    client = openai.OpenAI(base_url=bg.urls["fallback"] + "/v1", api_key="sk-x", max_retries=0)
    msgs = [{"role": "user", "content": "hi"}]
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(model="m", messages=msgs, tools=[tool], parallel_tool_calls=True)
    assert exc.value.body == {
        "message": "Unsupported parameter: 'parallel_tool_calls' is not supported with this model.",
        "type": "invalid_request_error",
        "param": "parallel_tool_calls",
        "code": "unsupported_parameter",
    }
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(model="m", messages=msgs, response_format={"type": "json_object"})
    assert "'response_format' of type 'json_object' is not supported" in exc.value.body["message"]
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(model="m", messages=msgs, reasoning_effort="high")
    assert exc.value.body["param"] == "reasoning_effort"
    # what it does support still works
    assert client.chat.completions.create(model="m", messages=msgs, tools=[tool]).choices


def test_anthropic_without_thinking_or_tools(start_lanes):
    bg = _lanes(start_lanes, "anthropic", reasoning=False, tools=False)
    client = anthropic.Anthropic(base_url=bg.urls["fallback"], api_key="sk-x", max_retries=0)
    with pytest.raises(anthropic.BadRequestError, match="thinking: Extra inputs are not permitted"):
        client.messages.create(
            model="m",
            max_tokens=2000,
            thinking={"type": "enabled", "budget_tokens": 1024},
            messages=[{"role": "user", "content": "hi"}],
        )
    with pytest.raises(anthropic.BadRequestError, match="tools: Extra inputs are not permitted"):
        client.messages.create(
            model="m",
            max_tokens=100,
            tools=[{"name": "f", "input_schema": {"type": "object"}}],
            messages=[{"role": "user", "content": "hi"}],
        )


def test_gemini_without_tools(start_lanes):
    bg = _lanes(start_lanes, "gemini", tools=False)
    client = genai.Client(api_key="k", http_options=gtypes.HttpOptions(base_url=bg.urls["fallback"]))
    fn = gtypes.FunctionDeclaration(name="f", parameters=gtypes.Schema(type="OBJECT", properties={}))
    with pytest.raises(genai_errors.ClientError, match="Function calling is not enabled for models/gemini-x"):
        client.models.generate_content(
            model="gemini-x",
            contents="hi",
            config=gtypes.GenerateContentConfig(tools=[gtypes.Tool(function_declarations=[fn])]),
        )


# -- lane-bound state ------------------------------------------------------------------------------
@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_thinking_signature_is_lane_bound(start_lanes, stream):
    """The premium lane's signed thinking block goes back to it fine, and is rejected by the
    fallback (and a block signed by no lane by both)."""
    bg = _lanes(start_lanes, "anthropic")
    premium = anthropic.Anthropic(base_url=bg.urls["premium"], api_key="sk-x", max_retries=0)
    fallback = anthropic.Anthropic(base_url=bg.urls["fallback"], api_key="sk-x", max_retries=0)
    kw = {"model": "claude-x", "max_tokens": 2000, "thinking": {"type": "enabled", "budget_tokens": 1024}}
    first_turn = [{"role": "user", "content": "plan the trip"}]
    if stream:
        with premium.messages.stream(messages=first_turn, **kw) as s:
            msg = s.get_final_message()
    else:
        msg = premium.messages.create(messages=first_turn, **kw)
    assert [b.type for b in msg.content] == ["thinking", "text"]
    assert msg.content[0].signature and msg.content[1].text
    history = [*first_turn, {"role": "assistant", "content": msg.content}, {"role": "user", "content": "go on"}]
    again = premium.messages.create(messages=history, **kw)  # its own block: accepted
    assert again.content[-1].type == "text"
    with pytest.raises(anthropic.BadRequestError) as exc:
        fallback.messages.create(messages=history, **kw)
    assert exc.value.body["error"] == {
        "type": "invalid_request_error",
        "message": "messages.1.content.0: Invalid `signature` in `thinking` block",
    }
    forged = [
        *first_turn,
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "x", "signature": "c2lnbmVkIGJ5IG5vIGxhbmU="},
                {"type": "text", "text": "y"},
            ],
        },
        {"role": "user", "content": "go on"},
    ]
    with pytest.raises(anthropic.BadRequestError, match="Invalid `signature`"):
        premium.messages.create(messages=forged, **kw)
    # the fallback takes the conversation once the foreign thinking is dropped
    dropped = [*first_turn, {"role": "assistant", "content": [msg.content[1]]}, {"role": "user", "content": "go on"}]
    assert fallback.messages.create(messages=dropped, **kw).content[0].type == "thinking"


@pytest.mark.parametrize("stream", [False, True])
def test_previous_response_id_is_lane_bound(start_lanes, stream):
    bg = _lanes(start_lanes, "openai-responses")
    premium = openai.OpenAI(base_url=bg.urls["premium"] + "/v1", api_key="sk-x", max_retries=0)
    fallback = openai.OpenAI(base_url=bg.urls["fallback"] + "/v1", api_key="sk-x", max_retries=0)
    if stream:
        with premium.responses.stream(model="m", input="hello") as s:
            first = s.get_final_response()
    else:
        first = premium.responses.create(model="m", input="hello")
    assert first.id.startswith("resp_")
    assert premium.responses.create(model="m", input="more", previous_response_id=first.id).output_text
    with pytest.raises(openai.BadRequestError) as exc:
        fallback.responses.create(model="m", input="more", previous_response_id=first.id)
    assert exc.value.body == {
        "message": f"Previous response with id '{first.id}' not found.",
        "type": "invalid_request_error",
        "param": "previous_response_id",
        "code": "previous_response_not_found",
    }
    with pytest.raises(openai.BadRequestError, match="not found"):
        premium.responses.create(model="m", input="more", previous_response_id="resp_" + "0" * 48)
    assert rejection_reason(_last_error(bg, "fallback")) == "foreign_state"


@pytest.mark.parametrize("stream", [False, True])
def test_gemini_thought_signature_is_lane_bound(start_lanes, stream):
    """With thinking on, a function call carries a thoughtSignature the SDK sends back as it came;
    the lane that signed it accepts it, another says "Corrupted thought signature."."""
    bg = _lanes(start_lanes, "gemini")
    premium = genai.Client(api_key="k", http_options=gtypes.HttpOptions(base_url=bg.urls["premium"]))
    fallback = genai.Client(api_key="k", http_options=gtypes.HttpOptions(base_url=bg.urls["fallback"]))
    fn = gtypes.FunctionDeclaration(
        name="lookup", parameters=gtypes.Schema(type="OBJECT", properties={"q": gtypes.Schema(type="STRING")})
    )
    config = gtypes.GenerateContentConfig(
        tools=[gtypes.Tool(function_declarations=[fn])],
        thinking_config=gtypes.ThinkingConfig(thinking_budget=512),
        automatic_function_calling=gtypes.AutomaticFunctionCallingConfig(disable=True),
    )
    user = gtypes.Content(role="user", parts=[gtypes.Part(text="look it up")])
    if stream:
        chunks = list(premium.models.generate_content_stream(model="gemini-3", contents=[user], config=config))
        parts = [p for c in chunks for p in (c.candidates[0].content.parts or [])]
    else:
        parts = (
            premium.models.generate_content(model="gemini-3", contents=[user], config=config)
            .candidates[0]
            .content.parts
        )
    call = next(p for p in parts if p.function_call)
    assert call.thought_signature
    history = [
        user,
        gtypes.Content(role="model", parts=[call]),
        gtypes.Content(role="user", parts=[gtypes.Part.from_function_response(name="lookup", response={"r": 1})]),
    ]
    assert premium.models.generate_content(model="gemini-3", contents=history, config=config).text
    with pytest.raises(genai_errors.ClientError) as exc:
        fallback.models.generate_content(model="gemini-3", contents=history, config=config)
    assert exc.value.code == 400 and exc.value.message == "Corrupted thought signature."
    unsigned = gtypes.Part(function_call=call.function_call)
    history[1] = gtypes.Content(role="model", parts=[unsigned])
    with pytest.raises(genai_errors.ClientError, match="missing a thought_signature"):
        fallback.models.generate_content(model="gemini-3", contents=history, config=config)
