"""Hand-made agent-loop journals: steps whose conversations grow by tool calls and results."""

from __future__ import annotations

from typing import Any

from harness.journal import Attempt
from tests.checks.builder import JB


def call(sha: str, *, complete: bool = True, valid: bool = True, name: str = "run_tests") -> dict[str, Any]:
    """One tool call of an answer, as the journal records it."""
    return {
        "id": f"call_{sha}",
        "name": name,
        "arguments_complete": complete,
        "arguments_valid": valid,
        "args_sha": sha,
        "arguments_chars": 40,
        "offered": True,
    }


def history(*shas: str, valid: bool = True, name: str = "run_tests") -> list[dict[str, Any]]:
    """A request's conversation's tool calls, each with its result sent back."""
    return [
        {"id": f"call_{s}", "name": name, "args_sha": s, "arguments_valid": valid, "has_result": True, "offered": True}
        for s in shas
    ]


class LoopJB(JB):
    """``step(...)``: one attempt of the step whose conversation is ``fp`` (continuing ``parent``)."""

    def step_ok(
        self,
        lane: str,
        t: float,
        end: float,
        fp: str,
        *,
        parent: str | None = None,
        tools: list[dict[str, Any]] | None = None,
        hist: list[dict[str, Any]] | None = None,
        ttft: float = 0.1,
        tokens: int = 10,
        call: str | None = None,
        **kw: Any,
    ) -> Attempt:
        finish = kw.pop("finish", None)  # the builder's ok() says stop; a journal is memory only here
        a = self.ok(
            lane,
            t,
            end,
            ttft=ttft,
            tokens=tokens,
            call=call,
            fingerprint=fp,
            parent_fingerprint=parent,
            tool_calls=tools,
            tool_history=hist,
            **kw,
        )
        if finish is not None:
            a.finish = finish
        return a
