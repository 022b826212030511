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
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .canonical import canonical_tokens, fingerprint

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
]


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A function tool a request offers: its name and the JSON schema of its arguments."""

    name: str
    parameters: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One tool call of an answer. ``key`` is a provider-neutral id; each dialect writes it in
    its own form (``call_…``, ``toolu_…``); ``arguments`` is the JSON text as it goes on the wire."""

    key: str
    name: str
    arguments: str


class ToolDelta(NamedTuple):
    """What one stream event says about one tool call of the answer (a named tuple: one is made
    per argument fragment, on the lane's per-event path).

    ``index`` tells the calls of one answer apart (Chat's ``index``, Responses' ``output_index``,
    Anthropic's block index, Gemini's part position); -1 with ``done`` means "every call so far is
    done" (Chat's ``finish_reason: tool_calls``, which ends calls without naming them). A delta
    that carries ``name`` or ``id`` opens a call; ``arguments`` is a fragment of its arguments;
    ``done`` says its arguments ended normally. ``total`` is the length of the whole arguments
    when the writer knows it in advance (the simulator does, a forwarded stream does not).
    """

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""
    done: bool = False
    total: int | None = None


ALL_DONE = ToolDelta(-1, done=True)


@dataclass(frozen=True, slots=True)
class ToolEdit:
    """A change a fault makes to one tool call of an answer, applied by the dialect to each event
    (or body) that carries the call: its new ``name``, its new whole ``arguments``, the new
    argument ``fragment`` this event carries, and ``unexpected`` when the call is to a tool the
    request did not offer (Gemini refuses those itself, with ``UNEXPECTED_TOOL_CALL``); ``cut``
    (whole bodies only) when the answer hit its token limit inside this call, which ends it."""

    index: int
    name: str | None = None
    arguments: str | None = None
    fragment: str | None = None
    unexpected: bool = False
    cut: bool = False


# -- canonical arguments -----------------------------------------------------------------------
def canonical_arguments(raw: str | Mapping[str, Any] | None) -> str:
    """The arguments as canonical JSON (keys sorted, no spaces); text that is not JSON is kept as
    it is (stripped), so cut or malformed arguments still compare equal to themselves."""
    if raw is None:
        return "{}"
    if isinstance(raw, str):
        try:
            obj = json.loads(raw) if raw.strip() else {}
        except ValueError:
            return raw.strip()
    else:
        obj = raw
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def args_sha(raw: str | Mapping[str, Any] | None) -> str:
    """A short digest of the canonical arguments: equal across dialects for the same call."""
    return hashlib.sha256(canonical_arguments(raw).encode()).hexdigest()[:16]


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
    "null": (type(None),),
}


def arguments_valid(raw: str | Mapping[str, Any] | None, spec: ToolSpec | None) -> bool:
    """True unless the arguments are surely wrong for ``spec``: not JSON, not an object, or
    violating a declared ``required``, ``type`` or ``enum`` (nested objects and arrays included).
    Keywords it does not know never make arguments invalid."""
    if isinstance(raw, str):
        try:
            obj = json.loads(raw)
        except ValueError:
            return False
    else:
        obj = raw if raw is not None else {}
    if not isinstance(obj, dict):
        return False
    params = spec.parameters if spec is not None else None
    return True if not params else _valid(obj, params, params, 0)


def _types_of(schema: Mapping[str, Any]) -> list[str]:
    t = schema.get("type")
    names = t if isinstance(t, list) else [t] if isinstance(t, str) else []
    out = [str(n).lower() for n in names]
    if schema.get("nullable") is True and "null" not in out:
        out.append("null")
    return out


def _resolve(schema: Any, root: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """``schema`` with a local ``$ref`` (``#/$defs/X``, ``#/definitions/X``) followed; None when
    it cannot be resolved."""
    for _ in range(32):
        if not isinstance(schema, Mapping):
            return None
        ref = schema.get("$ref")
        if not isinstance(ref, str):
            return schema
        if not ref.startswith("#"):
            return None
        node: Any = root
        for part in [p for p in ref[1:].split("/") if p]:
            part = part.replace("~1", "/").replace("~0", "~")
            node = node.get(part) if isinstance(node, Mapping) else None
        schema = node
    return None


def _is_type(value: Any, name: str) -> bool:
    if name in ("integer", "number") and isinstance(value, bool):
        return False
    if name == "integer" and isinstance(value, float):
        return value.is_integer()
    kinds = _JSON_TYPES.get(name)
    return True if kinds is None else isinstance(value, kinds)


def _valid(value: Any, schema: Any, root: Mapping[str, Any], depth: int) -> bool:
    s = _resolve(schema, root)
    if s is None or depth > 32:
        return True  # unknown: never "invalid"
    alts = s.get("anyOf") or s.get("oneOf")
    if isinstance(alts, list) and alts and not any(_valid(value, a, root, depth + 1) for a in alts):
        return False
    for part in s.get("allOf") or []:
        if not _valid(value, part, root, depth + 1):
            return False
    types = _types_of(s)
    if types and not any(_is_type(value, t) for t in types):
        return False
    enum = s.get("enum")
    if isinstance(enum, list) and enum and value not in enum:
        return False
    if isinstance(value, dict):
        props = s.get("properties") if isinstance(s.get("properties"), Mapping) else {}
        for name in s.get("required") or []:
            if isinstance(name, str) and name not in value:
                return False
        for name, sub in props.items():
            if name in value and not _valid(value[name], sub, root, depth + 1):
                return False
    elif isinstance(value, list) and isinstance(s.get("items"), Mapping):
        return all(_valid(v, s["items"], root, depth + 1) for v in value)
    return True


# -- deterministic arguments -------------------------------------------------------------------
class _Words:
    """Deterministic words for one seed, drawn as needed."""

    def __init__(self, seed: str) -> None:
        self.seed = seed
        self.n = 0

    def take(self, k: int) -> list[str]:
        toks = canonical_tokens(f"{self.seed}:{self.n}", k)
        self.n += 1
        return [t.strip() for t in toks]

    def number(self) -> int:
        self.n += 1
        return int.from_bytes(hashlib.sha256(f"{self.seed}#{self.n}".encode()).digest()[:4], "big")


_FORMATS = {
    "date-time": "2025-01-01T00:00:00Z",
    "date": "2025-01-01",
    "time": "00:00:00Z",
    "email": "lane@example.com",
    "uri": "https://example.com/lane",
    "url": "https://example.com/lane",
    "hostname": "example.com",
    "ipv4": "192.0.2.1",
    "uuid": "00000000-0000-4000-8000-000000000000",
}


def _int(value: Any) -> int | None:
    """Schema counts may be integers or, in Gemini's proto JSON, numeric strings."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _num(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(value) if isinstance(value, str) else None
    except ValueError:
        return None


class _Builder:
    """Builds one value for a schema, remembering the free-text strings it can grow later."""

    def __init__(self, root: Mapping[str, Any], seed: str) -> None:
        self.root = root
        self.words = _Words(seed)
        self.growable: list[tuple[Any, Any, int | None]] = []  # (container, key, maxLength)

    def value(self, schema: Any, depth: int = 0) -> Any:
        s = _resolve(schema, self.root) or {}
        if depth > 8:
            return None if "null" in _types_of(s) else {}
        if "const" in s:
            return s["const"]
        enum = s.get("enum")
        if isinstance(enum, list) and enum:
            return enum[self.words.number() % len(enum)]
        alts = s.get("anyOf") or s.get("oneOf")
        if isinstance(alts, list) and alts:
            pick = next((a for a in alts if "null" not in _types_of(_resolve(a, self.root) or {})), alts[0])
            return self.value(pick, depth + 1)
        if isinstance(s.get("allOf"), list) and s["allOf"]:
            merged: dict[str, Any] = {}
            for part in s["allOf"]:
                r = _resolve(part, self.root) or {}
                merged.update({k: v for k, v in r.items() if k not in ("properties", "required")})
                merged.setdefault("properties", {}).update(r.get("properties") or {})
                merged.setdefault("required", []).extend(r.get("required") or [])
            return self.value({**{k: v for k, v in s.items() if k != "allOf"}, **merged}, depth + 1)
        types = [t for t in _types_of(s) if t != "null"] or (
            ["object"] if "properties" in s else ["array"] if "items" in s else ["string"]
        )
        kind = types[0]
        if kind == "object":
            out: dict[str, Any] = {}
            props = s.get("properties") if isinstance(s.get("properties"), Mapping) else {}
            for name, sub in props.items():
                out[name] = self.value(sub, depth + 1)
                if isinstance(out[name], str) and self._free(sub):
                    self.growable.append((out, name, _int((_resolve(sub, self.root) or {}).get("maxLength"))))
            for name in s.get("required") or []:
                if isinstance(name, str) and name not in out:
                    out[name] = self.words.take(1)[0]
            return out
        if kind == "array":
            lo = _int(s.get("minItems")) or 1
            hi = _int(s.get("maxItems"))
            n = min(lo, hi) if hi is not None else lo
            items = s.get("items") if isinstance(s.get("items"), Mapping) else {}
            return [self.value(items, depth + 1) for _ in range(n)]
        if kind == "integer":
            return int(self._number(s, integer=True))
        if kind == "number":
            return self._number(s, integer=False)
        if kind == "boolean":
            return self.words.number() % 2 == 0
        return self._string(s)

    def _free(self, schema: Any) -> bool:
        s = _resolve(schema, self.root) or {}
        return not ("enum" in s or "const" in s or "format" in s or "pattern" in s)

    def _number(self, s: Mapping[str, Any], *, integer: bool) -> float:
        lo = _num(s.get("minimum"))
        hi = _num(s.get("maximum"))
        ex_lo, ex_hi = _num(s.get("exclusiveMinimum")), _num(s.get("exclusiveMaximum"))
        if ex_lo is not None:
            lo = ex_lo + (1 if integer else 0.5) if lo is None else max(lo, ex_lo + (1 if integer else 0.5))
        if ex_hi is not None:
            hi = ex_hi - (1 if integer else 0.5) if hi is None else min(hi, ex_hi - (1 if integer else 0.5))
        base = lo if lo is not None else (hi - 100 if hi is not None else 1.0)
        span = (hi - base) if hi is not None else 100.0
        r = self.words.number()
        if integer:
            import math

            base = math.ceil(base)
            return float(base + (r % (int(span) + 1) if span >= 1 else 0))
        return base + (r % 1000) / 1000 * max(0.0, span)

    def _string(self, s: Mapping[str, Any]) -> str:
        fmt = s.get("format")
        if isinstance(fmt, str) and fmt in _FORMATS:
            return _FORMATS[fmt]
        text = " ".join(self.words.take(2))
        lo = _int(s.get("minLength")) or 0
        while len(text) < lo:
            text += " " + " ".join(self.words.take(2))
        hi = _int(s.get("maxLength"))
        return text[:hi] if hi is not None else text


def make_arguments(spec: ToolSpec, seed: str, size: int = 0) -> str:
    """Deterministic JSON arguments for ``spec`` (every declared property, each valid for its
    schema: types, enums, nested objects and arrays, formats, bounds), grown with words in its
    free-text strings until the JSON is about ``size`` characters long."""
    params = dict(spec.parameters or {})
    b = _Builder(params, f"{spec.name}:{seed}")
    value = b.value(params or {"type": "object"})
    if not isinstance(value, dict):
        value = {}
    # grow the free-text strings, the first ones first, each up to its maxLength
    need = size - len(json.dumps(value, ensure_ascii=False))
    for container, key, hi in b.growable:
        if need <= 0:
            break
        room = need if hi is None else min(need, hi - len(container[key]))
        if room <= 1:
            continue
        # 64 words of the seed's, repeated: made per request, arguments may be megabytes
        block = "".join(canonical_tokens(f"{b.words.seed}:grow:{key}", 64)) + " "
        words = block * (room // len(block) + 1)
        if len(words) >= room:
            words = words[: max(1, words.rfind(" ", 0, room - 1))]  # whole words only
        container[key] += " " + words
        need -= 1 + len(words)  # the canonical words need no JSON escaping
    text = json.dumps(value, ensure_ascii=False)
    return text


#: characters a streamed argument fragment carries: one token, as providers count them
FRAGMENT_CHARS = 4


def fragment_count(arguments: str) -> int:
    """How many fragments (tokens) the arguments stream in: known without cutting them."""
    return -(-len(arguments) // FRAGMENT_CHARS)


def fragments(arguments: str, start: int = 0, count: int | None = None) -> list[str]:
    """The arguments' JSON in token-sized fragments (``count`` of them from fragment ``start``),
    as a model streams them; all of them joined give the arguments back exactly."""
    w = FRAGMENT_CHARS
    stop = fragment_count(arguments) if count is None else start + count
    return [arguments[i * w : (i + 1) * w] for i in range(start, stop)]


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
        parent = None
        if j > 0 and turns[j - 1][0] == "assistant" and len(turns[j - 1]) > 2:
            parent = fingerprint(system, turns[: j - 1])
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
        return ConversationFacts(fingerprint(system, turns), parent, history, rounds, "\n".join(self._texts))
