"""What a tool call is, in every dialect's common terms, and when its arguments are valid.

The types (:class:`ToolSpec`, :class:`ToolCall`, :class:`ToolDelta`, :class:`ToolEdit`) and the
canonical form of arguments every comparison uses, apart from the code that makes arguments
(:mod:`harness.toolargs`) and adds up an answer's calls (:mod:`harness.toolcalls`), so that both
import them without an import circle. Import them from :mod:`harness.toolcalls`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

__all__ = [
    "ALL_DONE",
    "ToolCall",
    "ToolDelta",
    "ToolEdit",
    "ToolSpec",
    "args_sha",
    "arguments_valid",
    "canonical_arguments",
    "resolve_schema",
    "schema_types",
    "whole_tool_deltas",
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


def schema_types(schema: Mapping[str, Any]) -> list[str]:
    """The JSON types a schema names (``type: [string, "null"]`` as two), lower-cased."""
    t = schema.get("type")
    names = t if isinstance(t, list) else [t] if isinstance(t, str) else []
    out = [str(n).lower() for n in names]
    if schema.get("nullable") is True and "null" not in out:
        out.append("null")
    return out


def resolve_schema(schema: Any, root: Mapping[str, Any]) -> Mapping[str, Any] | None:
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
    s = resolve_schema(schema, root)
    if s is None or depth > 32:
        return True  # unknown: never "invalid"
    alts = s.get("anyOf") or s.get("oneOf")
    if isinstance(alts, list) and alts and not any(_valid(value, a, root, depth + 1) for a in alts):
        return False
    for part in s.get("allOf") or []:
        if not _valid(value, part, root, depth + 1):
            return False
    types = schema_types(s)
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


def whole_tool_deltas(uses: list[dict[str, Any]], id_key: str, finish: str | None) -> tuple[ToolDelta, ...]:
    """The tool calls of a whole (non-streamed) answer as deltas, one per call: ``uses`` are the
    answer's call objects (Anthropic's ``tool_use`` blocks, Bedrock's ``toolUse``), ``id_key``
    names their id field, and a token-limit finish (``length``) leaves the last call unfinished."""
    n = len(uses)
    return tuple(
        ToolDelta(
            i,
            u.get(id_key),
            u.get("name"),
            json.dumps(u.get("input"), ensure_ascii=False),
            i < n - 1 or finish != "length",
        )
        for i, u in enumerate(uses)
    )
