"""Tool use on Bedrock's ``Converse`` / ``ConverseStream``, as botocore's service model spells it.

A request offers tools in ``toolConfig.tools[].toolSpec`` (``name``, ``inputSchema.json``) and
picks with ``toolConfig.toolChoice`` (``auto``, ``any`` or ``tool: {name}``; there is no
"none"). An answer's call is a ``toolUse`` content block ``{toolUseId, name, input}`` with
``stopReason: tool_use``; the client sends the result back as a ``toolResult`` block
``{toolUseId, content: [{text} | {json}], status}`` in a user message. A conversation that holds
either block without a ``toolConfig`` is refused, as Bedrock refuses it.

In a stream a call is ``contentBlockStart`` with ``start.toolUse`` (id and name), then
``contentBlockDelta`` with ``delta.toolUse.input``, a *string* fragment of the arguments' JSON,
then ``contentBlockStop``; blocks are numbered by ``contentBlockIndex``, which is the index the
journal's :class:`~harness.toolcalls.ToolDelta` carries. Kept apart from :mod:`.bedrock` only to
keep each module short; nothing here knows the framing.
"""

from __future__ import annotations

import json
from typing import Any

from ..toolcalls import Conversation, ToolCall, ToolDelta, ToolEdit, ToolSpec, whole_tool_deltas
from .base import BadRequest, text_of

__all__ = [
    "body_tool_deltas",
    "converse_conversation",
    "converse_tools",
    "edit_converse_call",
    "input_of",
    "stream_tool_delta",
    "tool_use_id",
    "tool_uses",
]

_NO_TOOL_CONFIG = "The toolConfig field must be defined when using toolUse and toolResult content blocks."


def tool_use_id(call: ToolCall) -> str:
    """A ``toolUseId`` as Bedrock writes one (``tooluse_`` and 22 characters)."""
    return "tooluse_" + call.key[:22]


def input_of(arguments: str) -> dict[str, Any]:
    """A ``toolUse`` block's ``input``: a whole body always carries a JSON document, so arguments
    that do not parse (cut by the token limit, or broken) arrive as an empty object."""
    try:
        value = json.loads(arguments)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def converse_conversation(data: dict[str, Any], conv: Conversation) -> bool:
    """The request's messages into ``conv`` in Chat Completions' shape, for a fingerprint shared
    with every dialect (as ``anthropic._message``): each ``toolResult`` block is its own ``tool``
    turn, an assistant's ``toolUse`` blocks are its tool calls, the text blocks the message's
    own turn. True when some message holds a ``toolUse`` or ``toolResult`` block."""
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest(
            "A conversation must start with a user message. "
            "Try again with a conversation that starts with a user message."
        )
    conv.add("system", "\n".join(text_of(b.get("text")) for b in data.get("system") or [] if isinstance(b, dict)))
    uses_tools = False
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or msg.get("role") not in ("user", "assistant"):
            raise BadRequest(
                f"1 validation error detected: Value at 'messages.{i + 1}.member.role' failed to satisfy constraint"
            )
        role, content = msg["role"], msg.get("content")
        if not isinstance(content, list):
            conv.add(role, text_of(content))
            continue
        blocks = [b for b in content if isinstance(b, dict)]
        results = [b["toolResult"] for b in blocks if isinstance(b.get("toolResult"), dict)]
        calls = [b["toolUse"] for b in blocks if isinstance(b.get("toolUse"), dict)]
        texts = [b["text"] for b in blocks if isinstance(b.get("text"), str)]
        uses_tools = uses_tools or bool(results or calls)
        for r in results:
            conv.add_result(r.get("toolUseId"), None, _result_text(r.get("content")))
        if calls and role == "assistant":
            conv.add_calls(
                [(c.get("toolUseId"), str(c.get("name") or ""), c.get("input") or {}) for c in calls], "\n".join(texts)
            )
        elif texts or not results:
            conv.add(role, "\n".join(texts))
    return uses_tools


def _result_text(content: Any) -> str:
    parts = []
    for block in content if isinstance(content, list) else []:
        if isinstance(block, dict) and isinstance(block.get("text"), str):
            parts.append(block["text"])
        elif isinstance(block, dict) and "json" in block:
            parts.append(json.dumps(block["json"], ensure_ascii=False))
    return "\n".join(parts)


def converse_tools(data: dict[str, Any], uses_tools: bool) -> tuple[tuple[ToolSpec, ...], str, str | None]:
    """The tools ``toolConfig`` offers and its choice (``auto``, ``required``, one forced tool)."""
    config = data.get("toolConfig")
    if config is None:
        if uses_tools:
            raise BadRequest(_NO_TOOL_CONFIG)
        return (), "auto", None
    if not isinstance(config, dict) or not isinstance(config.get("tools"), list) or not config["tools"]:
        raise BadRequest(
            "1 validation error detected: Value at 'toolConfig.tools' failed to satisfy constraint: "
            "Member must have length greater than or equal to 1"
        )
    specs: list[ToolSpec] = []
    for i, tool in enumerate(config["tools"]):
        spec = tool.get("toolSpec") if isinstance(tool, dict) else None
        if not isinstance(spec, dict):
            continue  # a cachePoint, or a system tool: nothing the simulator calls
        name = spec.get("name")
        schema = (spec.get("inputSchema") or {}).get("json") if isinstance(spec.get("inputSchema"), dict) else None
        if not isinstance(name, str) or not name or not isinstance(schema, dict):
            raise BadRequest(
                f"1 validation error detected: Value at 'toolConfig.tools.{i + 1}.member.toolSpec' failed to "
                "satisfy constraint: Member must not be null"
            )
        specs.append(ToolSpec(name, schema))
    choice = config.get("toolChoice") if isinstance(config.get("toolChoice"), dict) else {}
    if "any" in choice:
        return tuple(specs), "required", None
    tool = choice.get("tool")
    if isinstance(tool, dict) and isinstance(tool.get("name"), str):
        return tuple(specs), "required", tool["name"]
    return tuple(specs), "auto", None


def tool_uses(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``toolUse`` blocks of a whole Converse body, in order."""
    try:
        content = obj["output"]["message"]["content"]
    except (KeyError, TypeError):
        return []
    if not isinstance(content, list):
        return []
    return [b["toolUse"] for b in content if isinstance(b, dict) and isinstance(b.get("toolUse"), dict)]


def body_tool_deltas(obj: dict[str, Any], finish: str | None) -> tuple[ToolDelta, ...]:
    """The whole calls of a body; ``max_tokens`` cut the last one."""
    return whole_tool_deltas(tool_uses(obj), "toolUseId", finish)


def stream_tool_delta(event_type: str, obj: dict[str, Any]) -> ToolDelta | None:
    """What one ConverseStream event says about a call (None: nothing)."""
    index = obj.get("contentBlockIndex")
    index = index if isinstance(index, int) else 0
    if event_type == "contentBlockDelta":
        use = (obj.get("delta") or {}).get("toolUse")
        return ToolDelta(index, arguments=str(use.get("input") or "")) if isinstance(use, dict) else None
    if event_type == "contentBlockStart":
        use = (obj.get("start") or {}).get("toolUse")
        return ToolDelta(index, use.get("toolUseId"), use.get("name")) if isinstance(use, dict) else None
    if event_type == "contentBlockStop":
        return ToolDelta(index, done=True)
    return None


def edit_converse_call(obj: dict[str, Any], edit: ToolEdit, body: bool) -> bool:
    """:meth:`Dialect.edit_tool_call` for Converse: a body's ``toolUse`` block, or the stream
    event of block ``edit.index`` that names the call or carries a fragment of its input."""
    if body:
        uses = tool_uses(obj)
        if edit.index >= len(uses):
            return False
        if edit.name is not None:
            uses[edit.index]["name"] = edit.name
        if edit.arguments is not None:
            uses[edit.index]["input"] = input_of(edit.arguments)
        if edit.cut:
            later = {id(u) for u in uses[edit.index + 1 :]}
            content = obj["output"]["message"]["content"]
            obj["output"]["message"]["content"] = [
                b for b in content if not (isinstance(b, dict) and id(b.get("toolUse")) in later)
            ]
            obj["stopReason"] = "max_tokens"
        return True
    if obj.get("contentBlockIndex") != edit.index:
        return False
    start = (obj.get("start") or {}).get("toolUse") if isinstance(obj.get("start"), dict) else None
    if isinstance(start, dict):
        if edit.name is None:
            return False
        start["name"] = edit.name
        return True
    use = (obj.get("delta") or {}).get("toolUse") if isinstance(obj.get("delta"), dict) else None
    if isinstance(use, dict) and edit.fragment is not None:
        use["input"] = edit.fragment
        return True
    return False
