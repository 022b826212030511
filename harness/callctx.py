"""What a call is to the workload, wherever it runs: its id in context, and its answer's text.

Kept apart from :mod:`harness.drill` because more than the drill needs it: an agent sends
:func:`call_headers` from inside :meth:`~harness.drill.Drill.call` (or :func:`call_scope` in
another process), and the Ray engine's agent actors record calls with :func:`answer_text` as the
drill does. Import these from :mod:`harness.drill`.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

__all__ = [
    "CALL_ID_HEADER",
    "answer_text",
    "call_headers",
    "call_runner",
    "call_scope",
    "call_var",
    "current_call_id",
    "result_attr",
]

CALL_ID_HEADER = "x-routechaos-call-id"
call_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("routechaos_call", default=None)


def current_call_id() -> str | None:
    """The id of the call :meth:`Drill.call` is running, if any (agents may send it as a header)."""
    return call_var.get()


def call_headers() -> dict[str, str]:
    """``{"x-routechaos-call-id": id}`` inside :meth:`Drill.call`, else ``{}``: an agent that sends
    it lets the journal tie attempts to calls exactly, instead of by conversation fingerprint."""
    cid = call_var.get()
    return {CALL_ID_HEADER: cid} if cid else {}


@contextmanager
def call_scope(call_id: str) -> Iterator[str]:
    """Run a block as call ``call_id``: :func:`call_headers` returns it inside. For agents in
    another process, which report the call's outcome to the control API under the same id."""
    token = call_var.set(call_id)
    try:
        yield call_id
    finally:
        call_var.reset(token)


def result_attr(result: Any, name: str) -> Any:
    """``result[name]`` of a mapping, else ``result.name`` (``None`` when it has none)."""
    if isinstance(result, Mapping):
        return result.get(name)
    return getattr(result, name, None)


def answer_text(result: Any) -> str | None:
    """The answer text of what an agent returned, in the shapes agents return as they are: a
    string; anything with a string ``text`` (this project's examples, google-genai responses);
    an OpenAI chat completion (``choices[0].message.content``) or Responses object
    (``output_text``); an Anthropic message (its text blocks). ``None`` when there is none."""
    if result is None or isinstance(result, str):
        return result
    text = result_attr(result, "text")
    if isinstance(text, str):
        return text
    out = result_attr(result, "output_text")
    if isinstance(out, str):
        return out
    choices = result_attr(result, "choices")
    if isinstance(choices, list | tuple) and choices:
        msg = result_attr(choices[0], "message")
        content = result_attr(msg, "content") if msg is not None else None
        if isinstance(content, str):
            return content
    blocks = result_attr(result, "content")
    if isinstance(blocks, list | tuple) and blocks:
        texts = [t for b in blocks if result_attr(b, "type") == "text" and isinstance(t := result_attr(b, "text"), str)]
        if texts:
            return "".join(texts)
    return None


def call_runner() -> tuple[str, str | None]:
    """The thread (and asyncio task, if any) running a call: evidence of which calls overlap."""
    import asyncio
    import threading

    try:
        task = asyncio.current_task()
    except RuntimeError:
        task = None
    return threading.current_thread().name, (task.get_name() if task is not None else None)
