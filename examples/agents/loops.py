"""The reference agent loop: a real-time coding agent on a premium lane with fallback.

One **episode** is one task: the agent asks the model, runs the tool calls the answer asks for
(each tool takes ``tool_time`` seconds, like tests or a build), sends the results back, and asks
again, until the answer is text. Every step is routed by the reference :class:`Router` (premium
lane first, bounded retries, fallback to the stable lane, circuit breakers, the stream watchdog),
so a step that fails on the premium lane is asked again on the stable lane **in the same episode**:
the conversation so far is kept, only the lane changes::

    agent = LoopAgent([("ultraspeed", drill.url("ultraspeed"), "openai"),
                       ("stable", drill.url("stable"), "anthropic")], time_scale=drill.time_scale,
                      step_call=drill.acall, tool_span=drill.tool)
    result = agent.run("Make the failing suite green.")

A tool call is executed only when its arguments arrived whole and are valid for the tool's schema:
a stream cut inside a call (the router already refuses a cut stream or a ``length`` stop), invalid
JSON, a missing required property, or a call to a tool that was not offered, is a failed attempt,
so the step is asked again (then falls back). ``step_call`` wraps each step (``drill.acall``
in-process: one call record per step), ``tool_span`` each tool run (``drill.tool``).

The flawed variants, each caught by one check (``tests/examples/test_loop_agents.py``):

- :class:`ExecutesBadToolCalls`: runs what arrived of a tool call (``no_partial_tool_execution``);
- :class:`RestartsEpisode`: starts the whole task again after any fault (``episodes_complete``);
- :class:`NeverFallsBackMidEpisode`: picks the lane once per episode and waits for it
  (``loop_budget``, route overhead).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

from harness.drill import call_headers
from harness.toolcalls import ToolSpec, arguments_valid

from .router import AttemptFailed, LaneConfig, Result, Router

__all__ = ["TOOLS", "EpisodeResult", "ExecutesBadToolCalls", "LoopAgent", "NeverFallsBackMidEpisode", "RestartsEpisode"]

#: the coding agent's tools (JSON schemas, as every provider takes them)
TOOLS: dict[str, dict[str, Any]] = {
    "read_file": {
        "type": "object",
        "properties": {"path": {"type": "string"}, "start_line": {"type": "integer", "minimum": 1}},
        "required": ["path", "start_line"],
    },
    "run_tests": {
        "type": "object",
        "properties": {"target": {"type": "string", "enum": ["unit", "e2e"]}, "filter": {"type": "string"}},
        "required": ["target", "filter"],
    },
}
_CHAT = ("openai", "openai-chat", "vllm", "ollama", "azure", "openrouter")

StepCall = Callable[..., Awaitable[Any]]
ToolSpan = Callable[[str], contextlib.AbstractContextManager[Any]]


@dataclass
class Turn:
    """One turn of the conversation in the agent's own terms (rendered per dialect)."""

    role: str  # user | assistant | tool
    text: str = ""
    calls: list[tuple[str, str, str]] = field(default_factory=list)  # (id, name, arguments JSON)
    call_id: str = ""  # a tool result: the call it answers
    name: str = ""


@dataclass
class EpisodeResult:
    """One episode's end: the final answer (or the error), and what it took."""

    text: str | None
    lane: str | None
    complete: bool
    steps: int = 0
    tools_run: list[str] = field(default_factory=list)
    lanes: list[str] = field(default_factory=list)
    error: str | None = None
    error_type: str | None = None
    restarts: int = 0


async def _direct(fn: Callable[..., Awaitable[Result]], *args: Any) -> Result:
    return await fn(*args)


@contextlib.contextmanager
def _no_span(name: str) -> Iterator[None]:
    yield


class LoopAgent(Router):
    """An agent loop over :class:`Router` lanes (see the module docstring). Durations are in the
    agent's seconds, multiplied by ``time_scale``."""

    def __init__(
        self,
        lanes: Sequence[Any],
        *,
        tool_time: float = 0.5,  # how long each tool runs (tests, a build, an API)
        max_steps: int = 8,  # a task that needs more is a runaway loop: stop and say so
        step_call: StepCall | None = None,
        tool_span: ToolSpan | None = None,
        **router: Any,
    ) -> None:
        super().__init__(lanes, **router)
        self.tool_time = tool_time
        self.max_steps = max_steps
        self.step_call = step_call or _direct
        self.tool_span = tool_span or _no_span
        self.specs = {n: ToolSpec(n, p) for n, p in TOOLS.items()}

    # -- the loop -----------------------------------------------------------------------------
    def run(self, task: str) -> EpisodeResult:
        """Run one episode to its final answer (blocking)."""
        return asyncio.run(self.arun(task))

    def complete(self, prompt: str, *, headers: Any = None) -> EpisodeResult:  # type: ignore[override]
        return self.run(prompt)

    async def arun(self, task: str) -> EpisodeResult:
        async with httpx.AsyncClient(timeout=None) as client:
            return await self.episode(client, task)

    async def episode(self, client: httpx.AsyncClient, task: str) -> EpisodeResult:
        convo = [Turn("user", task)]
        out = EpisodeResult(None, None, False)
        for _ in range(self.max_steps):
            r = await self.step_call(self.step, client, convo)
            out.steps += 1
            if r is None or r.error:
                out.error = (r.error if r is not None else None) or "the step failed"
                out.error_type = (r.error_type if r is not None else None) or "StepFailed"
                return out
            out.lanes.append(r.lane or "?")
            if not r.tool_calls:
                out.text, out.lane, out.complete = r.text, r.lane, True
                return out
            convo.append(
                Turn(
                    "assistant",
                    r.text or "",
                    [(c[0] or f"call_{i}", c[1] or "", c[2]) for i, c in enumerate(r.tool_calls)],
                )
            )
            for cid, name, args in convo[-1].calls:
                convo.append(Turn("tool", await self.run_tool(name, args), call_id=cid, name=name))
                out.tools_run.append(name)
        out.error, out.error_type = f"no final answer after {self.max_steps} steps", "RunawayLoop"
        return out

    async def step(self, client: httpx.AsyncClient, convo: list[Turn]) -> Result:
        """One model turn, routed over the lanes (retries, fallback, watchdog)."""
        return await self._route(client, convo, dict(call_headers()))  # type: ignore[arg-type]

    async def run_tool(self, name: str, arguments: str) -> str:
        """Run one tool (``tool_time`` seconds) and return its result."""
        with self.tool_span(name):
            await asyncio.sleep(self.s(self.tool_time))
        return f"{name} ok: {arguments}"

    # -- one attempt: the conversation in the lane's dialect, and what arrived checked --------
    def request_for(self, lane: LaneConfig, prompt: Any) -> tuple[str, dict[str, Any]]:
        return render(lane, prompt)

    async def attempt(self, client: httpx.AsyncClient, lane: LaneConfig, *args: Any) -> Result:
        r = await super().attempt(client, lane, *args)
        self.check_tool_calls(r)
        return r

    def check_tool_calls(self, r: Result) -> None:
        """Refuse an answer whose tool calls cannot be executed as they are: the step is asked
        again, then falls back (never repaired, never half-run)."""
        for _, name, args, done in r.tool_calls:
            if not done:
                raise AttemptFailed(f"tool call {name} cut mid-arguments")
            if name not in self.specs:
                raise AttemptFailed(f"tool call to {name!r}, a tool that was not offered")
            if not arguments_valid(args, self.specs[name]):
                raise AttemptFailed(f"tool call {name} has malformed arguments")


# -- requests in each dialect ------------------------------------------------------------------
def _args_object(text: str) -> Any:
    try:
        value = json.loads(text)
    except ValueError:
        return {}  # only a flawed agent sends such a call back; an object is what the API takes
    return value if isinstance(value, dict) else {}


def render(lane: LaneConfig, convo: list[Turn]) -> tuple[str, dict[str, Any]]:
    """``(path, body)`` of a streamed request carrying ``convo`` and the tools, in the lane's dialect."""
    if lane.dialect in _CHAT:
        msgs: list[dict[str, Any]] = []
        for t in convo:
            if t.role == "tool":
                msgs.append({"role": "tool", "tool_call_id": t.call_id, "content": t.text})
            elif t.calls:
                calls = [{"id": i, "type": "function", "function": {"name": n, "arguments": a}} for i, n, a in t.calls]
                msgs.append({"role": "assistant", "content": t.text or None, "tool_calls": calls})
            else:
                msgs.append({"role": t.role, "content": t.text})
        tools = [{"type": "function", "function": {"name": n, "parameters": p}} for n, p in TOOLS.items()]
        body = {"model": lane.model, "messages": msgs, "tools": tools, "stream": True}
        body["stream_options"] = {"include_usage": True}
        if lane.dialect == "azure":
            return f"/openai/deployments/{lane.model}/chat/completions?api-version=2024-10-21", body
        return ("/api/v1/chat/completions" if lane.dialect == "openrouter" else "/v1/chat/completions"), body
    if lane.dialect == "anthropic":
        am: list[dict[str, Any]] = []
        for t in convo:
            if t.role == "tool":
                block = {"type": "tool_result", "tool_use_id": t.call_id, "content": t.text}
                if am and am[-1]["role"] == "user" and isinstance(am[-1]["content"], list):
                    am[-1]["content"].append(block)
                else:
                    am.append({"role": "user", "content": [block]})
            elif t.calls:
                content: list[dict[str, Any]] = [{"type": "text", "text": t.text}] if t.text else []
                content += [{"type": "tool_use", "id": i, "name": n, "input": _args_object(a)} for i, n, a in t.calls]
                am.append({"role": "assistant", "content": content})
            else:
                am.append({"role": t.role, "content": t.text})
        tools = [{"name": n, "description": f"the {n} tool", "input_schema": p} for n, p in TOOLS.items()]
        return "/v1/messages", {"model": lane.model, "max_tokens": 1024, "messages": am, "tools": tools, "stream": True}
    raise ValueError(f"the loop agent speaks the OpenAI Chat and Anthropic dialects, not {lane.dialect!r}")


# -- flawed variants ---------------------------------------------------------------------------
class ExecutesBadToolCalls(LoopAgent):
    """Runs whatever arrived of a tool call: a stream cut mid-arguments is taken as the end of the
    call, and arguments that are not valid for the schema are run as they are (the agent that
    "repairs" a cut call to ``{}`` and dispatches it). Caught by ``no_partial_tool_execution``."""

    def check_tool_calls(self, r: Result) -> None:
        return None  # the flaw: nothing is checked

    def check_ending(self, ended: bool, finish: str | None) -> None:
        return None  # the flaw: a stream that ended is an answer, however it ended


class RestartsEpisode(LoopAgent):
    """Starts the whole task again from its first step after any fault in a step (even one the
    router recovered from by falling back), throwing the finished steps away, up to
    ``max_restarts`` times per episode. Caught by ``episodes_complete`` (abandoned episodes)."""

    max_restarts = 3

    def __init__(self, lanes: Sequence[Any], **kw: Any) -> None:
        super().__init__(lanes, **kw)
        self._restarted: dict[str, int] = {}

    async def episode(self, client: httpx.AsyncClient, task: str) -> EpisodeResult:
        restarts = 0
        while True:
            out = await super().episode(client, task)
            if out.error_type != "Restart":
                out.restarts = restarts
                return out
            restarts += 1

    async def step(self, client: httpx.AsyncClient, convo: list[Turn]) -> Result:
        r = await super().step(client, convo)
        faulted = any(not entry.endswith(": ok") for entry in r.attempts)
        done = self._restarted.setdefault(convo[0].text, 0)  # per task: episodes may run at once
        if faulted and len(convo) > 1 and not r.error and done < self.max_restarts:
            self._restarted[convo[0].text] = done + 1  # the flaw: any fault means "start over", served or not
            return Result(None, None, False, error="a fault: starting the task again", error_type="Restart")
        return r


class NeverFallsBackMidEpisode(LoopAgent):
    """Chooses a lane when the episode starts and keeps it for every step: when the premium
    lane loses capacity mid-episode, the step waits and retries there (``lane_patience``
    seconds) instead of going to the stable lane. Caught by ``loop_budget`` (route overhead)."""

    lane_patience = 30.0

    def __init__(self, lanes: Sequence[Any], **kw: Any) -> None:
        super().__init__(lanes, **kw)
        self._pinned: dict[int, LaneConfig | None] = {}  # per episode (its first turn): they may run at once

    async def step(self, client: httpx.AsyncClient, convo: list[Turn]) -> Result:
        lane = self._pinned.get(id(convo[0]))
        if lane is None:
            r = await super().step(client, convo)
            self._pinned[id(convo[0])] = next((x for x in self.lanes if x.name == r.lane), None)
            return r
        deadline = time.monotonic() + self.s(self.lane_patience)
        last = "no attempt"
        n = 0
        while time.monotonic() < deadline:  # the flaw: this lane or nothing
            try:
                r = await self.attempt(client, lane, convo, dict(call_headers()), deadline)
                r.attempts = [f"{lane.name}: ok"]
                return r
            except AttemptFailed as exc:
                last = exc.reason
                wait = exc.retry_after if exc.retry_after is not None else self.backoff(n)
                n += 1
                await asyncio.sleep(min(wait, max(0.0, deadline - time.monotonic())))
        return Result(None, None, False, error=f"{lane.name}: {last}", error_type="LaneUnavailable")


class ParallelCandidates(LoopAgent):
    """Fires ``candidates`` generations of each step at once on the premium lane and keeps the
    first whose tool calls verify (a best-of-n agent). When the lane's slots run out (a capacity
    error for some candidates), it degrades: the next steps fire only as many as got through,
    and when none did, the step goes the router's way (retries, then the stable lane)."""

    def __init__(self, lanes: Sequence[Any], *, candidates: int = 3, **kw: Any) -> None:
        super().__init__(lanes, **kw)
        self.candidates = candidates
        self.fanout = candidates  # what the premium lane was last seen to take at once

    async def step(self, client: httpx.AsyncClient, convo: list[Turn]) -> Result:
        lane = self.lanes[0]
        if self.fanout < 2 or not self.available(lane, time.monotonic()):
            return await super().step(client, convo)
        deadline = time.monotonic() + self.s(self.call_deadline)
        headers = dict(call_headers())
        tries = [self.attempt(client, lane, convo, headers, deadline) for _ in range(self.fanout)]
        got = await asyncio.gather(*tries, return_exceptions=True)
        good = [r for r in got if isinstance(r, Result)]
        full = [e for e in got if isinstance(e, AttemptFailed) and e.status in (429, 503, 529)]
        if full:  # the slots ran out: fire no more than got through next time
            self.fanout = max(1, len(good))
        if good:
            good[0].attempts = [f"{lane.name}: ok"] + [f"{lane.name}: {e}" for e in got if not isinstance(e, Result)]
            return good[0]
        return await super().step(client, convo)  # none verified: the router's way


#: agent name (``python -m examples.agents.run --agent NAME``) -> class
LOOP_AGENTS: dict[str, type[LoopAgent]] = {
    "loop": LoopAgent,
    "loop_executes_bad_tool_calls": ExecutesBadToolCalls,
    "loop_restarts_episode": RestartsEpisode,
    "loop_never_falls_back_mid_episode": NeverFallsBackMidEpisode,
    "loop_parallel_candidates": ParallelCandidates,
}
TASK = "task {i}: make the failing suite green"


def drive_episodes(drill: Any, factory: type[LoopAgent] = LoopAgent, **kw: Any) -> list[EpisodeResult]:
    """Run the profile's ``workload:`` as episodes, in-process: ``calls`` of them, each started at
    its own time (groups of ``concurrency`` spread over the span, whether or not the earlier ones
    are done, as users arrive); each step is a ``drill.acall`` and each tool a ``drill.tool`` span."""
    from examples.workload import router_for
    from harness.workload import Workload

    w = drill.profile.workload
    starts = Workload(calls=w.calls, concurrency=w.concurrency, over=w.spread(drill.profile)).starts(drill.profile)
    agent = router_for(drill, factory, step_call=drill.acall, tool_span=drill.tool, **kw)
    t0 = time.monotonic()

    def one(i: int) -> EpisodeResult:
        wait = t0 + drill.seconds(starts[i]) - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        return agent.run(TASK.format(i=i))

    with ThreadPoolExecutor(len(starts)) as pool:
        return list(pool.map(one, range(len(starts))))


def run_subprocess(agent: LoopAgent, episodes: int, interval: float, control_url: str | None) -> int:
    """Episodes for ``python -m examples.agents.run --agent loop``: each step reported to the
    drill as a call (``POST /calls``) and each tool run as a span (``POST /tools``), as an agent
    in any language can do; one line per episode."""
    from harness.drill import call_scope

    reporter = httpx.Client(timeout=2.0)  # one client: building one per report costs ~100 ms

    def post(path: str, body: dict[str, Any]) -> None:
        if control_url:
            with contextlib.suppress(httpx.HTTPError):
                reporter.post(control_url.rstrip("/") + path, json=body)

    counter = iter(range(1, 10**9))

    async def step_call(fn: Callable[..., Awaitable[Result]], *args: Any) -> Result | None:
        cid = f"step-{next(counter):04d}"
        rec: dict[str, Any] = {"id": cid, "started_at": time.time()}
        try:
            with call_scope(cid):
                r = await fn(*args)
        except Exception as exc:  # reported, then the episode ends with it
            rec.update(outcome="error", error=str(exc)[:300], error_type=type(exc).__name__, ended_at=time.time())
            await asyncio.to_thread(post, "/calls", rec)
            return None
        rec["ended_at"] = time.time()
        if r.error:
            rec.update(outcome="error", error=r.error, error_type=r.error_type or "error")
        else:
            rec.update(outcome="ok", text=r.text, lane=r.lane, complete=r.complete)
        await asyncio.to_thread(post, "/calls", rec)
        return r

    @contextlib.contextmanager
    def tool_span(name: str) -> Iterator[None]:
        started = time.time()
        try:
            yield
        finally:
            post("/tools", {"name": name, "started_at": started, "ended_at": time.time()})

    agent.step_call, agent.tool_span = step_call, tool_span
    t0 = time.monotonic()
    for i in range(episodes):
        wait = t0 + i * interval * agent.time_scale - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        started = time.monotonic()
        r = agent.run(TASK.format(i=i))
        took = (time.monotonic() - started) / agent.time_scale
        how = f"final answer on {r.lane}" if r.complete else f"error {r.error_type}: {r.error}"
        print(f"episode {i}: {how}, {r.steps} steps, lanes {'>'.join(r.lanes) or '-'} ({took:.3f}s)", flush=True)
    return 0


__all__ += ["LOOP_AGENTS", "ParallelCandidates", "Turn", "drive_episodes", "render", "run_subprocess"]
