"""``capabilities:`` in a profile: validated with file:line:field errors, and in the JSON Schema."""

from __future__ import annotations

import pytest

from harness.capabilities import CAP_RULES, Capabilities, rejection_reason
from harness.profile import ProfileError, load_profile_text
from harness.schema import profile_json_schema

BASE = """\
lanes:
  premium: {dialect: anthropic}
  fallback:
    dialect: anthropic
    capabilities:
"""


def test_capabilities_load():
    p = load_profile_text(BASE + "      max_context_tokens: 4096\n      reasoning: false\n", "x.yaml")
    assert p.lanes["fallback"].capabilities == Capabilities(max_context_tokens=4096, reasoning=False)
    assert p.lanes["premium"].capabilities is None


@pytest.mark.parametrize(
    ("line", "field", "want"),
    [
        ("      max_context_tokens: 0\n", "max_context_tokens", "an integer >= 1"),
        ("      max_context_tokens: true\n", "max_context_tokens", "an integer >= 1"),
        ("      tools: 1\n", "tools", "true or false"),
        ("      thinking: false\n", "thinking", "unknown capability; expected one of max_context_tokens"),
    ],
)
def test_bad_capabilities_name_file_line_field(line, field, want):
    with pytest.raises(ProfileError) as exc:
        load_profile_text(BASE + line, "x.yaml")
    msg = str(exc.value)
    assert msg.startswith("x.yaml:6: lanes.fallback.capabilities." + field), msg
    assert want in msg


def test_capabilities_on_a_real_upstream_are_refused():
    text = "lanes:\n  a:\n    dialect: openai\n    upstream: http://127.0.0.1:9\n    capabilities: {tools: false}\n"
    with pytest.raises(ProfileError, match="capabilities: applies to simulated lanes"):
        load_profile_text(text, "x.yaml")


def test_schema_has_every_capability():
    caps = profile_json_schema()["$defs"]["lane"]["properties"]["capabilities"]
    assert (
        set(caps["properties"])
        == set(CAP_RULES)
        >= {
            "max_context_tokens",
            "tools",
            "parallel_tool_calls",
            "structured_output",
            "reasoning",
            "images",
            "prompt_cache",
            "cache_min_tokens",
            "cache_ttl",
        }
    )
    assert caps["additionalProperties"] is False


def test_rejection_reason_reads_real_provider_errors():
    assert rejection_reason({"code": "context_length_exceeded", "message": "x"}) == "context_length"
    assert (
        rejection_reason({"type": "invalid_request_error", "message": "prompt is too long: 9 tokens > 5 maximum"})
        == "context_length"
    )
    assert (
        rejection_reason({"message": "messages.3.content.0: Invalid `signature` in `thinking` block"})
        == "foreign_state"
    )
    assert (
        rejection_reason({"status": "INVALID_ARGUMENT", "message": "Corrupted thought signature."}) == "foreign_state"
    )
    assert rejection_reason({"code": "unsupported_parameter", "message": "..."}) == "unsupported_feature"
    assert rejection_reason({"type": "overloaded_error", "message": "Overloaded"}) is None
    assert rejection_reason(None) is None
