"""A drill: start a profile's lanes, drive a workload, stop, evaluate the checks, report.

The three-line version::

    with Drill("ultraspeed-capacity-loss", time_scale=0.1) as drill:
        for prompt in prompts:
            drill.call(agent.complete, prompt)
    drill.assert_graceful()

The lanes (and, for profiles with ``toxics:``, a Toxiproxy proxy in front of them) run on an event
loop in a background thread, so the workload can be plain synchronous code, a pytest test, or a
subprocess (:meth:`Drill.run_command`). Every call the workload reports through :meth:`Drill.call`
is recorded with its outcome; checks then judge the journal in *profile time* (a drill compressed
with ``time_scale: 0.1`` is rescaled before judging, so budgets read as written).
"""

from __future__ import annotations

import contextvars
import itertools
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .agentproc import GRACE, AgentProcess
from .billing import lane_prices
from .callctx import (
    CALL_ID_HEADER,
    answer_text,
    call_headers,
    call_runner,
    call_scope,
    call_var,
    current_call_id,
    result_attr,
)
from .checks import Report, evaluate_all, make_check
from .episodes import lane_pacing
from .journal import Call, Journal, Outcome
from .lanemap import LaneDict, UnknownLane, rename_profile
from .lanes import BackgroundLanes, LaneSet
from .ports import binding
from .profile import Profile, check_time_scale, load_profile

__all__ = ["CALL_ID_HEADER", "Drill", "answer_text", "call_headers", "call_scope", "current_call_id"]

#: what each cloud's official clients read for their endpoint and (fake, never verified)
#: credentials: boto3 reads AWS_ENDPOINT_URL_BEDROCK_RUNTIME for bedrock-runtime alone,
#: google-genai GOOGLE_VERTEX_BASE_URL, AnthropicBedrock / AnthropicVertex their own
_CLOUD_ENV: dict[str, tuple[tuple[str, str], ...]] = {
    "azure": (
        ("AZURE_OPENAI_ENDPOINT", "{url}"),
        ("AZURE_OPENAI_API_KEY", "routechaos"),
        ("OPENAI_API_VERSION", "2024-10-21"),
    ),
    "openrouter": (("OPENROUTER_BASE_URL", "{url}/api/v1"), ("OPENROUTER_API_KEY", "sk-or-routechaos")),
    "bedrock": (
        ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "{url}"),
        ("ANTHROPIC_BEDROCK_BASE_URL", "{url}"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "AKIDROUTECHAOS"),
        ("AWS_SECRET_ACCESS_KEY", "routechaos"),
    ),
    "vertex": (("GOOGLE_VERTEX_BASE_URL", "{url}"), ("ANTHROPIC_VERTEX_BASE_URL", "{url}/v1")),
    "ollama": (("OLLAMA_HOST", "{url}"),),
}


def last_window_close(profile: Profile) -> float | None:
    """Profile seconds at which the profile's last fault (or toxic) window closes, or ``None`` when
    no window ever closes (faults always on, or flapping without end): a workload that ends
    before it cannot show recovery."""
    from .schedule import parse_schedule

    last: float | None = None
    for spec in [*profile.faults, *profile.toxics]:
        s = parse_schedule(spec.schedule)
        if s.window is None:
            if s.every is not None:
                return None  # flaps until the drill ends
            continue
        hi = s.window[1]
        if math.isinf(hi):
            continue
        last = hi if last is None else max(last, hi)
    return last


class Drill:
    """One run of a profile against a workload."""

    def __init__(
        self,
        profile: Profile | str | Path,
        *,
        seed: int | None = None,
        time_scale: float | None = None,
        journal_path: str | Path | None = None,
        toxiproxy_url: str | None = None,
        control: bool = False,
        control_port: int = 0,
        network_layer: bool = False,
        lanes: Mapping[str, str] | None = None,
        capabilities: Mapping[str, bool] | None = None,
        faults: Callable[[Profile, Journal], Any] | None = None,
    ) -> None:
        """``lanes`` renames the profile's lanes to yours (``{"primary": "fast"}``: see
        :mod:`harness.lanemap`); a name the profile does not have raises
        :class:`~harness.lanemap.UnknownLane`."""
        overrides: dict[str, Any] = {}
        if seed is not None:
            overrides["seed"] = seed
        if time_scale is not None:
            try:
                time_scale = check_time_scale(time_scale)
            except ValueError as exc:
                raise ValueError(f"time_scale {exc}") from None
            overrides["time_scale"] = time_scale
        if isinstance(profile, Profile):
            if lanes:
                profile = rename_profile(profile, lanes)
            self.profile = profile
            if seed is not None:
                profile.seed = seed
            if time_scale is not None:
                profile.time_scale = time_scale
        else:
            self.profile = load_profile(profile, overrides, lanes=lanes)
        self.journal = Journal(journal_path)
        self.journal_path = Path(journal_path) if journal_path else None
        self.toxiproxy_url = toxiproxy_url
        self.network_layer = network_layer
        #: what the agent has (``{"fallback": False}``), for checks with ``requires:``; what is not
        #: given is read from the journal (a call that used two lanes shows a fallback)
        self.capabilities = dict(capabilities or {})
        #: makes the lanes' fault hook from the profile and journal (a drill replay's plan);
        #: None: the profile's own fault plan
        self._faults = faults
        self._control_wanted = control
        self._control_port = control_port
        self.control_url: str | None = None
        self.toxiproxy_api: str | None = None
        self._bg: BackgroundLanes | None = None
        self._toxics: Any = None
        self._control: Any = None
        self._urls: LaneDict = LaneDict()
        self._calls = 0
        self._lock = threading.Lock()  # calls may come from many threads at once
        self.outcomes: list[Call] = []
        self._tool_spans = itertools.count(1)

    # -- lifecycle ----------------------------------------------------------------------------
    @property
    def time_scale(self) -> float:
        return self.profile.time_scale

    def seconds(self, profile_seconds: float) -> float:
        """Real seconds for a duration written in profile time."""
        return profile_seconds * self.time_scale

    def start(self) -> Drill:
        self.journal.mark(
            "drill_start",
            profile=self.profile.name,
            source=self.profile.source,
            seed=self.profile.seed,
            time_scale=self.time_scale,
            lanes=list(self.profile.lanes),
            checks=[{c.name: c.params} for c in self.profile.checks],
            last_window_close=last_window_close(self.profile),
            capabilities=self.capabilities,
            pacing=lane_pacing(self.profile),
            prices=lane_prices(self.profile),
        )
        hook = self._faults(self.profile, self.journal) if self._faults is not None else None
        lanes = LaneSet(self.profile, self.journal, faults=hook)
        self._bg = BackgroundLanes(lanes).start()
        try:
            self._urls = LaneDict(lanes.urls)
            if self.profile.toxics or self.network_layer:
                self._bg.call(self._start_toxics)
            if self._control_wanted:
                from .control import ControlServer

                self._control = ControlServer(lanes, port=self._control_port)
                with binding("the control API", self._control.host, self._control_port):
                    self.control_url = self._bg.call(self._control.start)
        except BaseException:
            self.stop()
            raise
        return self

    async def _start_toxics(self) -> None:
        from .toxiproxy.layer import ToxicLayer

        assert self._bg is not None
        addresses = {n: url.split("://", 1)[1] for n, url in self._bg.lanes.urls.items()}
        self._toxics = ToxicLayer(
            self.profile.toxics,
            addresses,
            self.journal,
            url=self.toxiproxy_url,
            time_scale=self.time_scale,
            all_lanes=self.network_layer,
        )
        self._urls.update(await self._toxics.start())
        self.toxiproxy_api = self._toxics.server_url

    def stop(self, *, interrupted: str | None = None, interrupted_at: float | None = None) -> None:
        """Stop everything; toxics and proxies are removed even if the workload failed. Attempts
        still open are journaled with outcome unknown. ``interrupted`` says why the drill ended
        before its workload did (a signal name, ``timeout``) and ``interrupted_at`` when (journal
        seconds; what happened after is the harness stopping the agent): the ``drill_stop`` mark
        keeps both, and reports show the drill as interrupted (:meth:`Journal.interruption`)."""
        bg, self._bg = self._bg, None
        if bg is None:
            return
        try:
            if self._control is not None:
                bg.call(self._control.stop)
            if self._toxics is not None:
                bg.call(self._toxics.stop)
        finally:
            bg.stop()
            if interrupted:
                at = self.journal.now() if interrupted_at is None else interrupted_at
                self.journal.mark("drill_stop", interrupted=True, reason=interrupted, interrupted_at=at)
            else:
                self.journal.mark("drill_stop")
            self.journal.close()

    def __enter__(self) -> Drill:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses ----------------------------------------------------------------------------
    @property
    def urls(self) -> dict[str, str]:
        """Lane name -> the base URL the agent should call (through Toxiproxy if it has toxics).
        A name that is not a lane raises :class:`~harness.lanemap.UnknownLane`."""
        return LaneDict(self._urls)

    def url(self, lane: str) -> str:
        """The base URL of ``lane``; :class:`~harness.lanemap.UnknownLane` names the lanes there are."""
        if lane not in self.profile.lanes:
            raise UnknownLane(lane, self.profile.lanes)
        if lane not in self._urls:
            raise RuntimeError(f"lane {lane!r} is not running: start() the drill first")
        return self._urls[lane]

    def base_url(self, lane: str) -> str:
        """The URL an SDK wants: ``/v1`` appended for OpenAI-style lanes."""
        url = self.url(lane)
        spec = self.profile.lanes[lane]
        openai_like = spec.dialect in ("openai", "openai-chat", "openai-responses", "vllm", "ollama")
        if spec.dialect == "openrouter":
            return url + "/api/v1"
        return url + ("/v1" if openai_like else "")

    def env(self) -> dict[str, str]:
        """Environment for an agent subprocess: the variables real SDKs read, and one per lane."""
        env: dict[str, str] = {}
        for name, spec in self.profile.lanes.items():
            key = re.sub(r"[^A-Z0-9]", "_", name.upper())
            env[f"ROUTECHAOS_LANE_{key}_URL"] = self.url(name)
            env[f"ROUTECHAOS_LANE_{key}_DIALECT"] = spec.dialect
            if spec.dialect.startswith("openai") or spec.dialect in ("vllm", "ollama"):
                env.setdefault("OPENAI_BASE_URL", self.base_url(name))
            elif spec.dialect == "anthropic":
                env.setdefault("ANTHROPIC_BASE_URL", self.url(name))
            elif spec.dialect == "gemini":
                env.setdefault("GOOGLE_GEMINI_BASE_URL", self.url(name))
            for var, url in _CLOUD_ENV.get(spec.dialect, ()):
                env.setdefault(var, url.format(url=self.url(name)))
        env["ROUTECHAOS_LANES"] = ",".join(self.profile.lanes)
        env["ROUTECHAOS_TIME_SCALE"] = str(self.time_scale)
        env.update(self.profile.workload.env(self.profile))
        if self.control_url:
            env["ROUTECHAOS_CONTROL_URL"] = self.control_url
        env.setdefault("OPENAI_API_KEY", "sk-routechaos")
        env.setdefault("ANTHROPIC_API_KEY", "sk-ant-routechaos")
        env.setdefault("GEMINI_API_KEY", "routechaos")
        return env

    # -- workload -----------------------------------------------------------------------------
    def call(
        self, fn: Callable[..., Any], *args: Any, call_id: str | None = None, raise_errors: bool = False, **kwargs: Any
    ) -> Any:
        """Run one logical call of the agent and record its outcome.

        ``fn``'s result may be the answer text, or an object or mapping with ``text``, ``lane``
        (which lane produced it), ``complete`` (False when the agent knowingly accepted a partial
        answer) and ``error``. An exception is recorded as a classified error (its class name) and
        swallowed unless ``raise_errors``: a drill judges the calls afterwards, it does not stop at
        the first one that failed.
        """
        call, token = self._begin(call_id)
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            self._failed(call, exc)
            if raise_errors:
                raise
            return None
        finally:
            call_var.reset(token)
        self._finished(call, result)
        return result

    async def acall(
        self, fn: Callable[..., Any], *args: Any, call_id: str | None = None, raise_errors: bool = False, **kwargs: Any
    ) -> Any:
        """:meth:`call` for asyncio agents: ``await drill.acall(agent.complete, prompt)``. ``fn`` may
        be a coroutine function or return an awaitable. Calls from many tasks at once are each
        recorded with their own window and task, and attributed without any header."""
        import inspect

        call, token = self._begin(call_id)
        try:
            result = fn(*args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:
            self._failed(call, exc)
            if raise_errors:
                raise
            return None
        finally:
            call_var.reset(token)
        self._finished(call, result)
        return result

    def _begin(self, call_id: str | None) -> tuple[Call, contextvars.Token[str | None]]:
        with self._lock:
            self._calls += 1
            n = self._calls
        cid = call_id or f"call-{n:04d}"
        thread, task = call_runner()
        call = Call(id=cid, t_start=self.journal.now(), source="drill", thread=thread, task=task)
        self.journal.call_started(call)
        return call, call_var.set(cid)

    def _failed(self, call: Call, exc: Exception) -> None:
        call.t_end = self.journal.now()
        call.outcome = Outcome.ERROR.value
        call.error = str(exc)[:500]
        call.error_type = type(exc).__name__
        self._record(call)

    def _finished(self, call: Call, result: Any) -> None:
        call.t_end = self.journal.now()
        call.text = answer_text(result)
        if result is not None and not isinstance(result, str):
            lane = result_attr(result, "lane")
            call.lane = lane if isinstance(lane, str) else None
            complete = result_attr(result, "complete")
            call.complete = None if complete is None else bool(complete)
            err = result_attr(result, "error")
            if err:
                call.outcome = Outcome.ERROR.value
                call.error = str(err)
                call.error_type = result_attr(result, "error_type") or "error"
        if call.outcome != Outcome.ERROR.value:
            call.outcome = Outcome.OK.value
        self._record(call)

    def _record(self, call: Call) -> None:
        self.journal.record_call(call)
        with self._lock:
            self.outcomes.append(call)

    @contextmanager
    def calling(self, call_id: str | None = None) -> Iterator[str]:
        """For async or custom workloads: set the call id while the block runs (no outcome kept)."""
        with self._lock:
            self._calls += 1
            n = self._calls
        cid = call_id or f"call-{n:04d}"
        token = call_var.set(cid)
        try:
            yield cid
        finally:
            call_var.reset(token)

    @contextmanager
    def tool(self, name: str) -> Iterator[str]:
        """Mark a tool span the wire cannot see (``with drill.tool("run_tests"): ...``): it is
        journaled as ``tool_start`` / ``tool_end`` marks and shown inside the episode's tool wait
        it falls in (:mod:`harness.episodes`). Yields the span's id."""
        span = f"t{next(self._tool_spans):05d}"
        thread, task = call_runner()
        self.journal.mark("tool_start", span=span, name=str(name)[:100], source="drill", thread=thread, task=task)
        try:
            yield span
        finally:
            self.journal.mark("tool_end", span=span, name=str(name)[:100])

    def run_command(
        self, command: Sequence[str], *, timeout: float | None = None, grace: float = GRACE, **popen: Any
    ) -> int:
        """Run an agent as a subprocess with the lanes in its environment; returns its exit code.

        The agent runs in its own process group (:class:`~harness.agentproc.AgentProcess`): on
        ``timeout`` (``subprocess.TimeoutExpired`` is raised) or an exception here (Ctrl-C), the
        whole group is ended, SIGTERM then SIGKILL after ``grace`` seconds, grandchildren too."""
        env = {**os.environ, **popen.pop("env", {}), **self.env()}
        agent = AgentProcess(command, env=env, **popen)
        try:
            return agent.wait(timeout)
        finally:  # what it left behind is ended too
            agent.end(grace)

    def settle(self, timeout: float = 5.0) -> None:
        """Wait until no attempt is still open on any lane (streams the agent abandoned end)."""
        if self._bg is None:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not any(lane._open for lane in self._bg.lanes.lanes.values()):
                return
            time.sleep(0.01)

    # -- verdict ------------------------------------------------------------------------------
    def evaluate(self, checks: Any = None) -> Report:
        """Judge the journal (in profile time) with the profile's checks, or with ``checks``."""
        self.settle()
        if checks is None:
            built = [make_check(c.name, c.params) for c in self.profile.checks]
        elif isinstance(checks, Mapping):
            built = [make_check(k, v or {}) for k, v in checks.items()]
        else:
            built = [make_check(c, {}) if isinstance(c, str) else c for c in checks]
        return evaluate_all(self.profile_time_journal(), built, capabilities=self.capabilities)

    def profile_time_journal(self) -> Journal:
        """The journal with times in profile seconds (what checks and reports show)."""
        return self.journal.rescaled(1 / self.time_scale) if self.time_scale != 1.0 else self.journal

    def assert_graceful(self, checks: Any = None) -> Report:
        """Evaluate and raise ``AssertionError`` with the timeline of every check that failed.

        Unknown verdicts do not fail the assertion (nothing was shown wrong), but they are part of
        the message when something else fails."""
        report = self.evaluate(checks)
        if report.failed():
            raise AssertionError(f"routechaos: degradation was not graceful ({self.profile.name})\n{report.render()}")
        return report
