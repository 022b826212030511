"""The prompt cache per lane: repeated prefixes above the minimum are read from the cache and
reported in each dialect's own usage fields (read back through the SDKs); another lane starts
cold; the cache_flush fault empties it; entries expire after the TTL (virtual time)."""

from __future__ import annotations

import anthropic
import openai
from google import genai
from google.genai import types as gtypes

from harness.capabilities import Capabilities
from harness.clock import VirtualClock
from harness.journal import Journal
from harness.profile import FaultSpec, LaneSpec, Profile
from harness.promptcache import PromptCache, prefixes
from tests.conftest import FAST

SYSTEM = "You are the routing assistant. Follow every rule below exactly. " * 100  # ~1600 tokens


def _lanes(start_lanes, dialect: str, faults: list[FaultSpec] | None = None, **caps):
    lanes = {
        n: LaneSpec(n, dialect, simulator=FAST, capabilities=Capabilities(**caps)) for n in ("premium", "fallback")
    }
    return start_lanes(Profile(name="cache", lanes=lanes, faults=faults or []), Journal())


def test_openai_chat_cached_tokens(start_lanes):
    bg = _lanes(start_lanes, "openai")
    msgs = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "hi"}]
    premium = openai.OpenAI(base_url=bg.urls["premium"] + "/v1", api_key="sk-x", max_retries=0)
    first = premium.chat.completions.create(model="m", messages=msgs).usage
    assert first.prompt_tokens > 1024 and first.prompt_tokens_details is None  # cold
    second = premium.chat.completions.create(model="m", messages=[*msgs[:1], {"role": "user", "content": "more"}])
    cached = second.usage.prompt_tokens_details.cached_tokens
    assert 1024 <= cached < second.usage.prompt_tokens  # the system prompt, not the new turn
    fallback = openai.OpenAI(base_url=bg.urls["fallback"] + "/v1", api_key="sk-x", max_retries=0)
    assert fallback.chat.completions.create(model="m", messages=msgs).usage.prompt_tokens_details is None
    # streamed, with include_usage: the usage chunk carries it too
    chunks = list(
        premium.chat.completions.create(model="m", messages=msgs, stream=True, stream_options={"include_usage": True})
    )
    assert chunks[-1].usage.prompt_tokens_details.cached_tokens >= 1024
    a = bg.journal.attempts("premium")[-1]
    assert a.usage["cached_input_tokens"] >= 1024


def test_responses_cached_tokens(start_lanes):
    bg = _lanes(start_lanes, "openai-responses")
    client = openai.OpenAI(base_url=bg.urls["premium"] + "/v1", api_key="sk-x", max_retries=0)
    assert (
        client.responses.create(model="m", instructions=SYSTEM, input="hi").usage.input_tokens_details.cached_tokens
        == 0
    )
    u = client.responses.create(model="m", instructions=SYSTEM, input="hi again").usage
    assert u.input_tokens_details.cached_tokens >= 1024


def test_anthropic_cache_read_and_creation(start_lanes):
    bg = _lanes(start_lanes, "anthropic")
    client = anthropic.Anthropic(base_url=bg.urls["premium"], api_key="sk-x", max_retries=0)
    system = [{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}]
    u1 = client.messages.create(
        model="m", max_tokens=100, system=system, messages=[{"role": "user", "content": "hi"}]
    ).usage
    assert u1.cache_read_input_tokens == 0 and u1.cache_creation_input_tokens >= 1024
    with client.messages.stream(
        model="m", max_tokens=100, system=system, messages=[{"role": "user", "content": "x"}]
    ) as s:
        u2 = s.get_final_message().usage
    assert u2.cache_read_input_tokens >= 1024
    assert u2.input_tokens < 50  # only the new turn is uncached input
    # no cache_control: Anthropic caches nothing
    plain = client.messages.create(
        model="m", max_tokens=100, system=SYSTEM, messages=[{"role": "user", "content": "hi"}]
    )
    assert plain.usage.cache_read_input_tokens == 0 and plain.usage.cache_creation_input_tokens == 0


def test_gemini_cached_content_token_count(start_lanes):
    bg = _lanes(start_lanes, "gemini")
    client = genai.Client(api_key="k", http_options=gtypes.HttpOptions(base_url=bg.urls["premium"]))
    config = gtypes.GenerateContentConfig(system_instruction=SYSTEM)
    first = client.models.generate_content(model="gemini-2.5-flash", contents="hi", config=config)
    assert not first.usage_metadata.cached_content_token_count
    again = client.models.generate_content(model="gemini-2.5-flash", contents="hi there", config=config)
    assert again.usage_metadata.cached_content_token_count >= 1024


def test_cache_flush_fault_empties_the_lane_cache(start_lanes):
    flush = FaultSpec("cache_flush", "premium", schedule={"nth": 3})
    bg = _lanes(start_lanes, "openai", faults=[flush])
    client = openai.OpenAI(base_url=bg.urls["premium"] + "/v1", api_key="sk-x", max_retries=0)
    msgs = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "hi"}]

    def cached() -> int:
        d = client.chat.completions.create(model="m", messages=msgs).usage.prompt_tokens_details
        return d.cached_tokens if d else 0

    assert [cached() > 0 for _ in range(4)] == [False, True, False, True]
    assert bg.journal.attempts("premium")[2].fault_name == "cache_flush"


def test_prompt_cache_off_and_minimum(start_lanes):
    bg = _lanes(start_lanes, "openai", prompt_cache=False)
    client = openai.OpenAI(base_url=bg.urls["premium"] + "/v1", api_key="sk-x", max_retries=0)
    msgs = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "hi"}]
    for _ in range(2):
        assert client.chat.completions.create(model="m", messages=msgs).usage.prompt_tokens_details is None
    short = [{"role": "system", "content": "short"}, {"role": "user", "content": "hi"}]
    bg2 = _lanes(start_lanes, "openai")
    c2 = openai.OpenAI(base_url=bg2.urls["premium"] + "/v1", api_key="sk-x", max_retries=0)
    for _ in range(2):
        assert c2.chat.completions.create(model="m", messages=short).usage.prompt_tokens_details is None


def test_ttl_in_virtual_time():
    clock = VirtualClock()
    cache = PromptCache(min_tokens=100, ttl=300.0, clock=clock)
    body = {"messages": [{"role": "system", "content": "x" * 2000}, {"role": "user", "content": "hi"}]}
    p = prefixes("chat", body, 520)
    assert cache.use(p) == (0, 520)
    clock.advance(299.0)
    assert cache.use(p)[0] == 520  # read, and the TTL renewed
    clock.advance(299.0)
    assert cache.use(p)[0] == 520
    clock.advance(301.0)
    assert cache.use(p)[0] == 0  # expired
    other = {"messages": [{"role": "system", "content": "x" * 2000}, {"role": "user", "content": "something else"}]}
    hit, written = cache.use(prefixes("chat", other, 525))
    assert 400 < hit < 525 and written == 525 - hit  # the shared system prompt, not the new turn
    cache.flush()
    assert cache.use(p)[0] == 0 and cache.flushes == 1


def test_responses_continuation_reads_the_stored_conversation_from_the_cache(start_lanes):
    """With previous_response_id the stored conversation is a prefix the lane has cached: a long
    first turn is read from the cache by the continuation, on that lane only."""
    bg = _lanes(start_lanes, "openai-responses")
    client = openai.OpenAI(base_url=bg.urls["premium"] + "/v1", api_key="sk-x", max_retries=0)
    first = client.responses.create(model="m", input=SYSTEM)
    assert first.usage.input_tokens_details.cached_tokens == 0
    again = client.responses.create(model="m", input="and then?", previous_response_id=first.id)
    assert again.usage.input_tokens > first.usage.input_tokens
    assert again.usage.input_tokens_details.cached_tokens >= first.usage.input_tokens
