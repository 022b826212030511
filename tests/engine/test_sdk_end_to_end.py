"""Official SDKs, pointed at a lane's base URL, get the simulator's canonical answer.

Each test runs twice: against a lane whose upstream is the in-process simulator, and against a
lane whose upstream is *another lane* over a real socket (the real-upstream forwarding path).
"""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest

from harness.attribution import attempts_by_call
from harness.journal import Journal
from tests.conftest import FAST, expected_answer, simulated_or_forwarded

PROMPT = "Which lane answered this?"


@pytest.fixture(params=["simulator", "forwarded"])
def lane_url(request, start_lanes):
    """``lane_url(dialect) -> (base_url, journal, lane_name)``."""

    def make(dialect: str) -> tuple[str, Journal, str]:
        return simulated_or_forwarded(start_lanes, request.param, dialect)

    return make


def _only_attempt(journal: Journal, lane: str, stream: bool):
    assert journal.wait_for(1)
    attempts = journal.attempts(lane)
    assert len(attempts) == 1, attempts
    a = attempts[0]
    assert a.status == 200 and a.end_reason == "complete" and a.outcome == "ok"
    assert a.stream is stream
    assert a.headers.get("authorization") in (None, "[redacted]")
    assert a.headers.get("x-api-key") in (None, "[redacted]")
    return a


@pytest.mark.parametrize("stream", [True, False])
def test_openai_chat(lane_url, stream):
    url, journal, lane = lane_url("openai")
    client = openai.OpenAI(base_url=url + "/v1", api_key="sk-secret", max_retries=0)
    messages = [{"role": "user", "content": PROMPT}]
    if stream:
        chunks = client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        resp = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
        text = resp.choices[0].message.content
        assert resp.choices[0].finish_reason == "stop"
        assert resp.usage.completion_tokens == FAST.answer_tokens
    assert text == expected_answer(PROMPT)
    a = _only_attempt(journal, lane, stream)
    assert a.dialect == "openai-chat" and a.model == "gpt-4o-mini" and a.retry_count == 0
    assert a.text_chars == len(text) if stream else a.tokens == FAST.answer_tokens


@pytest.mark.parametrize("stream", [True, False])
def test_openai_responses(lane_url, stream):
    url, journal, lane = lane_url("openai")
    client = openai.OpenAI(base_url=url + "/v1", api_key="sk-secret", max_retries=0)
    if stream:
        text = ""
        final = None
        with client.responses.stream(model="gpt-4o-mini", input=PROMPT) as events:
            for ev in events:
                if ev.type == "response.output_text.delta":
                    text += ev.delta
            final = events.get_final_response()
        assert final.status == "completed"
    else:
        resp = client.responses.create(model="gpt-4o-mini", input=PROMPT)
        text = resp.output_text
        assert resp.usage.output_tokens == FAST.answer_tokens
    assert text == expected_answer(PROMPT)
    a = _only_attempt(journal, lane, stream)
    assert a.dialect == "openai-responses"


@pytest.mark.parametrize("stream", [True, False])
def test_anthropic_messages(lane_url, stream):
    url, journal, lane = lane_url("anthropic")
    client = anthropic.Anthropic(base_url=url, api_key="sk-ant-secret", max_retries=0)
    messages = [{"role": "user", "content": PROMPT}]
    if stream:
        with client.messages.stream(model="claude-opus-4-6", max_tokens=256, messages=messages) as s:
            text = "".join(s.text_stream)
            final = s.get_final_message()
        assert final.stop_reason == "end_turn"
        assert final.usage.output_tokens == FAST.answer_tokens
    else:
        msg = client.messages.create(model="claude-opus-4-6", max_tokens=256, messages=messages)
        text = msg.content[0].text
        assert msg.stop_reason == "end_turn"
    assert text == expected_answer(PROMPT)
    a = _only_attempt(journal, lane, stream)
    assert a.dialect == "anthropic"


@pytest.mark.parametrize("stream", [True, False])
def test_gemini_over_httpx(lane_url, stream):
    url, journal, lane = lane_url("gemini")
    body = {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]}
    model_path = f"{url}/v1beta/models/gemini-2.5-flash"
    if stream:
        text = ""
        with httpx.stream("POST", f"{model_path}:streamGenerateContent?alt=sse&key=AIza-secret", json=body) as r:
            assert r.status_code == 200
            import json

            last = None
            for line in r.iter_lines():
                if line.startswith("data: "):
                    last = json.loads(line[6:])
                    for part in last["candidates"][0]["content"]["parts"]:
                        text += part.get("text", "")
            assert last["candidates"][0]["finishReason"] == "STOP"
    else:
        r = httpx.post(f"{model_path}:generateContent?key=AIza-secret", json=body)
        assert r.status_code == 200
        text = r.json()["candidates"][0]["content"]["parts"][0]["text"]
    assert text == expected_answer(PROMPT)
    a = _only_attempt(journal, lane, stream)
    assert a.dialect == "gemini" and a.model == "gemini-2.5-flash"
    assert "AIza-secret" not in a.path and "key=[redacted]" in a.path


def test_same_conversation_same_fingerprint_across_lanes(start_lanes):
    """A fallback from an OpenAI lane to an Anthropic lane is recognisably the same call."""
    bg = start_lanes(premium="openai", stable="anthropic")
    openai.OpenAI(base_url=bg.urls["premium"] + "/v1", api_key="k").chat.completions.create(
        model="m", messages=[{"role": "user", "content": PROMPT}]
    )
    anthropic.Anthropic(base_url=bg.urls["stable"], api_key="k").messages.create(
        model="c", max_tokens=64, messages=[{"role": "user", "content": PROMPT}]
    )
    assert bg.journal.wait_for(2)
    a, b = bg.journal.attempts()
    assert a.fingerprint == b.fingerprint
    # with no call record, two complete answers to one conversation are two calls: a correct agent
    # does not ask again for an answer it has (a failed first attempt would make them one call)
    assert len(attempts_by_call(bg.journal)) == 2
