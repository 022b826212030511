"""Lazy classification of a forwarded stream: content events read off their bytes.

A stream no fault touches is spliced to the client as the upstream sent it; the lane still needs
the journal's facts (tokens, text length, token times, finish, usage, tool calls). Most events of
a stream are content events of one or two shapes that differ only in their text (and in counters
such as ``sequence_number``), so instead of parsing every event in full (SSE fields, JSON,
:meth:`~harness.dialects.base.Dialect.classify`, one object per event), :class:`LazyEvents`
learns each shape once from the dialect's own classification and then reads the text of every
later event of that shape straight off its bytes (literal bytes, integer holes, one JSON
string). Any other event is classified in full, exactly as the full path does.

A shape (:class:`Template`) is learnt from one event the dialect classified as plain content
(text, or one fragment of a tool call's arguments; no finish reason, no error) and kept only
when the dialect itself confirms it, by classifying rewritten copies of that event:

* the **slot** is the one JSON string value whose replacement by probe texts (escapes included)
  changes the classification to exactly that probe text and nothing else;
* an integer value is a **free hole** when three different values classify the same; every
  other byte (keys, other strings, ``null``, the SSE ``event:`` line, framing) must match
  literally. Strings are never free: a classifier may compare one to ``"error"``.

So an event that matches a template is, byte for byte outside its slot and holes, the event the
dialect classified, and its classification is the template's with the slot's text. The slot is
decoded as the full path decodes it (UTF-8 with replacement, JSON escapes by ``json.loads``), so
text lengths and token estimates are identical; a slot that is not a valid JSON string, or an
event of any other shape, falls back to full classification.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..sse import SSEDecoder, SSEEvent
from .base import Dialect, EventInfo, EventKind, ToolDelta

__all__ = ["LazyEvents", "Template", "learn_template", "match", "tokens_of"]

#: a JSON string token, a JSON number token (strings first: digits inside strings are theirs)
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?')
_INT = re.compile(rb"-?(?:0|[1-9][0-9]*)")
_WS = b" \t"
#: a control character: never inside a JSON string (the full path's ``json.loads`` refuses it)
_CTL = re.compile(rb"[\x00-\x1f]")
#: probe texts for the slot (raw JSON string bodies) and probe values for integer holes
_PROBES = (b"Z", b'q\\"\\\\ \\u00e9\\n\xc3\xa9x')
_INT_PROBES = (b"0", b"1", b"987654321")
#: a stream learns at most this many shapes, and gives up learning after this many failures
MAX_TEMPLATES = 4
MAX_FAILURES = 6


def tokens_of(text: str) -> int:
    """Tokens in a forwarded event, estimated (the wire carries text, not token ids); the exact
    count comes from the usage the provider reports at the end."""
    return max(1, (len(text) + 2) // 4) if text else 0


@dataclass(frozen=True, slots=True)
class Template:
    """One learnt event shape: literal bytes ``lits`` around holes (``kinds``: True for the slot,
    False for an integer); ``args`` when the slot is a tool call's argument fragment (``delta``
    is the rest of that delta)."""

    lits: tuple[bytes, ...]
    kinds: tuple[bool, ...]
    args: bool
    delta: ToolDelta | None
    usage: dict[str, int] | None
    info: EventInfo


def _decode_slot(body: bytes) -> str | None:
    """The slot's text exactly as the full path reads it (None: not a valid JSON string body)."""
    if b"\\" not in body:
        return body.decode("utf-8", "replace")
    try:
        value = json.loads('"' + body.decode("utf-8", "replace") + '"')
    except ValueError:
        return None
    return value if isinstance(value, str) else None


def _payload_span(raw: bytes) -> tuple[int, int] | None:
    """Where the one JSON object of a single-line event sits in ``raw``."""
    a = raw.find(b"{")
    b = raw.rfind(b"}") + 1
    if a < 0 or b <= a or b"\n" in raw[a:b] or b"\r" in raw[a:b]:
        return None
    return a, b


def _value_of(info: EventInfo) -> tuple[str, bool] | None:
    """The text a template's slot would carry, and whether it is tool arguments; None for an
    event no template may be learnt from."""
    if info.kind is not EventKind.CONTENT or info.finish is not None or info.error is not None:
        return None
    if info.text and not info.tools:
        return info.text, False
    if not info.text and len(info.tools) == 1:
        d = info.tools[0]
        if d.arguments and d.id is None and d.name is None and not d.done and d.total is None:
            return d.arguments, True
    return None


def _with_value(info: EventInfo, value: str, args: bool) -> EventInfo:
    if args:
        return EventInfo(info.kind, info.text, info.finish, info.usage, info.error, info.ends_stream,
                         (info.tools[0]._replace(arguments=value),))  # fmt: skip
    return EventInfo(info.kind, value, info.finish, info.usage, info.error, info.ends_stream, info.tools)


def learn_template(raw: bytes, info: EventInfo, classify: Callable[[bytes], EventInfo | None]) -> Template | None:
    """A template from event ``raw`` (which classified as ``info``), confirmed by ``classify``
    (bytes of an event -> its classification); None when no shape can be proven."""
    target = _value_of(info)
    span = _payload_span(raw)
    if target is None or span is None:
        return None
    value, args = target
    a, b = span
    tokens: list[tuple[int, int, bool]] = []  # (start, end, is_string_value)
    for m in _TOKEN.finditer(raw, a, b):
        s, e = m.span()
        if raw[s] == 0x22:  # a string: a key when a colon follows
            rest = raw[e:b].lstrip(_WS)
            if rest.startswith(b":"):
                continue
            tokens.append((s, e, True))
        elif _INT.fullmatch(raw, s, e):
            tokens.append((s, e, False))
    slot = None
    for s, e, is_str in tokens:
        if not is_str:
            continue
        try:
            if json.loads(raw[s:e].decode("utf-8", "replace")) != value:
                continue
        except ValueError:
            continue
        ok = True
        for probe in _PROBES:
            text = _decode_slot(probe)
            if text is None or classify(raw[: s + 1] + probe + raw[e - 1 :]) != _with_value(info, text, args):
                ok = False
                break
        if ok:
            slot = (s, e)
            break
    if slot is None:
        return None
    holes = []
    for s, e, is_str in tokens:
        if is_str or s == slot[0]:
            continue
        if all(classify(raw[:s] + p + raw[e:]) == info for p in _INT_PROBES if p != raw[s:e]):
            holes.append((s, e))
    lits: list[bytes] = []
    kinds: list[bool] = []
    pos = 0
    for s, e in sorted([*holes, slot]):
        is_slot = s == slot[0]
        lits.append(raw[pos : s + 1] if is_slot else raw[pos:s])  # the slot's quotes stay literal
        kinds.append(is_slot)
        pos = e - 1 if is_slot else e
    lits.append(raw[pos:])
    delta = info.tools[0] if args else None
    usage = info.usage.to_dict() if info.usage is not None else None
    return Template(tuple(lits), tuple(kinds), args, delta, usage, info)


def _string_end(raw: bytes, pos: int) -> int:
    """Where the JSON string whose body starts at ``pos`` closes (its unescaped quote), or -1."""
    j = raw.find(b'"', pos)
    k = pos
    while j >= 0:
        b = raw.find(b"\\", k, j)
        if b < 0:
            return j
        k = b + 2
        if k > j:  # that quote is escaped: the string goes on
            j = raw.find(b'"', k)
    return -1


def match(t: Template, raw: bytes) -> str | None:
    """The slot's text when ``raw`` has template ``t``'s shape, else None (a hand-written matcher:
    compiling a regular expression per learnt shape costs more than a short stream saves)."""
    lits = t.lits
    if not raw.startswith(lits[0]) or not raw.endswith(lits[-1]):
        return None
    pos = len(lits[0])
    text = None
    for i, is_slot in enumerate(t.kinds):
        if is_slot:
            end = _string_end(raw, pos)
            if end <= pos:
                return None
            body = raw[pos:end]
            if _CTL.search(body) is not None:
                return None
            text = _decode_slot(body)
            if text is None:
                return None
        else:
            m = _INT.match(raw, pos)
            if m is None:
                return None
            end = m.end()
        lit = lits[i + 1]
        if not raw.startswith(lit, end):
            return None
        pos = end + len(lit)
    return text if pos == len(raw) else None


class LazyEvents:
    """The per-stream state of lazy classification: the templates learnt so far.

    :meth:`match` is the fast path: a template's text (or argument fragment) for an event of a
    known shape, else None; :meth:`classify` is the full one, which also learns shapes."""

    __slots__ = ("_failures", "_parse", "dialect", "enabled", "templates")

    def __init__(self, dialect: Dialect, decoder: Any) -> None:
        self.dialect = dialect
        self.templates: list[Template] = []
        self._failures = 0
        parse = getattr(decoder, "parse", None)
        self._parse: Callable[[bytes], SSEEvent | None] = parse if parse is not None else SSEDecoder.parse
        # SSE and NDJSON events are text with one JSON object; binary frames (Bedrock's
        # event-stream, whose CRC changes with every byte) never match a template: not tried
        self.enabled = isinstance(decoder, SSEDecoder) or type(decoder).__name__ == "NDJSONDecoder"

    def parse(self, raw: bytes) -> SSEEvent | None:
        return self._parse(raw)

    def match(self, raw: bytes) -> tuple[Template, str] | None:
        for t in self.templates:
            text = match(t, raw)
            if text is not None:
                return t, text
        return None

    def _classify_bytes(self, raw: bytes) -> EventInfo | None:
        try:
            ev = self._parse(raw)
            return None if ev is None else self.dialect.classify(ev)
        except Exception:  # a rewritten copy the dialect chokes on: that shape is not proven
            return None

    def classify(self, ev: SSEEvent) -> EventInfo:
        """The full classification of ``ev``; a content event may teach a new template."""
        info = self.dialect.classify(ev)
        if (
            self.enabled
            and len(self.templates) < MAX_TEMPLATES
            and self._failures < MAX_FAILURES
            and info.kind is EventKind.CONTENT
        ):
            t = learn_template(ev.raw, info, self._classify_bytes)
            if t is None:
                self._failures += 1
            else:
                self.templates.append(t)
        return info
