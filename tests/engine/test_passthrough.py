"""The pass-through path and the full event path give the same journal and the same client bytes.

Every streaming dialect's real stream is recorded from the simulator, then replayed by a scripted
upstream on a real loopback socket, as it was and altered the ways real streams go wrong: split
across reads at odd places, CRLF framing, JSON escapes and broken UTF-8 in the text, cut in the
middle of an event (with and without a clean end of the body, and with a reset), an in-band error,
an oversized event. A lane forwards each to a raw-socket client, once spliced
(:mod:`harness.proxy.passthrough`) and once with ``FORCE_FULL``; a lane in front of another lane
is held to the same. Time is virtual, so even the token times must be identical.
"""

from __future__ import annotations

import asyncio
import json
import random
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from harness.clientkit import build_request
from harness.clock import VirtualClock
from harness.dialects import dialects_for
from harness.dialects.base import ErrorKind, ErrorSpec
from harness.dialects.lazy import LazyEvents
from harness.faults.base import FAULTS, fault_names
from harness.faults.plan import Composite
from harness.journal import Journal
from harness.proxy import HttpUpstream, Intervention, Lane, SimulatorUpstream, passthrough, server
from harness.proxy.hooks import Close, CloseMode
from harness.simulator import SimSettings, Simulator

FORMS = (
    "openai",
    "openai-responses",
    "anthropic",
    "gemini",
    "ollama",
    "ollama-native",
    "azure",
    "openrouter",
    "vertex",
    "bedrock",
)
LANE_DIALECT = {"openai-responses": "openai", "ollama-native": "ollama"}
TOOL_FORMS = ("openai", "openai-responses", "anthropic", "gemini", "azure", "openrouter", "vertex")
#: a token per millisecond: the simulator sends the tokens due at each wake-up as one event, so a
#: faster rate let one late wake-up on a loaded machine make the whole answer a single event (and
#: a stream with one content event has nothing to read lazily)
SIM = SimSettings(tokens_per_second=1000.0, ttft=0.0, answer_tokens=40, max_events_per_second=0)
PROMPT = "Tell me about the lane."
SCHEMA = {"type": "object", "properties": {"path": {"type": "string"}, "line": {"type": "integer"}}}
ESCAPED = b'q\\"uo\\\\te\\u00e9\\n\\t\\ud83d\\ude00'  # a word as JSON escapes: quote, backslash, é, newline, emoji


def _tools_body(form: str, body: dict[str, Any]) -> dict[str, Any]:
    fn = {"name": "run_tests", "description": "Run the test suite.", "parameters": SCHEMA}
    if form == "openai-responses":
        body["tools"] = [{"type": "function", **fn}]
    elif form == "anthropic":
        body["tools"] = [{"name": fn["name"], "description": fn["description"], "input_schema": SCHEMA}]
    elif form in ("gemini", "vertex"):
        body["tools"] = [{"functionDeclarations": [fn]}]
    else:
        body["tools"] = [{"type": "function", "function": fn}]
    return body


# -- a raw HTTP client and a scripted upstream, both on real loopback sockets ----------------------


async def _fetch(port: int, path: str, body: dict[str, Any]) -> tuple[bytes, bytes]:
    """POST ``body``; the response head (minus ``Date``) and the de-chunked body bytes, read
    until the lane closes or resets the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    payload = json.dumps(body).encode()
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: lane\r\nContent-Type: application/json\r\nConnection: close\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n".encode()
        + payload
    )
    data = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), 10):
            data += chunk
    except ConnectionError:
        pass
    writer.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    head = b"\r\n".join(h for h in head.split(b"\r\n") if not h.lower().startswith(b"date:"))
    if b"transfer-encoding: chunked" not in head.lower():
        return head, rest
    out = b""
    while rest:
        line, sep, rest = rest.partition(b"\r\n")
        if not sep or not line:
            break
        size = int(line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        rest = rest[size + 2 :]
    return head, out


class Script:
    """An upstream that answers every request with ``pieces`` (one chunk each, a short pause
    between them so they arrive as separate reads), then ends the body, closes, or resets."""

    def __init__(self, content_type: str, pieces: list[bytes], end: str = "eof") -> None:
        self.content_type, self.pieces, self.end = content_type, pieces, end
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(h.split(b":")[1]) for h in head.lower().split(b"\r\n") if h.startswith(b"content-length"))
        await reader.readexactly(length)
        writer.write(
            f"HTTP/1.1 200 OK\r\nContent-Type: {self.content_type}\r\nx-request-id: req_script\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        for piece in self.pieces:
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
            await asyncio.sleep(0.001)
        if self.end == "eof":
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            writer.close()
        elif self.end == "rst":
            writer.transport.abort()
        else:
            writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()


# -- recording and altering real streams -----------------------------------------------------------


async def _record(form: str, tools: bool) -> tuple[str, dict[str, Any], str, bytes]:
    path, body = build_request(form, PROMPT)
    if tools:
        body = _tools_body(form, body)
    origin = Lane("origin", LANE_DIALECT.get(form, form), SimulatorUpstream(Simulator(SIM)), Journal())
    await origin.start()
    try:
        head, data = await _fetch(origin.port, path, body)
    finally:
        await origin.stop()
    ctype = next(
        h.split(b":", 1)[1].strip().decode() for h in head.split(b"\r\n") if h.lower().startswith(b"content-type")
    )
    return path, body, ctype, data


def _split(data: bytes, seed: int) -> list[bytes]:
    """``data`` in pieces of 1 to 97 bytes: events split across reads at every kind of place."""
    rnd = random.Random(seed)
    out, i = [], 0
    while i < len(data):
        n = rnd.randint(1, 97)
        out.append(data[i : i + n])
        i += n
    return out


def _dialect(form: str, path: str) -> Any:
    for d in dialects_for(LANE_DIALECT.get(form, form)):
        if d.matches("POST", path.split("?")[0]):
            return d
    raise AssertionError(f"no dialect of {form} serves {path}")


def _events(form: str, path: str, data: bytes) -> list[bytes]:
    return [ev.raw for ev in _dialect(form, path).stream_decoder().feed(data)]


def _inband(form: str, path: str, events: list[bytes]) -> list[bytes]:
    """Half the events, then the dialect's own in-band error (and nothing after it)."""
    dialect = _dialect(form, path)
    _, body = build_request(form, PROMPT)
    target, _, qs = path.partition("?")
    query = dict(urllib.parse.parse_qsl(qs))
    req = dialect.parse_request("POST", target, query, {}, json.dumps(body).encode())
    err = dialect.stream_encoder(req).error(ErrorSpec(ErrorKind.OVERLOADED))
    return events[: len(events) // 2] + [ev.data for ev in err]


def _cases(form: str, path: str, data: bytes) -> Iterator[tuple[str, list[bytes], str]]:
    events = _events(form, path, data)
    sse = not form.startswith("bedrock")
    yield "per-event", events, "eof"
    yield "split", _split(data, 1), "eof"
    yield "one-read", [data], "eof"
    if sse:
        yield "crlf", _split(data.replace(b"\n", b"\r\n"), 2), "eof"
        word = b"lane" if b"lane" in data else b"the"
        yield "escapes", _split(data.replace(word, ESCAPED), 3), "eof"
        yield "bad-utf8", _split(data.replace(word, b"\xff\xc3(\xe2\x82"), 4), "eof"
    cut = data[: len(data) * 2 // 3]
    yield "cut-clean-end", _split(cut, 5), "eof"
    yield "cut-fin", _split(cut, 6), "fin"
    yield "cut-rst", events[: len(events) // 2], "rst"
    yield "inband-error", _inband(form, path, events), "eof"
    yield "no-terminator", events[:-1], "eof"


# -- one exchange on either path ------------------------------------------------------------------


def _journal_facts(journal: Journal) -> list[dict[str, Any]]:
    out = []
    for a in journal.attempts():
        d = a.to_json()
        d.pop("id")
        d.pop("wall_start")
        d.pop("upstream")  # each exchange has its own scripted upstream (and port)
        d["headers"].pop("host", None)
        out.append(d)
    return out


async def _exchange(
    form: str, path: str, body: dict[str, Any], ctype: str, pieces: list[bytes], end: str, chained: bool, **limits: Any
) -> tuple[bytes, bytes, list[dict[str, Any]]]:
    script = Script(ctype, pieces, end)
    url = await script.start()
    journal = Journal(clock=VirtualClock())
    dialect = LANE_DIALECT.get(form, form)
    lanes = [Lane("back", dialect, HttpUpstream(url, **limits), journal)]
    if chained:
        await lanes[0].start()
        lanes.append(Lane("front", dialect, HttpUpstream(lanes[0].url, **limits), journal))
    await lanes[-1].start()
    try:
        head, got = await _fetch(lanes[-1].port, path, body)
        for _ in range(500):  # the attempt ends as the lane's handler returns: wait for both lanes
            if len(journal.attempts()) == len(lanes) and not any(lane._open for lane in lanes):
                break
            await asyncio.sleep(0.01)
    finally:
        for lane in reversed(lanes):
            await lane.stop()
        await script.stop()
    facts = sorted(_journal_facts(journal), key=lambda d: d["lane"])
    return head, got, facts


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts relayed streams and events read lazily (so a test cannot pass on the full path twice)."""
    seen = {"relayed": 0, "lazy": 0}
    relay, match = server.relay, LazyEvents.match

    async def counting_relay(*args: Any) -> Any:
        seen["relayed"] += 1
        return await relay(*args)

    def counting_match(self: LazyEvents, raw: bytes) -> Any:
        hit = match(self, raw)
        seen["lazy"] += hit is not None
        return hit

    monkeypatch.setattr(server, "relay", counting_relay)
    monkeypatch.setattr(LazyEvents, "match", counting_match)
    return seen


async def _both(monkeypatch: pytest.MonkeyPatch, *args: Any, **kw: Any) -> tuple[Any, Any]:
    monkeypatch.setattr(passthrough, "FORCE_FULL", False)
    fast = await _exchange(*args, **kw)
    monkeypatch.setattr(passthrough, "FORCE_FULL", True)
    full = await _exchange(*args, **kw)
    monkeypatch.setattr(passthrough, "FORCE_FULL", False)
    return fast, full


@pytest.mark.parametrize("tools", [False, True], ids=["text", "tools"])
@pytest.mark.parametrize("form", FORMS)
async def test_both_paths_journal_and_send_the_same(form: str, tools: bool, monkeypatch, spy) -> None:
    if tools and form not in TOOL_FORMS:
        pytest.skip(f"{form} carries no tool calls")
    path, body, ctype, data = await _record(form, tools)
    for name, pieces, end in _cases(form, path, data):
        fast, full = await _both(monkeypatch, form, path, body, ctype, pieces, end, False)
        assert fast[2] == full[2], f"{form} {name}: journals differ: {_diff(fast[2], full[2])}"
        assert fast[0] == full[0], f"{form} {name}: response heads differ"
        if end != "rst" and not name.startswith("cut-fin"):  # a reset may discard what was in flight
            assert fast[1] == full[1], f"{form} {name}: client bytes differ"
        if name == "per-event":
            a = fast[2][0]
            assert a["end_reason"] == "complete" and a["tokens"] > 0, a
            assert a["t_first_token"] is not None
            if tools:
                assert a["tool_calls"], a
    assert spy["relayed"] > 0
    # every content event of a shape is read lazily but on Bedrock (binary frames with a CRC),
    # Ollama's NDJSON (a timestamp in every line) and Gemini's tool calls (whole, no text)
    if form not in ("bedrock", "ollama-native") and not (tools and form in ("gemini", "vertex")):
        assert spy["lazy"] > 0, "no event was read lazily"


@pytest.mark.parametrize("form", ["openai", "anthropic", "openai-responses", "gemini"])
async def test_a_lane_in_front_of_a_lane(form: str, monkeypatch, spy) -> None:
    path, body, ctype, data = await _record(form, False)
    for name, pieces, end in _cases(form, path, data):
        if end == "rst":
            continue
        fast, full = await _both(monkeypatch, form, path, body, ctype, pieces, end, True)
        assert [a["lane"] for a in fast[2]] == ["back", "front"]
        assert fast[2] == full[2], f"{form} {name}: journals differ: {_diff(fast[2], full[2])}"
        if end != "fin":
            assert fast[1] == full[1], f"{form} {name}: client bytes differ"


@pytest.mark.parametrize("form", ["openai", "anthropic", "bedrock"])
async def test_an_oversized_event_ends_both_paths_alike(form: str, monkeypatch) -> None:
    path, body, ctype, data = await _record(form, False)
    events = _events(form, path, data)
    big = max(len(e) for e in events)
    fast, full = await _both(
        monkeypatch, form, path, body, ctype, _split(data, 7), "eof", False, max_event_bytes=big - 1
    )
    assert fast[2] == full[2]
    assert fast[2][0]["end_reason"] == "upstream_error"
    fast, full = await _both(
        monkeypatch, form, path, body, ctype, _split(data, 8), "eof", False, max_response_bytes=len(data) // 2
    )
    assert fast[2] == full[2]
    assert fast[2][0]["end_reason"] == "upstream_error"


class _Cut(Intervention):
    """Acts on events: the lane must take the full path for it."""

    name = "cut_after_two"

    async def transform(self, ctx: Any, events: Any) -> Any:  # type: ignore[override]
        n = 0
        async for batch in events:
            for ev in batch:
                n += 1
                yield [ev]
                if n == 2:
                    yield Close(CloseMode.FIN, "cut")
                    return


class _Headers(Intervention):
    """Only adds a header: the stream may pass through."""

    name = "header"
    is_fault = False

    def response_headers(self, ctx: Any, status: int) -> list[tuple[str, str]]:
        return [("x-ratelimit-remaining-requests", "7")]


class _Hook:
    def __init__(self, iv: Intervention) -> None:
        self.iv = iv

    def decide(self, ctx: Any) -> Intervention:
        return self.iv


def test_only_interventions_that_act_on_events_take_the_full_path() -> None:
    assert _Cut().touches_stream() and not _Headers().touches_stream()
    assert Composite([_Headers(), _Cut()]).touches_stream()
    assert not Composite([_Headers(), _Headers()]).touches_stream()
    for name in fault_names():  # every fault of the catalogue says which path it needs
        cls = FAULTS[name]
        acts = any(getattr(cls, m) is not getattr(Intervention, m) for m in ("transform", "upstream_response"))
        assert cls.touches_stream(cls.__new__(cls)) is acts, name


@pytest.mark.parametrize(("iv", "relayed"), [(_Cut(), 0), (_Headers(), 1)])
async def test_the_plan_decides_the_path_per_attempt(iv: Intervention, relayed: int, spy) -> None:
    path, body, ctype, data = await _record("openai", False)
    script = Script(ctype, _events("openai", path, data), "eof")
    url = await script.start()
    lane = Lane("back", "openai", HttpUpstream(url), Journal(), faults=_Hook(iv))
    await lane.start()
    try:
        head, got = await _fetch(lane.port, path, body)
    finally:
        await lane.stop()
        await script.stop()
    assert spy["relayed"] == relayed
    if relayed:
        assert b"x-ratelimit-remaining-requests: 7" in head.lower() and got == data
    else:
        assert got == b"".join(_events("openai", path, data)[:2])


def _diff(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> str:
    return "; ".join(
        f"{x.get('lane')}.{k}: {x.get(k)!r} != {y.get(k)!r}"
        for x, y in zip(a, b, strict=False)
        for k in x
        if x.get(k) != y.get(k)
    )
