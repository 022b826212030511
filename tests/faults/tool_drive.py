"""One step of an agent loop through each SDK surface, reporting what the SDK parsed: the tool
calls (name and arguments as text), the finish reason, or the exception it raised."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import anthropic
import openai

from harness.lanes import BackgroundLanes, LaneSet
from harness.profile import profile_from_dict

TOOLS = {
    "read_file": {
        "type": "object",
        "properties": {"path": {"type": "string"}, "lines": {"type": "integer"}},
        "required": ["path", "lines"],
    },
}
ASK = "Read the failing test."
SURFACES = (
    "chat",
    "chat_stream",
    "responses",
    "responses_stream",
    "anthropic",
    "anthropic_stream",
    "gemini",
    "gemini_stream",
)
LANE_DIALECT = {"chat": "openai", "responses": "openai", "anthropic": "anthropic", "gemini": "gemini"}
SIM = {"tokens_per_second": 2000, "ttft": 0.0, "tool_steps": 1, "tool_arguments_chars": 60}


def dialect_of(surface: str) -> str:
    return LANE_DIALECT[surface.removesuffix("_stream")]


def start(surface: str, fault: dict[str, Any] | None, *, forwarded: bool = False, **sim: Any) -> BackgroundLanes:
    """A lane ``lane`` with ``fault`` on it, whose upstream is the simulator, or (``forwarded``)
    another lane over a socket, so the fault acts on a real upstream's events."""
    d = dialect_of(surface)
    faults = [{**fault, "lane": "lane"}] if fault else []
    if not forwarded:
        lanes = {"lane": {"dialect": d, "simulator": {**SIM, **sim}}}
        return BackgroundLanes(LaneSet(profile_from_dict({"lanes": lanes, "faults": faults}))).start()
    origin = BackgroundLanes(
        LaneSet(profile_from_dict({"lanes": {"origin": {"dialect": d, "simulator": {**SIM, **sim}}}}))
    ).start()
    lanes = {"lane": {"dialect": d, "upstream": origin.urls["origin"]}}
    front = BackgroundLanes(LaneSet(profile_from_dict({"lanes": lanes, "faults": faults}))).start()
    front._origin = origin  # type: ignore[attr-defined]  # stopped with the front lane by stop()
    return front


def stop(bg: BackgroundLanes) -> None:
    bg.stop()
    origin = getattr(bg, "_origin", None)
    if origin is not None:
        origin.stop()


def only_attempt(bg: BackgroundLanes) -> Any:
    """The one attempt of lane ``lane``, once it is journaled."""
    assert bg.journal.wait_for(1)
    (a,) = bg.journal.attempts("lane")
    return a


@dataclass
class Step:
    calls: list[tuple[str, str]] = field(default_factory=list)  # (name, arguments as text)
    finish: str | None = None
    exc: BaseException | None = None


def step(surface: str, url: str) -> Step:
    out = Step()
    try:
        _DRIVERS[surface](url, out)
    except Exception as exc:  # what the SDK raised is part of what it saw
        out.exc = exc
    return out


def _chat(url: str, out: Step, stream: bool) -> None:
    client = openai.OpenAI(base_url=url + "/v1", api_key="sk-test", max_retries=0)
    kw: dict[str, Any] = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": ASK}],
        "tools": [{"type": "function", "function": {"name": n, "parameters": p}} for n, p in TOOLS.items()],
    }
    if stream:
        with client.chat.completions.stream(**kw) as s:
            for _ in s:
                pass
            r = s.get_final_completion()
    else:
        r = client.chat.completions.create(**kw)
    choice = r.choices[0]
    out.finish = choice.finish_reason
    out.calls = [(tc.function.name, tc.function.arguments) for tc in choice.message.tool_calls or []]


def _responses(url: str, out: Step, stream: bool) -> None:
    client = openai.OpenAI(base_url=url + "/v1", api_key="sk-test", max_retries=0)
    kw: dict[str, Any] = {
        "model": "gpt-5",
        "input": ASK,
        "tools": [{"type": "function", "name": n, "parameters": p, "strict": False} for n, p in TOOLS.items()],
    }
    if stream:
        done = []
        with client.responses.stream(**kw) as s:
            for ev in s:
                if ev.type == "response.function_call_arguments.done":
                    done.append(ev.arguments)
            r = s.get_final_response()
        assert done == [o.arguments for o in r.output if o.type == "function_call"]
    else:
        r = client.responses.create(**kw)
    out.finish = r.status
    out.calls = [(o.name, o.arguments) for o in r.output if o.type == "function_call"]


def _anthropic(url: str, out: Step, stream: bool) -> None:
    client = anthropic.Anthropic(base_url=url, api_key="sk-ant-test", max_retries=0)
    kw: dict[str, Any] = {
        "model": "claude-opus-4-6",
        "max_tokens": 512,
        "messages": [{"role": "user", "content": ASK}],
        "tools": [{"name": n, "input_schema": p} for n, p in TOOLS.items()],
    }
    if stream:
        with client.messages.stream(**kw) as s:
            for _ in s:
                pass
            msg = s.get_final_message()
    else:
        msg = client.messages.create(**kw)
    out.finish = msg.stop_reason
    out.calls = [(b.name, json.dumps(b.input)) for b in msg.content if b.type == "tool_use"]


def _gemini(url: str, out: Step, stream: bool) -> None:
    from google import genai
    from google.genai import types

    client = genai.Client(api_key="AIza-test", http_options=types.HttpOptions(base_url=url))
    decls = [types.FunctionDeclaration(name=n, parameters_json_schema=p) for n, p in TOOLS.items()]
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=decls)],
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    chunks = (
        list(client.models.generate_content_stream(model="gemini-2.5-flash", contents=ASK, config=config))
        if stream
        else [client.models.generate_content(model="gemini-2.5-flash", contents=ASK, config=config)]
    )
    for c in chunks:
        out.calls += [(fc.name, json.dumps(fc.args)) for fc in c.function_calls or []]
        if c.candidates and c.candidates[0].finish_reason:
            out.finish = c.candidates[0].finish_reason.value


_DRIVERS = {
    "chat": lambda url, out: _chat(url, out, False),
    "chat_stream": lambda url, out: _chat(url, out, True),
    "responses": lambda url, out: _responses(url, out, False),
    "responses_stream": lambda url, out: _responses(url, out, True),
    "anthropic": lambda url, out: _anthropic(url, out, False),
    "anthropic_stream": lambda url, out: _anthropic(url, out, True),
    "gemini": lambda url, out: _gemini(url, out, False),
    "gemini_stream": lambda url, out: _gemini(url, out, True),
}
