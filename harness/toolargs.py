"""Deterministic tool-call arguments, and the fragments a stream carries them in.

The simulator answers a tool call with arguments made from the request's seed to the tool's
schema (:func:`make_arguments`), so the same request gets the same call on every lane and every
run, and streams them in fragments of :data:`FRAGMENT_CHARS` (:func:`fragments`), so a fault can
name a point inside them. Import them from :mod:`harness.toolcalls`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from .canonical import canonical_tokens
from .toolspec import ToolSpec, resolve_schema, schema_types

__all__ = ["FRAGMENT_CHARS", "fragment_count", "fragments", "make_arguments"]


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
        s = resolve_schema(schema, self.root) or {}
        if depth > 8:
            return None if "null" in schema_types(s) else {}
        if "const" in s:
            return s["const"]
        enum = s.get("enum")
        if isinstance(enum, list) and enum:
            return enum[self.words.number() % len(enum)]
        alts = s.get("anyOf") or s.get("oneOf")
        if isinstance(alts, list) and alts:
            pick = next((a for a in alts if "null" not in schema_types(resolve_schema(a, self.root) or {})), alts[0])
            return self.value(pick, depth + 1)
        if isinstance(s.get("allOf"), list) and s["allOf"]:
            merged: dict[str, Any] = {}
            for part in s["allOf"]:
                r = resolve_schema(part, self.root) or {}
                merged.update({k: v for k, v in r.items() if k not in ("properties", "required")})
                merged.setdefault("properties", {}).update(r.get("properties") or {})
                merged.setdefault("required", []).extend(r.get("required") or [])
            return self.value({**{k: v for k, v in s.items() if k != "allOf"}, **merged}, depth + 1)
        types = [t for t in schema_types(s) if t != "null"] or (
            ["object"] if "properties" in s else ["array"] if "items" in s else ["string"]
        )
        kind = types[0]
        if kind == "object":
            out: dict[str, Any] = {}
            props = s.get("properties") if isinstance(s.get("properties"), Mapping) else {}
            for name, sub in props.items():
                out[name] = self.value(sub, depth + 1)
                if isinstance(out[name], str) and self._free(sub):
                    self.growable.append((out, name, _int((resolve_schema(sub, self.root) or {}).get("maxLength"))))
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
        s = resolve_schema(schema, self.root) or {}
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
