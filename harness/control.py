"""The control API: change a running drill's faults by hand, over HTTP on loopback.

A local fault drill is interactive: a developer watches the agent and flips faults from another
terminal (``routechaos fault add ...``) or with curl. Every change goes through the same
validation as a profile, so a typo gets a 400 naming the field, never a half-applied fault.

Endpoints (JSON): ``GET /lanes``, ``GET /faults``, ``POST /faults`` (a fault as in a profile's
``faults:`` list), ``PUT /faults/{name}`` (replace), ``DELETE /faults/{name}``, ``DELETE /faults``
(remove all), ``GET /journal?since=N`` (attempts from index N), ``GET /marks``, and
``POST /calls``: an agent in another process (any language) reports each call's outcome, so a
command-line drill can judge what the agent accepted, as ``Drill.call`` does in-process.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .profile import ProfileError, _fault
from .yamlpos import Located

if TYPE_CHECKING:
    from .faults.plan import FaultPlan
    from .lanes import LaneSet

__all__ = ["ControlServer"]


def _error(status: int, message: str, field: str | None = None) -> web.Response:
    body: dict[str, Any] = {"error": message, "status": status}
    if field:
        body["field"] = field
    return web.json_response(body, status=status)


class ControlServer:
    """HTTP control of one :class:`LaneSet` and its :class:`FaultPlan`."""

    def __init__(self, lanes: LaneSet, host: str = "127.0.0.1", port: int = 0) -> None:
        self.lanes = lanes
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None
        self._reported = 0

    @property
    def plan(self) -> FaultPlan:
        plan = self.lanes.faults
        if plan is None or not hasattr(plan, "add"):
            raise RuntimeError("these lanes have no fault plan")
        return plan  # type: ignore[return-value]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def app(self) -> web.Application:
        app = web.Application()
        app.add_routes(
            [
                web.get("/lanes", self.get_lanes),
                web.get("/faults", self.get_faults),
                web.post("/faults", self.post_fault),
                web.put("/faults/{name}", self.put_fault),
                web.delete("/faults/{name}", self.delete_fault),
                web.delete("/faults", self.delete_all),
                web.get("/journal", self.get_journal),
                web.get("/marks", self.get_marks),
                web.post("/calls", self.post_call),
            ]
        )
        return app

    async def start(self) -> str:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        server = site._server
        if server is not None and getattr(server, "sockets", None):
            self.port = server.sockets[0].getsockname()[1]
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- handlers -----------------------------------------------------------------------------
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
        try:
            raw = await request.json()
        except ValueError:
            return _error(400, "body must be a JSON object describing a fault")
        if not isinstance(raw, dict):
            return _error(400, "body must be a JSON object describing a fault")
        if name is not None:
            raw = {**raw, "name": name}
        loc = Located({"faults": [raw]}, {}, "<control>")
        try:
            return _fault(loc, 0, raw, self.lanes.profile.lanes)
        except ProfileError as exc:
            return _error(400, exc.message, exc.field)

    async def post_fault(self, request: web.Request) -> web.Response:
        spec = await self._read_spec(request)
        if isinstance(spec, web.Response):
            return spec
        entry = self.plan.add(spec)
        self.lanes.journal.mark("fault_added", entry.spec.lane, fault=entry.name, fault_type=entry.spec.fault)
        return web.json_response(entry.to_json(), status=201)

    async def put_fault(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        spec = await self._read_spec(request, name)
        if isinstance(spec, web.Response):
            return spec
        try:
            self.plan.remove(name)
        except KeyError:
            return _error(404, f"fault {name!r} not found")
        await asyncio.sleep(0)  # let a lane-level fault bring its lane back before re-adding
        entry = self.plan.add(spec)
        self.lanes.journal.mark("fault_changed", entry.spec.lane, fault=entry.name, fault_type=entry.spec.fault)
        return web.json_response(entry.to_json())

    async def delete_fault(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        try:
            entry = self.plan.remove(name)
        except KeyError:
            return _error(404, f"fault {name!r} not found")
        self.lanes.journal.mark("fault_removed", entry.spec.lane, fault=entry.name, fault_type=entry.spec.fault)
        return web.Response(status=204)

    async def delete_all(self, request: web.Request) -> web.Response:
        self.plan.clear()
        self.lanes.journal.mark("faults_cleared")
        return web.Response(status=204)

    async def get_journal(self, request: web.Request) -> web.Response:
        try:
            since = int(request.query.get("since", "0"))
        except ValueError:
            return _error(400, "since must be an integer")
        attempts = self.lanes.journal.attempts()
        return web.json_response([a.to_json() for a in attempts[since:]])

    async def post_call(self, request: web.Request) -> web.Response:
        """An agent in another process reports one call's outcome (what ``Drill.call`` records
        in-process): ``{"id", "outcome": "ok"|"error", "text", "lane", "complete", "error",
        "error_type", "started_at", "ended_at"}`` with epoch seconds (or ``duration``: then the call is
        taken to have ended now)."""
        from .journal import Call

        try:
            raw = await request.json()
        except ValueError:
            return _error(400, "body must be a JSON object describing a call")
        if not isinstance(raw, dict):
            return _error(400, "body must be a JSON object describing a call")
        outcome = raw.get("outcome", "ok")
        if outcome not in ("ok", "error", "unknown"):
            return _error(400, "outcome must be ok, error or unknown", "outcome")
        duration = raw.get("duration", 0.0)
        if isinstance(duration, bool) or not isinstance(duration, int | float) or duration < 0:
            return _error(400, "duration must be seconds >= 0", "duration")
        journal = self.lanes.journal
        now = journal.now()
        t_end, t_start = now, max(0.0, now - float(duration))
        started, ended = raw.get("started_at"), raw.get("ended_at")
        if isinstance(started, int | float) and isinstance(ended, int | float) and 0 <= ended - started:
            # epoch seconds from the agent's own clock: exact, unlike "now minus duration", which
            # would count the report's own delivery as part of the call
            t_start, t_end = max(0.0, started - journal.wall0), max(0.0, ended - journal.wall0)
        self._reported += 1
        call = Call(
            id=str(raw.get("id") or f"reported-{self._reported:04d}"),
            t_start=t_start,
            t_end=t_end,
            outcome=outcome,
            text=raw.get("text") if isinstance(raw.get("text"), str) else None,
            lane=raw.get("lane") if isinstance(raw.get("lane"), str) else None,
            complete=raw.get("complete") if isinstance(raw.get("complete"), bool) else None,
            error=str(raw["error"])[:500] if raw.get("error") else None,
            error_type=str(raw["error_type"]) if raw.get("error_type") else None,
        )
        journal.record_call(call)
        return web.json_response({"id": call.id}, status=201)

    async def get_marks(self, request: web.Request) -> web.Response:
        return web.json_response([m.to_json() for m in self.lanes.journal.marks()])
