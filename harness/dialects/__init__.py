"""Provider dialects, by the name used in profiles.

A lane speaks one dialect name; ``openai`` serves both Chat Completions and Responses on the
same lane, as api.openai.com does. The clouds and aggregators serve what they serve: ``azure``
Chat Completions and Responses on Azure's paths, ``bedrock`` Converse and InvokeModel (Anthropic
on Bedrock), ``vertex`` Gemini and Anthropic on Vertex AI, ``openrouter`` its OpenAI-compatible
API, and ``ollama`` both its OpenAI-compatible ``/v1`` and its native ``/api/chat`` and
``/api/generate``.
"""

from __future__ import annotations

from collections.abc import Callable

from .base import BadRequest, Completion, Dialect, ErrorKind, ErrorSpec, Event, EventKind, RequestInfo, Usage

__all__ = [
    "DIALECT_NAMES",
    "BadRequest",
    "Completion",
    "Dialect",
    "ErrorKind",
    "ErrorSpec",
    "Event",
    "EventKind",
    "RequestInfo",
    "Usage",
    "dialects_for",
]


def _openai_chat(variant: str = "openai") -> Callable[[], list[Dialect]]:
    def make() -> list[Dialect]:
        from .openai_chat import OpenAIChat

        return [OpenAIChat(variant)]

    return make


def _responses() -> list[Dialect]:
    from .openai_responses import OpenAIResponses

    return [OpenAIResponses()]


def _openai_both() -> list[Dialect]:
    return _openai_chat()() + _responses()


def _anthropic() -> list[Dialect]:
    from .anthropic import AnthropicMessages

    return [AnthropicMessages()]


def _gemini() -> list[Dialect]:
    from .gemini import Gemini

    return [Gemini()]


def _ollama() -> list[Dialect]:
    from .ollama_native import OllamaNative

    return [*_openai_chat("ollama")(), OllamaNative()]


def _bedrock() -> list[Dialect]:
    from .bedrock import BedrockConverse
    from .bedrock_invoke import BedrockInvoke

    return [BedrockConverse(), BedrockInvoke()]


def _vertex() -> list[Dialect]:
    from .vertex import VertexAnthropic, VertexGemini

    return [VertexGemini(), VertexAnthropic()]


def _azure() -> list[Dialect]:
    from .azure import AzureChat, AzureResponses

    return [AzureChat(), AzureResponses()]


def _openrouter() -> list[Dialect]:
    from .openrouter import OpenRouterChat

    return [OpenRouterChat()]


_REGISTRY: dict[str, Callable[[], list[Dialect]]] = {
    "openai": _openai_both,
    "openai-chat": _openai_chat(),
    "openai-responses": _responses,
    "anthropic": _anthropic,
    "gemini": _gemini,
    "vllm": _openai_chat("vllm"),
    "ollama": _ollama,
    "azure": _azure,
    "openrouter": _openrouter,
    "bedrock": _bedrock,
    "vertex": _vertex,
}

DIALECT_NAMES: tuple[str, ...] = tuple(_REGISTRY)


def dialects_for(name: str) -> list[Dialect]:
    """The dialect instances a lane named with ``name`` serves; ValueError names the choices."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown dialect {name!r}; choose one of: {', '.join(DIALECT_NAMES)}") from None
    return factory()
