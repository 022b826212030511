"""Agent loops through boto3 (Converse, ConverseStream, InvokeModel and its stream with Claude's
Messages body) and ollama-python (``/api/chat``, streamed and not) against the simulator's
tool-call script, on a lane on the simulator and on a lane forwarding to one (a real upstream's
frames and lines, classified by the dialect).

Each loop must get exactly ``tool_steps`` answers of ``parallel_tool_calls`` calls to offered
tools, with arguments valid for their schema, then the canonical answer of the final
conversation, after sending the tool results back; and the journal must say so, field for field
as it does for Chat Completions (:mod:`tests.engine.test_sdk_tool_calls`).
"""

from __future__ import annotations

import dataclasses

import jsonschema
import pytest

from harness.canonical import canonical_text
from harness.episodes import episodes
from harness.journal import Journal
from tests.conftest import FAST, simulated_or_forwarded
from tests.engine import cloud_tool_loops, tool_loops

SCRIPT = dataclasses.replace(FAST, tool_steps=2, parallel_tool_calls=2)

LOOPS = {
    "converse": ("bedrock", cloud_tool_loops.converse),
    "converse_stream": ("bedrock", cloud_tool_loops.converse_stream),
    "invoke": ("bedrock", cloud_tool_loops.invoke),
    "invoke_stream": ("bedrock", cloud_tool_loops.invoke_stream),
    "ollama": ("ollama", cloud_tool_loops.ollama_chat),
    "ollama_stream": ("ollama", cloud_tool_loops.ollama_stream),
}


@pytest.fixture(params=["simulator", "forwarded"])
def lane(request, start_lanes):
    def make(dialect: str) -> tuple[str, Journal, str]:
        return simulated_or_forwarded(start_lanes, request.param, dialect, SCRIPT)

    return make


def _journal_view(attempts) -> list[tuple]:
    """What the journal says of each step, without ids (they are each dialect's own)."""
    return [
        (
            a.outcome,
            a.tools_offered,
            [
                (c["name"], c["args_sha"], c["arguments_complete"], c["arguments_valid"], c["offered"])
                for c in a.tool_calls
            ]
            if a.tool_calls
            else None,
            [(h["name"], h["args_sha"], h["has_result"], h["arguments_valid"]) for h in a.tool_history or []],
            a.parent_fingerprint is not None,
        )
        for a in attempts
    ]


@pytest.mark.parametrize("style", list(LOOPS))
def test_agent_loop(lane, style):
    dialect, loop = LOOPS[style]
    url, journal, name = lane(dialect)
    calls, text = loop(url)

    steps = SCRIPT.tool_steps
    assert len(calls) == steps * SCRIPT.parallel_tool_calls
    assert [n for n, _ in calls] == ["read_file", "run_tests"] * steps  # every offered tool in turn
    schemas = cloud_tool_loops.OLLAMA_TOOLS if dialect == "ollama" else tool_loops.TOOLS
    for n, args in calls:
        jsonschema.validate(args, schemas[n])

    assert journal.wait_for(steps + 1)
    attempts = journal.attempts(name)
    assert len(attempts) == steps + 1
    assert text == canonical_text(attempts[-1].fingerprint, SCRIPT.answer_tokens)
    for k, a in enumerate(attempts):
        assert a.outcome == "ok" and a.tools_offered == ["read_file", "run_tests"]
        if k < steps:
            assert [c["name"] for c in a.tool_calls] == ["read_file", "run_tests"]
            assert all(c["arguments_complete"] and c["arguments_valid"] and c["offered"] for c in a.tool_calls)
        else:
            assert a.tool_calls is None
        if k == 0:
            assert a.parent_fingerprint is None and a.tool_history is None
        else:
            assert a.parent_fingerprint == attempts[k - 1].fingerprint
            made = [c["args_sha"] for b in attempts[:k] for c in b.tool_calls]
            assert [h["args_sha"] for h in a.tool_history] == made
            assert all(h["has_result"] and h["arguments_valid"] for h in a.tool_history)
    # the steps chain through the tool results into one episode that reached its final answer
    (ep,) = episodes(journal)
    assert ep.final and [s.asked_for_tools for s in ep.steps] == [True] * steps + [False]


@pytest.mark.parametrize("style", list(LOOPS))
def test_journal_matches_chat_completions(start_lanes, style):
    """The same loop through Chat Completions journals the same steps: the same calls (by
    name and canonical-argument digest), complete and valid, the same history and chain."""
    dialect, loop = LOOPS[style]
    url, journal, name = simulated_or_forwarded(start_lanes, "simulator", dialect, SCRIPT)
    chat_url, chat_journal, chat_name = simulated_or_forwarded(start_lanes, "simulator", "openai", SCRIPT)
    calls, _ = loop(url)
    chat_calls, _ = (cloud_tool_loops.chat_with_ollama_tools if dialect == "ollama" else tool_loops.chat)(chat_url)
    assert calls == chat_calls  # the script is the conversation's, not the dialect's
    assert journal.wait_for(3) and chat_journal.wait_for(3)
    assert _journal_view(journal.attempts(name)) == _journal_view(chat_journal.attempts(chat_name))
