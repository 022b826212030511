"""Lane capabilities: what a lane accepts, and the conversation state it minted.

A fallback lane is rarely the same model as the premium one. It may have a smaller context
window, lack a feature the agent uses (tools, parallel tool calls, structured output, reasoning,
images), and it never accepts conversation state another deployment minted: a Responses
``previous_response_id`` it did not issue, an Anthropic thinking block signed elsewhere, a Gemini
``thoughtSignature`` from another model. Real providers answer each with a precise 400, and an
agent that fails over by forwarding the conversation as it is hits exactly that 400 on its first
attempt there.

:class:`Capabilities` is the profile's declaration (``lanes.<name>.capabilities``): the loader,
the JSON Schema and the docs read its fields' rules. :class:`LaneState` is what a simulated lane
keeps at run time: the key its signatures are made with and the response ids it issued; the
simulator asks it to admit each request (or reject it in the dialect's exact words) and to stamp
its answers with lane-bound state.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple

from .dialects.base import Dialect, ErrorKind, ErrorSpec, Rendered, RequestInfo

__all__ = [
    "CAP_RULES",
    "FEATURES",
    "Asked",
    "Capabilities",
    "capabilities_json_schema",
    "context_error",
    "family_of",
    "openai_rejection",
    "parse_capabilities",
    "rejection",
    "rejection_reason",
    "unsupported_error",
]

#: the features a lane may lack, in the order a request is checked for them
FEATURES = ("tools", "parallel_tool_calls", "structured_output", "reasoning", "images")


class CapRule(NamedTuple):
    """What a capability setting accepts (the loader's check, the schema and the docs)."""

    types: tuple[type, ...]
    want: str
    doc: str


def _cap(default: Any, types: tuple[type, ...], want: str, doc: str) -> Any:
    return field(default=default, metadata={"rule": CapRule(types, want, doc)})


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a lane accepts. Every feature is on unless the profile turns it off, so a lane
    without ``capabilities:`` behaves as before."""

    max_context_tokens: int | None = _cap(
        None,
        (int, type(None)),
        "an integer >= 1, or null for no limit",
        "the context window: a conversation over it gets the dialect's context-length error",
    )
    tools: bool = _cap(True, (bool,), "true or false", "accepts function tools")
    parallel_tool_calls: bool = _cap(True, (bool,), "true or false", "accepts the parallel_tool_calls parameter")
    structured_output: bool = _cap(
        True, (bool,), "true or false", "accepts structured output (response_format, text.format, JSON mode)"
    )
    reasoning: bool = _cap(
        True,
        (bool,),
        "true or false",
        "accepts reasoning / thinking, and then mints thinking signatures and thought signatures",
    )
    images: bool = _cap(True, (bool,), "true or false", "accepts image inputs")
    prompt_cache: bool = _cap(
        True,
        (bool,),
        "true or false",
        "caches repeated prompt prefixes (OpenAI, Gemini: always; Anthropic: where the request marks cache_control)",
    )
    cache_min_tokens: int = _cap(1024, (int,), "an integer >= 1", "the shortest prefix the cache keeps, in tokens")
    cache_ttl: float = _cap(
        300.0, (int, float), "a number of seconds > 0", "how long an unused prefix stays cached (profile seconds)"
    )


#: every capability's rule, by name, in declaration order
CAP_RULES: dict[str, CapRule] = {f.name: f.metadata["rule"] for f in fields(Capabilities)}


def parse_capabilities(raw: Any, error: Callable[[tuple[str, ...], str], Exception]) -> Capabilities:
    """``raw`` (a profile's ``capabilities:`` mapping) checked against :data:`CAP_RULES`;
    ``error(path, message)`` builds the exception for the bad key (the loader's file:line one)."""
    if raw is None:
        return Capabilities()
    if not isinstance(raw, dict):
        raise error((), "must be a mapping of capabilities (max_context_tokens:, tools:, ...)")
    for key, value in raw.items():
        rule = CAP_RULES.get(key)
        if rule is None:
            raise error((str(key),), f"unknown capability; expected one of {', '.join(CAP_RULES)}")
        ok = isinstance(value, rule.types) and (bool not in rule.types) == (not isinstance(value, bool))
        if ok and key in ("max_context_tokens", "cache_min_tokens") and value is not None:
            ok = value >= 1
        if ok and key == "cache_ttl":
            ok = math.isfinite(value) and value > 0
        if not ok:
            raise error((str(key),), f"must be {rule.want} (got {value!r})")
    return Capabilities(**raw)


def capabilities_json_schema() -> dict[str, Any]:
    """The JSON Schema of ``capabilities:``, from the same rules."""
    props: dict[str, Any] = {}
    defaults = Capabilities()
    for name, rule in CAP_RULES.items():
        if rule.types == (bool,):
            prop: dict[str, Any] = {"type": "boolean"}
        elif rule.types == (int, float):
            prop = {"type": "number", "exclusiveMinimum": 0}
        elif type(None) in rule.types:
            prop = {"type": ["integer", "null"], "minimum": 1}
        else:
            prop = {"type": "integer", "minimum": 1}
        prop["description"] = rule.doc
        prop["default"] = getattr(defaults, name)
        props[name] = prop
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": props,
        "description": "What the lane accepts: its context window, its features; lane-bound state is always checked.",
    }


# -- which API family a dialect belongs to ------------------------------------------------------
_FAMILY = {
    "openai": "chat",
    "openai-chat": "chat",
    "vllm": "chat",
    "ollama": "chat",
    "azure": "chat",
    "openrouter": "chat",
    "openai-responses": "responses",
    "anthropic": "anthropic",
    "gemini": "gemini",
    "vertex": "gemini",
}


def family_of(dialect: str) -> str | None:
    """``chat``, ``responses``, ``anthropic`` or ``gemini``; None for a dialect whose
    capability errors are not modelled (Bedrock)."""
    return _FAMILY.get(dialect)


# -- what a request asks for ----------------------------------------------------------------------
@dataclass(slots=True)
class Asked:
    """What one request uses that a lane may refuse: features (with the parameter that asks for
    each), the lane-bound state it carries, and whether it asks for thinking."""

    features: list[tuple[str, str]] = field(default_factory=list)
    thinking: bool = False
    previous_response_id: str | None = None
    #: Anthropic thinking blocks: (message index, block index, thinking text, signature)
    signed_blocks: list[tuple[int, int, str, str]] = field(default_factory=list)
    #: Gemini model parts: (content index, part index, function name or "", signature or None)
    thought_parts: list[tuple[int, int, str, str | None]] = field(default_factory=list)
    #: the request body, and whether it marks a prompt-cache breakpoint (Anthropic's opt-in)
    body: dict[str, Any] | None = None
    cache_marked: bool = False


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _ask_chat(obj: dict[str, Any], a: Asked) -> None:
    if obj.get("tools") or obj.get("functions"):
        a.features.append(("tools", "tools"))
    if "parallel_tool_calls" in obj:
        a.features.append(("parallel_tool_calls", "parallel_tool_calls"))
    rf = obj.get("response_format")
    if isinstance(rf, dict) and rf.get("type") in ("json_schema", "json_object"):
        a.features.append(("structured_output", f"response_format:{rf['type']}"))
    if obj.get("reasoning_effort") is not None:
        a.features.append(("reasoning", "reasoning_effort"))
        a.thinking = True
    for i, m in enumerate(_items(obj.get("messages"))):
        for j, part in enumerate(_items(m.get("content") if isinstance(m, dict) else None)):
            if isinstance(part, dict) and part.get("type") == "image_url":
                a.features.append(("images", f"messages.[{i}].content.[{j}].type"))


def _ask_responses(obj: dict[str, Any], a: Asked) -> None:
    if obj.get("tools"):
        a.features.append(("tools", "tools"))
    if "parallel_tool_calls" in obj:
        a.features.append(("parallel_tool_calls", "parallel_tool_calls"))
    fmt = (obj.get("text") or {}).get("format") if isinstance(obj.get("text"), dict) else None
    if isinstance(fmt, dict) and fmt.get("type") in ("json_schema", "json_object"):
        a.features.append(("structured_output", f"text.format:{fmt['type']}"))
    reasoning = obj.get("reasoning")
    if isinstance(reasoning, dict) and reasoning.get("effort") is not None:
        a.features.append(("reasoning", "reasoning.effort"))
        a.thinking = True
    for i, item in enumerate(_items(obj.get("input"))):
        for j, part in enumerate(_items(item.get("content") if isinstance(item, dict) else None)):
            if isinstance(part, dict) and part.get("type") == "input_image":
                a.features.append(("images", f"input[{i}].content[{j}]"))
    prev = obj.get("previous_response_id")
    if isinstance(prev, str) and prev:
        a.previous_response_id = prev


def _ask_anthropic(obj: dict[str, Any], a: Asked) -> None:
    if obj.get("tools"):
        a.features.append(("tools", "tools"))
    if "output_format" in obj:
        a.features.append(("structured_output", "output_format"))
    thinking = obj.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") == "enabled":
        a.features.append(("reasoning", "thinking"))
        a.thinking = True
    for i, m in enumerate(_items(obj.get("messages"))):
        if not isinstance(m, dict):
            continue
        for j, block in enumerate(_items(m.get("content"))):
            if not isinstance(block, dict):
                continue
            if block.get("type") == "image" and m.get("role") == "user":
                a.features.append(("images", f"messages.{i}.content.{j}"))
            if m.get("role") == "assistant" and block.get("type") == "thinking":
                a.signed_blocks.append((i, j, str(block.get("thinking") or ""), str(block.get("signature") or "")))


def _ask_gemini(obj: dict[str, Any], a: Asked) -> None:
    if any(
        isinstance(t, dict) and (t.get("functionDeclarations") or t.get("function_declarations"))
        for t in _items(obj.get("tools"))
    ):
        a.features.append(("tools", "tools"))
    cfg = obj.get("generationConfig") or obj.get("generation_config") or {}
    if isinstance(cfg, dict):
        mime = cfg.get("responseMimeType") or cfg.get("response_mime_type")
        if mime == "application/json" or cfg.get("responseSchema") or cfg.get("responseJsonSchema"):
            a.features.append(("structured_output", "generationConfig.responseMimeType"))
        if cfg.get("thinkingConfig") or cfg.get("thinking_config"):
            a.features.append(("reasoning", "generationConfig.thinkingConfig"))
            a.thinking = True
    for i, c in enumerate(_items(obj.get("contents"))):
        if not isinstance(c, dict):
            continue
        for j, part in enumerate(_items(c.get("parts"))):
            if not isinstance(part, dict):
                continue
            blob = part.get("inlineData") or part.get("inline_data")
            if isinstance(blob, dict) and str(blob.get("mimeType") or blob.get("mime_type") or "").startswith("image/"):
                a.features.append(("images", f"contents[{i}].parts[{j}]"))
            if c.get("role") == "model":
                fc = part.get("functionCall") or part.get("function_call")
                sig = part.get("thoughtSignature", part.get("thought_signature"))
                name = str(fc.get("name") or "") if isinstance(fc, dict) else ""
                if isinstance(fc, dict) or sig is not None:
                    a.thought_parts.append((i, j, name, str(sig) if sig is not None else None))


_ASK = {"chat": _ask_chat, "responses": _ask_responses, "anthropic": _ask_anthropic, "gemini": _ask_gemini}


def asked(family: str, body: bytes) -> Asked:
    """What the request body asks for (a body that is no JSON object asks for nothing)."""
    a = Asked()
    try:
        obj = json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError):
        return a
    if isinstance(obj, dict):
        _ASK[family](obj, a)
        a.body = obj
        a.cache_marked = b'"cache_control"' in body
    return a


# -- the providers' words for each rejection ------------------------------------------------------
_UNSUPPORTED_OPENAI = "Unsupported parameter: '{param}' is not supported with this model."
_INVALID_OPENAI = "Invalid parameter: '{param}' of type '{kind}' is not supported with this model."
_ANTHROPIC_EXTRA = "{param}: Extra inputs are not permitted"
_GEMINI_FEATURE = {
    "tools": "Function calling is not enabled for models/{model}",
    "structured_output": "JSON mode is not enabled for models/{model}",
    "reasoning": "Thinking is not supported by this model.",
    "images": "Image input modality is not enabled for models/{model}",
}

#: messages (and codes) that say a request was refused for what the lane is, not how it is doing:
#: the check ``fallback_compatible`` reads them from the journal (real providers' too)
_REASONS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "context_length",
        re.compile(
            "|".join(
                (
                    "context_length_exceeded",
                    "maximum context length",
                    "exceeds the context window",
                    "prompt is too long",
                    r"input token count .* exceeds the maximum",
                )
            )
        ),
    ),
    (
        "foreign_state",
        re.compile(
            "|".join(
                (
                    "previous_response_not_found",
                    "Previous response with id",
                    r"Invalid `signature` in `thinking` block",
                    "Corrupted thought signature",
                    "missing a thought_signature",
                )
            )
        ),
    ),
    (
        "unsupported_feature",
        re.compile(
            "|".join(
                (
                    "unsupported_parameter",
                    "is not supported with this model",
                    "Extra inputs are not permitted",
                    "is not enabled for models/",
                    "Thinking is not supported",
                    "Image input is not supported",
                    "image_url is only supported by certain models",
                )
            )
        ),
    ),
)


def rejection_reason(error: dict[str, Any] | None) -> str | None:
    """``context_length``, ``foreign_state`` or ``unsupported_feature`` when a journaled error
    (``Attempt.error``: type, code, status, message) is a capability or lane-state rejection."""
    if not error:
        return None
    text = " ".join(str(error.get(k) or "") for k in ("code", "message"))
    for reason, pattern in _REASONS:
        if pattern.search(text):
            return reason
    return None


def rejection(
    dialect: Dialect, req: RequestInfo, message: str, kind: ErrorKind = ErrorKind.INVALID_REQUEST
) -> Rendered:
    return dialect.render_error(ErrorSpec(kind, status=400, message=message), req)


def openai_rejection(
    dialect: Dialect,
    req: RequestInfo,
    message: str,
    param: str | None,
    code: str | None,
    kind: ErrorKind = ErrorKind.INVALID_REQUEST,
) -> Rendered:
    """OpenAI's 400 with its ``param`` and ``code`` (the shared renderer leaves both generic)."""
    r = rejection(dialect, req, message, kind)
    try:
        obj = json.loads(r.body)
    except ValueError:
        return r
    if isinstance(obj, dict) and isinstance(obj.get("error"), dict):
        obj["error"].update(param=param, code=code)
        return Rendered(r.status, r.headers, json.dumps(obj).encode())
    return r


def unsupported_error(family: str, feature: str, param: str, req: RequestInfo, dialect: Dialect) -> Rendered:
    model = req.model or "the-model"
    if family in ("chat", "responses"):
        name, _, kind = param.partition(":")
        if kind:
            return openai_rejection(dialect, req, _INVALID_OPENAI.format(param=name, kind=kind), name, None)
        if feature == "images":
            msg = "Invalid content type. image_url is only supported by certain models."
            return openai_rejection(dialect, req, msg, name, "invalid_value")
        return openai_rejection(dialect, req, _UNSUPPORTED_OPENAI.format(param=name), name, "unsupported_parameter")
    if family == "anthropic":
        if feature == "images":
            return rejection(dialect, req, f"{param}: Image input is not supported by this model.")
        return rejection(dialect, req, _ANTHROPIC_EXTRA.format(param=param))
    return rejection(dialect, req, _GEMINI_FEATURE[feature].format(model=model))


def context_error(family: str, tokens: int, limit: int, req: RequestInfo, dialect: Dialect) -> Rendered:
    if family == "chat":
        msg = (
            f"This model's maximum context length is {limit} tokens. However, your messages resulted in "
            f"{tokens} tokens. Please reduce the length of the messages."
        )
        return openai_rejection(dialect, req, msg, "messages", "context_length_exceeded", ErrorKind.CONTEXT_LENGTH)
    if family == "responses":
        msg = "Your input exceeds the context window of this model. Please adjust your input and try again."
        return openai_rejection(dialect, req, msg, "input", "context_length_exceeded", ErrorKind.CONTEXT_LENGTH)
    if family == "anthropic":
        msg = f"prompt is too long: {tokens} tokens > {limit} maximum"
    else:
        msg = f"The input token count ({tokens}) exceeds the maximum number of tokens allowed ({limit})."
    return rejection(dialect, req, msg, ErrorKind.CONTEXT_LENGTH)
