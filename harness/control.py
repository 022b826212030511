"""The control API: change a running drill's faults by hand, over HTTP on loopback.

A local fault drill is interactive: a developer watches the agent and flips faults from another
terminal (``routechaos fault add ...``) or with curl. Every change goes through the same
validation as a profile, so a typo gets a 400 naming the field, never a half-applied fault.

Endpoints (JSON), under the drill's URL ``http://127.0.0.1:PORT/TOKEN``: ``GET /lanes``,
``GET /faults``, ``POST /faults`` (a fault as in a profile's ``faults:`` list), ``PUT
/faults/{name}`` (replace), ``DELETE /faults/{name}``, ``DELETE /faults`` (remove all),
``GET /journal?since=N`` (attempts from index N), ``GET /marks``, and ``POST /calls``: an agent
in another process (any language) reports each call's outcome, so a command-line drill can
judge what the agent accepted, as ``Drill.call`` does in-process; ``POST /tools`` marks a tool
span (``drill.tool()`` in-process), shown inside its episode's tool wait.

Who may call it: this API takes lanes down and writes the call records a verdict is judged on,
so it answers local programs only. ``TOKEN`` is a per-drill secret path prefix, handed to the
agent inside ``ROUTECHAOS_CONTROL_URL`` (so ``POST $ROUTECHAOS_CONTROL_URL/calls`` works from
any language) and to ``routechaos fault`` through the serve state file; and the
:class:`~harness.webguard.Gate` refuses what a web page can send (browser user agent, ``Origin``,
a ``Host`` that is not the bound address, a write whose body is not JSON). Every refusal and
every malformed request is a 4xx JSON error ``{"error", "status"[, "field"]}``, never a crash.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .journal import Call
from .profilebuild import _fault
from .redact import redact_text
from .safejson import loads as strict_json
from .webguard import Gate, GuardedAppRunner, describe_error
from .yamlpos import Located, ProfileError

if TYPE_CHECKING:
    from .faults.plan import FaultPlan
    from .lanes import LaneSet

__all__ = ["ControlServer"]

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024
MAX_DEPTH = 32  # a fault or a call record is a few levels deep
MAX_SECONDS = 10 * 24 * 3600.0  # a call reported to last longer than this is a mistake
_NAME_MAX = 100


class _Invalid(Exception):
    """A control request that cannot be served: becomes a 4xx JSON error."""

    def __init__(self, message: str, field: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status


def _error(status: int, message: str, field: str | None = None) -> web.Response:
    body: dict[str, Any] = {"error": message, "status": status}
    if field:
        body["field"] = field
    return web.json_response(body, status=status)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# -- field readers (each refuses a wrong type with the field's name) ---------------------------
def _str(raw: dict[str, Any], key: str, *, limit: int, default: str | None = None) -> str | None:
    value = raw.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise _Invalid(f"must be a string (got {type(value).__name__})", key)
    return value[:limit]


def _seconds(raw: dict[str, Any], key: str) -> float | None:
    """A finite number of seconds (ints of any size are refused past the range, never a crash)."""
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Invalid("must be a number of seconds", key)
    if isinstance(value, int) and abs(value) > 2**53:
        raise _Invalid("is out of range", key)
    value = float(value)
    if not math.isfinite(value):
        raise _Invalid("must be a finite number", key)
    return value


def _fault_name(value: Any, key: str = "name") -> str:
    if not isinstance(value, str) or not value or len(value) > _NAME_MAX:
        raise _Invalid(f"must be a name of 1 to {_NAME_MAX} characters", key)
    if "/" in value or not value.isprintable():
        raise _Invalid("must be printable and contain no '/'", key)
    return value


CALL_FIELDS = (
    "id",
    "outcome",
    "text",
    "lane",
    "complete",
    "error",
    "error_type",
    "duration",
    "started_at",
    "ended_at",
)

TOOL_FIELDS = ("name", "duration", "started_at", "ended_at")


class ControlServer:
    """HTTP control of one :class:`LaneSet` and its :class:`FaultPlan`.

    ``url`` (which includes the token) is all a client needs; ``token`` defaults to a fresh random
    one, and ``allowed_hosts`` adds ``Host`` names to the bound address (see :class:`Gate`).
    """

    def __init__(
        self,
        lanes: LaneSet,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        token: str | None = None,
        allowed_hosts: tuple[str, ...] = (),
    ) -> None:
        self.lanes = lanes
        self.host = host
        self.port = port
        self.token = token or secrets.token_urlsafe(16)
        self.gate = Gate(allowed_hosts)
        self._runner: web.AppRunner | None = None
        self._reported = 0
        self._spans = 0

    @property
    def plan(self) -> FaultPlan:
        plan = self.lanes.faults
        if plan is None or not hasattr(plan, "add"):
            raise _Invalid("these lanes have no fault plan", status=409)
        return plan  # type: ignore[return-value]

    @property
    def url(self) -> str:
        """The API's base URL, token included: ``http://127.0.0.1:PORT/TOKEN``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/{self.token}"

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=MAX_BODY)
        p = f"/{self.token}"
        app.add_routes(
            [
                web.get(p, self.get_index, allow_head=False),
                web.get(p + "/lanes", self.get_lanes, allow_head=False),
                web.get(p + "/faults", self.get_faults, allow_head=False),
                web.post(p + "/faults", self.post_fault),
                web.put(p + "/faults/{name}", self.put_fault),
                web.delete(p + "/faults/{name}", self.delete_fault),
                web.delete(p + "/faults", self.delete_all),
                web.get(p + "/journal", self.get_journal, allow_head=False),
                web.get(p + "/marks", self.get_marks, allow_head=False),
                web.post(p + "/calls", self.post_call),
                web.post(p + "/tools", self.post_tool),
            ]
        )
        return app

    async def start(self) -> str:
        self._runner = GuardedAppRunner(self.app(), on_error=self._protocol_error, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.gate.bind(self.host, self.port)
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- the edge: who may call, and what a malformed request gets ---------------------------
    def _token_ok(self, path: str) -> bool:
        given = path.split("/", 2)[1] if path.startswith("/") and len(path) > 1 else ""
        return hmac.compare_digest(given.encode(), self.token.encode())

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        refusal = self.gate.check_request(request)
        if refusal is not None:
            log.warning(
                "control API: refused %s from %s: %s", request.method, request.remote, redact_text(refusal.message)
            )
            return _error(refusal.status, refusal.message)
        if not self._token_ok(request.path):
            return _error(
                403, "this control API needs its token: use the URL routechaos printed (ROUTECHAOS_CONTROL_URL)"
            )
        try:
            return await handler(request)
        except _Invalid as exc:
            return _error(exc.status, exc.message, exc.field)
        except web.HTTPException as exc:  # no such route or method, body too large
            return _error(exc.status, exc.reason)
        except web.RequestPayloadError as exc:
            return _error(400, describe_error(exc))

    def _protocol_error(self, request: web.BaseRequest, status: int, exc: BaseException | None) -> web.Response:
        if status >= 500:
            log.error("control API: %s failed", request.method, exc_info=exc)
            return _error(500, "internal error")
        reason = describe_error(exc)
        log.warning("control API: malformed request from %s refused: %s", request.remote, reason)
        return _error(status, f"malformed HTTP request: {reason}")

    async def _json_object(self, request: web.Request, what: str) -> dict[str, Any]:
        body = await request.read()
        try:
            raw = strict_json(body or b"null", max_depth=MAX_DEPTH)
        except ValueError as exc:
            raise _Invalid(f"body must be a JSON object describing {what}: {exc}") from None
        if not isinstance(raw, dict):
            raise _Invalid(f"body must be a JSON object describing {what}")
        return raw

    # -- handlers -----------------------------------------------------------------------------
    async def get_index(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"endpoints": ["lanes", "faults", "faults/{name}", "journal?since=N", "marks", "calls", "tools"]}
        )

    async def get_lanes(self, request: web.Request) -> web.Response:
        return web.json_response(
            [
                {"name": n, "dialect": lane.dialect_name, "url": lane.url, "listening": lane.listening}
                for n, lane in self.lanes.lanes.items()
            ]
        )

    async def get_faults(self, request: web.Request) -> web.Response:
        return web.json_response(self.plan.to_json())

    async def _read_spec(self, request: web.Request, name: str | None = None) -> Any:
        raw = await self._json_object(request, "a fault")
        for key in ("fault", "lane", "description"):
            if key in raw and not isinstance(raw[key], str):
                raise _Invalid(f"must be a string (got {type(raw[key]).__name__})", f"faults[0].{key}")
        if name is not None:
            raw = {**raw, "name": name}
        elif "name" in raw:
            _fault_name(raw["name"], "faults[0].name")
        loc = Located({"faults": [raw]}, {}, "<control>")
        try:
            return _fault(loc, 0, raw, self.lanes.profile.lanes)
        except ProfileError as exc:
            raise _Invalid(exc.message, exc.field) from None
        except Exception as exc:  # the profile validator choked on a shape it did not foresee
            log.warning("control API: fault refused: %s", describe_error(exc))
            raise _Invalid(f"not a valid fault: {describe_error(exc)}", "faults[0]") from None

    async def post_fault(self, request: web.Request) -> web.Response:
        spec = await self._read_spec(request)
        entry = self.plan.add(spec)
        self.lanes.journal.mark("fault_added", entry.spec.lane, fault=entry.name, fault_type=entry.spec.fault)
        return web.json_response(entry.to_json(), status=201)

    async def put_fault(self, request: web.Request) -> web.Response:
        name = _fault_name(request.match_info["name"])
        spec = await self._read_spec(request, name)
        try:
            self.plan.remove(name)
        except KeyError:
            raise _Invalid(f"fault {name!r} not found", status=404) from None
        await asyncio.sleep(0)  # let a lane-level fault bring its lane back before re-adding
        entry = self.plan.add(spec)
        self.lanes.journal.mark("fault_changed", entry.spec.lane, fault=entry.name, fault_type=entry.spec.fault)
        return web.json_response(entry.to_json())

    async def delete_fault(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        try:
            entry = self.plan.remove(name)
        except KeyError:
            raise _Invalid(f"fault {name!r} not found", status=404) from None
        self.lanes.journal.mark("fault_removed", entry.spec.lane, fault=entry.name, fault_type=entry.spec.fault)
        return web.Response(status=204)

    async def delete_all(self, request: web.Request) -> web.Response:
        self.plan.clear()
        self.lanes.journal.mark("faults_cleared")
        return web.Response(status=204)

    async def get_journal(self, request: web.Request) -> web.Response:
        text = request.query.get("since", "0")
        if not (text.isascii() and text.isdigit() and len(text) <= 12):
            raise _Invalid("since must be an integer >= 0", "since")
        attempts = self.lanes.journal.attempts()
        return web.json_response([a.to_json() for a in attempts[int(text) :]])

    async def post_call(self, request: web.Request) -> web.Response:
        """An agent in another process reports one call's outcome (what ``Drill.call`` records
        in-process): ``{"id", "outcome": "ok"|"error"|"unknown", "text", "lane", "complete",
        "error", "error_type", "started_at", "ended_at"}`` with epoch seconds (or ``duration``:
        then the call is taken to have ended now). Every field is optional and type-checked; an
        unknown one is refused (a typo would otherwise lose what it meant)."""
        raw = await self._json_object(request, "a call")
        for key in raw:
            if key not in CALL_FIELDS:
                raise _Invalid(f"unknown field; expected one of {', '.join(CALL_FIELDS)}", str(key)[:50])
        call_id = raw.get("id")
        if call_id is not None and (isinstance(call_id, bool) or not isinstance(call_id, str | int)):
            raise _Invalid("must be a string", "id")
        if isinstance(call_id, int) and abs(call_id) > 2**53:
            raise _Invalid("is out of range", "id")
        outcome = raw.get("outcome", "ok")
        if not isinstance(outcome, str) or outcome not in ("ok", "error", "unknown"):
            raise _Invalid("outcome must be ok, error or unknown", "outcome")
        lane = _str(raw, "lane", limit=_NAME_MAX)
        if lane is not None and lane not in self.lanes.profile.lanes:
            raise _Invalid(f"no lane named {lane!r}; lanes: {', '.join(self.lanes.profile.lanes)}", "lane")
        complete = raw.get("complete")
        if complete is not None and not isinstance(complete, bool):
            raise _Invalid("must be true, false or null", "complete")
        text = _str(raw, "text", limit=MAX_BODY)
        error = _str(raw, "error", limit=500)
        error_type = _str(raw, "error_type", limit=200)
        t_start, t_end = self._call_times(raw)
        self._reported += 1
        call = Call(
            id=str(call_id)[:200] if call_id not in (None, "") else f"reported-{self._reported:04d}",
            t_start=t_start,
            t_end=t_end,
            outcome=outcome,
            text=text,
            lane=lane,
            complete=complete,
            error=error or None,
            error_type=error_type or None,
            source="control",
        )
        self.lanes.journal.record_call(call)  # redacts the error text (an exception may quote a key)
        return web.json_response({"id": call.id}, status=201)

    async def post_tool(self, request: web.Request) -> web.Response:
        """An agent in another process marks one tool span, as ``drill.tool()`` does in-process:
        ``{"name", "started_at", "ended_at"}`` in epoch seconds (or ``duration``, ending now).
        Journaled as ``tool_start`` / ``tool_end`` marks (:mod:`harness.episodes`)."""
        raw = await self._json_object(request, "a tool span")
        for key in raw:
            if key not in TOOL_FIELDS:
                raise _Invalid(f"unknown field; expected one of {', '.join(TOOL_FIELDS)}", str(key)[:50])
        name = _str(raw, "name", limit=_NAME_MAX)
        if not name:
            raise _Invalid("a tool span needs the tool's name", "name")
        t_start, t_end = self._call_times(raw)
        self._spans += 1
        span = f"r{self._spans:05d}"
        journal = self.lanes.journal
        journal.mark("tool_start", span=span, name=name, source="control", t=t_start)
        journal.mark("tool_end", span=span, name=name, t=t_end)
        return web.json_response({"span": span}, status=201)

    def _call_times(self, raw: dict[str, Any]) -> tuple[float, float]:
        """(t_start, t_end) in journal seconds: from the agent's epoch ``started_at``/``ended_at``
        (exact: "now minus duration" would count the report's own delivery as part of the call),
        else ``duration`` seconds ending now."""
        journal = self.lanes.journal
        now = journal.now()
        duration = _seconds(raw, "duration")
        if duration is not None and not 0 <= duration <= MAX_SECONDS:
            raise _Invalid(f"duration must be seconds from 0 to {MAX_SECONDS:g}", "duration")
        started, ended = _seconds(raw, "started_at"), _seconds(raw, "ended_at")
        if started is None and ended is None:
            return max(0.0, now - (duration or 0.0)), now
        lo, hi = journal.wall0 - MAX_SECONDS, journal.wall0 + now + MAX_SECONDS
        for key, value in (("started_at", started), ("ended_at", ended)):
            if value is not None and not lo <= value <= hi:
                raise _Invalid("must be epoch seconds within this drill's time", key)
        if ended is None:
            ended = journal.wall0 + now
        if started is None:
            started = ended - (duration or 0.0)
        if ended < started:
            raise _Invalid("must not be before started_at", "ended_at")
        return max(0.0, started - journal.wall0), max(0.0, ended - journal.wall0)

    async def get_marks(self, request: web.Request) -> web.Response:
        return web.json_response([m.to_json() for m in self.lanes.journal.marks()])
