"""Tool calls as pure data, the same for every dialect.

Four providers spell a tool call four ways (Chat's ``tool_calls`` with a JSON *string* of
arguments, Responses' ``function_call`` items, Anthropic's ``tool_use`` blocks and Gemini's
``functionCall`` parts, both with a JSON *object*). Everything else in the harness speaks the
types here instead:

- :class:`ToolSpec`, a tool a request offers (its name and JSON schema);
- :class:`ToolCall`, one call an answer makes (name and the arguments' JSON text);
- :class:`ToolDelta`, what one stream event says about a call (it opens, a fragment of its
  arguments, it is done), so the lane can journal tool calls of any stream, the simulator's or a
  real upstream's, by reading the same field;
- :class:`ToolCallLog`, which adds up the deltas of one answer into the journal's
  ``tool_calls`` entries, and :class:`Conversation`, which turns a request's conversation into
  its fingerprint, its parent's fingerprint and its ``tool_history``.

Arguments are compared by their canonical JSON (keys sorted, no spaces), never by provider ids,
so a call made on one lane and answered on another is the same call. :func:`arguments_valid`
only says "invalid" when it is sure (unparseable, not an object, a required property missing, a
declared type or enum violated): a check built on it must never fail a correct agent because of
a schema keyword this module does not know.

The types and the canonical form of arguments are in :mod:`harness.toolspec`, the arguments the
simulator makes in :mod:`harness.toolargs`; this module adds up the calls of one answer and reads
a request's conversation, and re-exports the rest, so callers import everything from here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .canonical import fingerprints
from .toolargs import FRAGMENT_CHARS, fragment_count, fragments, make_arguments
from .toolspec import (
    ALL_DONE,
    ToolCall,
    ToolDelta,
    ToolEdit,
    ToolSpec,
    args_sha,
    arguments_valid,
    canonical_arguments,
    whole_tool_deltas,
)

__all__ = [
    "ALL_DONE",
    "FRAGMENT_CHARS",
    "Conversation",
    "ToolCall",
    "ToolCallLog",
    "ToolDelta",
    "ToolEdit",
    "ToolSpec",
    "args_sha",
    "arguments_valid",
    "canonical_arguments",
    "fragment_count",
    "fragments",
    "make_arguments",
    "whole_tool_deltas",
]


# -- the answer's tool calls, from the events that carried them ---------------------------------
@dataclass(slots=True)
class _Open:
    id: str | None
    name: str | None
    parts: list[str] = field(default_factory=list)
    done: bool = False
    whole: bool = False  # opened and finished by one delta: sent whole (a body, Gemini)


class ToolCallLog:
    """Adds up the :class:`ToolDelta` of one answer (stream or body) into the journal's
    ``Attempt.tool_calls``. Cheap per delta; the JSON is only parsed once, in :meth:`result`."""

    __slots__ = ("_by_index", "calls")

    def __init__(self) -> None:
        self.calls: list[_Open] = []
        self._by_index: dict[int, _Open] = {}

    def feed(self, deltas: Iterable[ToolDelta]) -> None:
        by_index = self._by_index
        for d in deltas:
            index, cid, name, arguments, done, _ = d
            if name is None and cid is None and not done and index in by_index:
                if arguments:  # the common case: one more fragment of an open call
                    by_index[index].parts.append(arguments)
                continue
            if d.index < 0:
                if d.done:
                    for c in self.calls:
                        c.done = True
                continue
            cur = self._by_index.get(d.index)
            opening = d.name is not None or d.id is not None
            if cur is None or (opening and cur.done and d.name is not None):
                if not opening and not d.arguments:
                    continue  # the end of a block that was not a tool call (Anthropic's text block)
                cur = _Open(d.id, d.name, whole=d.done)
                self.calls.append(cur)
                self._by_index[d.index] = cur
                for c in self.calls[:-1]:
                    c.done = True  # a call opens only once the previous one's arguments ended
            else:
                if cur.id is None and d.id is not None:
                    cur.id = d.id
                if cur.name is None and d.name is not None:
                    cur.name = d.name
            if d.arguments:
                cur.parts.append(d.arguments)
            if d.done:
                cur.done = True

    def add(self, call_id: str | None, name: str | None, arguments: Any, complete: bool = True) -> None:
        """A whole call, as a non-streamed body carries it (arguments as text or an object)."""
        text = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
        self.calls.append(_Open(call_id, name, [text], complete, whole=complete))

    def result(self, tools: Sequence[ToolSpec] = (), finish: str | None = None) -> list[dict[str, Any]] | None:
        """The calls as the journal records them; None when the answer carried none. An answer
        that ended with finish ``length`` was cut while writing its last streamed call, whatever
        its events said (Anthropic closes the block anyway); a call that came whole in one piece
        (Gemini's, which drops a cut call instead) says for itself whether it is complete."""
        if not self.calls:
            return None
        by_name = {t.name: t for t in tools}
        out = []
        last = len(self.calls) - 1
        for i, c in enumerate(self.calls):
            raw = "".join(c.parts)
            spec = by_name.get(c.name or "")
            out.append(
                {
                    "id": c.id,
                    "name": c.name,
                    "arguments_complete": c.done and (c.whole or not (finish == "length" and i == last)),
                    "arguments_valid": arguments_valid(raw, spec),
                    "args_sha": args_sha(raw),
                    "arguments_chars": len(raw),
                    "offered": spec is not None,
                }
            )
        return out


# -- a request's conversation ------------------------------------------------------------------
@dataclass(slots=True)
class _HistoryCall:
    id: str | None
    name: str
    arguments: Any
    turn: int
    has_result: bool = False


@dataclass(frozen=True, slots=True)
class ConversationFacts:
    """What a request's conversation says, in every dialect's common terms."""

    fingerprint: str
    parent_fingerprint: str | None
    tool_history: tuple[dict[str, Any], ...]
    tool_rounds: int  # assistant turns with tool calls since the last user turn
    text: str  # every text of the conversation, for a token estimate


class Conversation:
    """A request's conversation reduced to what every dialect shares: system text, and turns of
    ``(role, text)`` where an assistant turn may carry tool calls (name + canonical arguments) and
    each tool result is a ``tool`` turn of its content. Dialects feed it in order; ids only pair
    results with calls (by id, else by name in order, as Gemini has no ids)."""

    def __init__(self) -> None:
        self.system: list[str] = []
        self.turns: list[tuple[Any, ...]] = []
        self.calls: list[_HistoryCall] = []
        self._texts: list[str] = []

    def add(self, role: str, text: str) -> None:
        """A text turn (``user`` or ``assistant``); ``system`` text goes to the system prompt."""
        if role == "system":
            self.system.append(text)
        else:
            self.turns.append((role, text))
        self._texts.append(text)

    def add_calls(self, calls: Iterable[tuple[str | None, str, Any]], text: str | None = None) -> None:
        """Tool calls ``(id, name, arguments)`` of an assistant turn: they join the assistant turn
        just before (a Responses ``function_call`` item after its message), or open one."""
        calls = list(calls)
        if not calls and text is None:
            return
        if text is not None or not self.turns or self.turns[-1][0] != "assistant":
            self.turns.append(("assistant", text or ""))
            self._texts.append(text or "")
        role, said, *rest = self.turns[-1]
        norm = list(rest[0]) if rest else []
        i = len(self.turns) - 1
        for cid, name, args in calls:
            norm.append((name, canonical_arguments(args)))
            self.calls.append(_HistoryCall(cid or None, name, args, i))
            self._texts.append(args if isinstance(args, str) else json.dumps(args, ensure_ascii=False))
        self.turns[-1] = (role, said, tuple(norm)) if norm else (role, said)

    def add_result(self, call_id: str | None, name: str | None, text: str) -> None:
        """A tool result: one ``tool`` turn of its content, paired with its call."""
        self.turns.append(("tool", text))
        self._texts.append(text)
        match = None
        if call_id:
            match = next((c for c in self.calls if c.id == call_id and not c.has_result), None)
        if match is None and name:
            match = next((c for c in self.calls if c.name == name and not c.has_result), None)
        if match is None and not call_id and not name:
            match = next((c for c in self.calls if not c.has_result), None)
        if match is not None:
            match.has_result = True

    def facts(self, tools: Sequence[ToolSpec] = ()) -> ConversationFacts:
        system = "\n".join(self.system)
        turns = self.turns
        j = len(turns)
        while j > 0 and turns[j - 1][0] == "tool":
            j -= 1
        # an agent loop's step: its parent is the conversation before the calls it answers
        step = j > 0 and turns[j - 1][0] == "assistant" and len(turns[j - 1]) > 2
        fp, parent = fingerprints(system, turns, j - 1 if step else None)
        rounds = 0
        for t in reversed(turns):
            if t[0] == "user":
                break
            if t[0] == "assistant" and len(t) > 2:
                rounds += 1
        by_name = {t.name: t for t in tools}
        history = tuple(
            {
                "id": c.id,
                "name": c.name,
                "args_sha": args_sha(c.arguments),
                "arguments_valid": arguments_valid(c.arguments, by_name.get(c.name)),
                "has_result": c.has_result,
                "offered": c.name in by_name,
            }
            for c in self.calls
        )
        return ConversationFacts(fp, parent, history, rounds, "\n".join(self._texts))
