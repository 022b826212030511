"""A cassette as a lane's upstream: recorded exchanges answered as recorded, with their timing.

The lane cannot tell a :class:`CassetteUpstream` from a real provider: it returns the recorded
status, headers and body, or, for a stream, the recorded events (decoded and classified by the
dialect, exactly as :class:`~harness.proxy.upstream.HttpUpstream` decodes a live stream), each
released at its recorded offset multiplied by the lane's ``time_scale``, or at a set pace. So
every fault acts on a replay exactly as on the simulator: a 429 before it, a cut at its 40th
token, a stall inside it.

A request is matched by its key (:func:`harness.cassette.request_key`); the k-th request with a
key gets the k-th recording of it, and the last one again once they are used up (a retry of a
recorded call gets the recorded answer). A request no recording matches gets the dialect's own
400 error naming the nearest recorded request, or the simulator's answer when the lane says
``fallthrough: simulator``.

A replayed answer is the **recorded answer** of its attempt: its text is noted in the journal
once (a ``recorded_answer`` mark) and the attempt names it (``Attempt.answer``), so checks judge
truncation against what the provider really said rather than the simulator's canonical words.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from .answers import ANSWER_MARK, recorded_text, remember_answer
from .cassette import Cassette, Exchange, differences, make_request
from .dialects.base import Dialect, ErrorKind, ErrorSpec, Event, EventKind, RequestInfo
from .journal import Journal
from .proxy.upstream import SimulatorUpstream, UpstreamFailure, UpstreamResponse, _classified
from .simulator import SimSettings, Simulator

__all__ = ["CassetteUpstream", "Replayed", "cassette_upstream"]


@dataclass(slots=True)
class Replayed:
    """A recorded stream, decoded once: its events with their offsets, and what it says."""

    t_headers: float
    batches: list[tuple[float, list[Event]]]
    text: str
    tokens: int
    usage: dict[str, int] | None
    finish: str | None
    failure: str | None  # the upstream broke at the end of the recording
    terminated: bool = False  # the recording holds the dialect's terminator: the answer is whole


def decode(ex: Exchange, dialect: Dialect) -> Replayed:
    """``ex``'s stream as the lane's upstream reader would have produced it."""
    decoder = dialect.stream_decoder(None)
    batches: list[tuple[float, list[Event]]] = []
    text: list[str] = []
    tokens = 0
    usage: dict[str, int] | None = None
    finish: str | None = None
    terminated = False
    events = ex.response.recorded_events()
    for i, rec in enumerate(events):
        raw = rec.raw
        decoded = decoder.feed(raw)
        batch = _classified(decoded, dialect) if decoded else []
        if i == len(events) - 1 and decoder.pending:
            batch.append(Event(decoder.pending, EventKind.MALFORMED))
        for ev in batch:
            if ev.kind is EventKind.CONTENT or (ev.text and ev.kind is not EventKind.ERROR):
                text.append(ev.text)
            tokens += ev.tokens
            if ev.usage is not None:
                usage = ev.usage.to_dict()
            if ev.finish is not None:
                finish = ev.finish
            terminated = terminated or ev.kind is EventKind.TERMINATOR
        if batch:
            batches.append((rec.t, batch))
    failure = ex.response.error if ex.response.end == "upstream_error" else None
    return Replayed(ex.response.t_headers, batches, "".join(text), tokens, usage, finish, failure, terminated)


class CassetteUpstream:
    """Answers a lane's requests from ``cassette``; see the module notes."""

    def __init__(
        self,
        cassette: Cassette,
        journal: Journal,
        *,
        lane: str = "",
        time_scale: float = 1.0,
        pace: float | None = None,
        fallthrough: Any = None,
    ) -> None:
        self.cassette = cassette
        self.journal = journal
        self.lane = lane
        self.time_scale = time_scale
        self.pace = pace  # tokens per second after the first event; None: the recorded offsets
        self.fallthrough = fallthrough  # an upstream (the simulator) for unmatched requests
        self.label = f"cassette:{cassette.path.name if cassette.path else 'memory'}"
        self._used: dict[str, int] = {}
        self._noted: set[str] = set()

    def pick(self, key: str) -> Exchange | None:
        got = self.cassette.by_key.get(key)
        if not got:
            return None
        k = self._used.get(key, 0)
        self._used[key] = k + 1
        return got[min(k, len(got) - 1)]

    async def send(
        self, method: str, path_qs: str, headers: Mapping[str, str], body: bytes, req: RequestInfo, dialect: Dialect
    ) -> UpstreamResponse:
        asked = make_request(
            dialect=dialect.name,
            method=method,
            path_qs=path_qs,
            headers={},
            body=body,
            model=req.model,
            stream=req.stream,
            fingerprint=req.fingerprint,
        )
        ex = self.pick(asked.key)
        if ex is None:
            if self.fallthrough is not None:
                return await self.fallthrough.send(method, path_qs, headers, body, req, dialect)
            return self._unmatched(asked, dialect, req)
        resp = ex.response
        if resp.end == "upstream_error" and resp.events is None:
            await self._sleep(resp.t_headers)
            raise UpstreamFailure(resp.error or "the recorded upstream failed")
        hdrs = [(k, v) for k, v in resp.headers]
        if resp.events is None:
            await self._sleep(resp.t_headers)
            data = resp.body_bytes
            out = UpstreamResponse(resp.status, hdrs, body=data)
            if resp.status < 400:
                info = dialect.read_completion(data)
                if info is not None and not info.tools:
                    out.answer = self._note(info.text)  # type: ignore[attr-defined]
                    n = info.usage.output_tokens if info.usage else max(1, len(info.text) // 4)
                    out.expected_tokens = n
            return out
        played = decode(ex, dialect)
        await self._sleep(played.t_headers)
        out = UpstreamResponse(resp.status, hdrs, events=self._play(played))
        if resp.status < 400 and (resp.end == "complete" or played.terminated):
            out.usage, out.finish = played.usage, played.finish
            if played.text:
                out.answer = self._note(played.text)  # type: ignore[attr-defined]
                # the lane counts a stream's tokens by estimate, and takes the provider's count at
                # the terminator: a whole replay reaches either
                out.expected_tokens = min(played.tokens, (played.usage or {}).get("output_tokens") or played.tokens)
        return out

    def _note(self, text: str) -> str:
        """The recorded answer's id, its text noted in the journal the first time."""
        aid = remember_answer(text)
        if aid not in self._noted:
            self._noted.add(aid)
            self.journal.mark(ANSWER_MARK, self.lane or None, id=aid, text=recorded_text(aid))
        return aid

    async def _sleep(self, recorded: float) -> None:
        if recorded > 0:
            await asyncio.sleep(recorded * self.time_scale)

    async def _play(self, played: Replayed) -> AsyncIterator[list[Event]]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        base = played.t_headers
        due = 0.0
        first = True
        for t, batch in played.batches:
            if self.pace is not None and not first:
                due += sum(max(1, ev.tokens) for ev in batch if ev.tokens) / self.pace
            else:
                due = max(0.0, t - base) * self.time_scale
            first = False
            wait = start + due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            yield batch
        if played.failure:
            raise UpstreamFailure(played.failure)

    def _unmatched(self, asked: Any, dialect: Dialect, req: RequestInfo) -> UpstreamResponse:
        near = self.cassette.nearest(asked)
        where = self.cassette.path.name if self.cassette.path else "the cassette"
        msg = f"routechaos replay: no exchange in {where} matches this request ({asked.describe()})"
        if near is not None:
            diff = ", ".join(differences(asked, near.request)) or "nothing identifying"
            msg += f"; the nearest recorded request is #{near.n} ({near.request.describe()}), which differs in {diff}"
        else:
            msg += "; the cassette holds no exchange"
        r = dialect.render_error(ErrorSpec(ErrorKind.INVALID_REQUEST, status=400, message=msg), req)
        return UpstreamResponse(r.status, r.headers, body=r.body)

    async def close(self) -> None:
        if self.fallthrough is not None:
            await self.fallthrough.close()


def cassette_upstream(spec: Any, journal: Journal, time_scale: float) -> CassetteUpstream:
    """The upstream of a lane with ``replay:`` (a :class:`~harness.profile.LaneSpec`)."""
    r = spec.replay
    fall = None
    if r.fallthrough == "simulator":
        fall = SimulatorUpstream(Simulator((spec.simulator or SimSettings()).scaled(time_scale)))
    return CassetteUpstream(
        Cassette.load(r.cassette), journal, lane=spec.name, time_scale=time_scale, pace=r.pace, fallthrough=fall
    )
