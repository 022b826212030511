"""Billing rules, from journal attempts: what a provider bills for a refused request, a whole
answer, a cut stream, and a stream drained after the client left; prices in a profile."""

from __future__ import annotations

import pytest

from harness.billing import Prices, bill_attempt
from harness.journal import Attempt
from harness.profile import ProfileError, load_profile_text
from harness.schema import profile_json_schema

P = Prices(input=3.0, output=15.0, cached_input=0.3, cache_write=3.75)


def _a(**kw) -> Attempt:
    base = {"id": "a1", "lane": "primary", "t_start": 0.0, "wall_start": 0.0, "stream": True}
    return Attempt(**{**base, **kw})


def test_refused_requests_cost_nothing():
    b = bill_attempt(_a(status=529, end_reason="error_response"), P)
    assert (b.tokens, b.cost) == (0, 0.0)


def test_whole_answer_bills_its_usage_with_cached_and_written_input():
    usage = {"input_tokens": 2000, "output_tokens": 48, "cached_input_tokens": 1500, "cache_write_tokens": 100}
    b = bill_attempt(_a(status=200, end_reason="complete", usage=usage, tokens=48, expected_tokens=48), P)
    assert (b.uncached_input, b.cached_input, b.cache_write, b.output) == (400, 1500, 100, 48)
    assert b.cost == pytest.approx((400 * 3 + 1500 * 0.3 + 100 * 3.75 + 48 * 15) / 1e6)


def test_cut_stream_bills_what_was_generated_up_to_the_cut():
    usage = {"input_tokens": 1000, "output_tokens": 48}
    b = bill_attempt(_a(status=200, end_reason="cut", usage=usage, tokens=24, expected_tokens=48), P)
    assert (b.input, b.output) == (1000, 24)


def test_stream_drained_after_the_client_left_bills_the_whole_answer():
    usage = {"input_tokens": 1000, "output_tokens": 48}
    b = bill_attempt(_a(status=200, end_reason="client_gone", usage=usage, tokens=5, expected_tokens=48), P)
    assert b.output == 48


def test_unpriced_lane_bills_tokens_at_no_cost():
    b = bill_attempt(_a(status=200, end_reason="complete", usage={"input_tokens": 10, "output_tokens": 5}, tokens=5))
    assert (b.tokens, b.cost) == (15, 0.0)


def test_prices_in_a_profile_and_its_schema():
    p = load_profile_text("lanes:\n  a: {dialect: openai, prices: {input: 3, output: 15}}\n", "x.yaml")
    assert p.lanes["a"].prices == Prices(input=3.0, output=15.0)
    with pytest.raises(ProfileError, match=r"x.yaml:2: lanes.a.prices.output: must be a number >= 0"):
        load_profile_text("lanes:\n  a: {dialect: openai, prices: {output: -1}}\n", "x.yaml")
    with pytest.raises(ProfileError, match="unknown price; expected one of input, output, cached_input, cache_write"):
        load_profile_text("lanes:\n  a: {dialect: openai, prices: {cached: 1}}\n", "x.yaml")
    props = profile_json_schema()["$defs"]["lane"]["properties"]["prices"]["properties"]
    assert set(props) == {"input", "output", "cached_input", "cache_write"}


def test_summaries_carry_the_bill():
    """The JSON and Markdown summaries show cost per lane and the wasted share."""
    from harness.drill import Drill
    from harness.report.model import build_model
    from harness.report.summary import to_json, to_markdown

    with Drill("c04-retries-whole-conversation", time_scale=0.25) as drill:
        import anthropic

        client = anthropic.Anthropic(base_url=drill.url("primary"), api_key="k", max_retries=0)
        drill.call(
            lambda: client.messages.create(model="m", max_tokens=64, messages=[{"role": "user", "content": "hi"}])
        )
        report = drill.evaluate()
    m = build_model(drill.profile_time_journal(), report)
    cost = to_json(m)["cost"]
    assert cost["priced"] and cost["lanes"]["primary"]["tokens"] > 0 and cost["total_usd"] > 0
    assert cost["wasted_share"] == 0 and cost["amplification"] == 1.0
    assert "Cost: primary $" in to_markdown(m)
