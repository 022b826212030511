"""Fuzz targets over the harness's HTTP surfaces, on real loopback sockets.

- ``control_api``: requests to a drill's control API (methods, paths, headers, JSON and not-JSON
  bodies, faults and call reports with awkward values, ``NaN``, deep nesting). Every answer is a
  2xx or a 4xx JSON error ``{"error", "status"}``; never a 5xx; journal.jsonl stays strict JSON.
- ``toxiproxy_api``: requests to the embedded Toxiproxy API (proxies, toxics, populate, reset).
  Never a 5xx; an error is Toxiproxy's JSON ``{"error", "status"}`` (or its byte-exact plain
  ``404 page not found`` for an unknown route, and an empty 405).
- ``lane_http``: raw bytes to a lane (request lines, headers, chunking, bodies, pipelining, all
  bent). What comes back is a sequence of well-formed HTTP responses (read with h11) or a clean
  close; an error is the dialect's JSON; every response is journaled; the lane serves the next
  request.
"""

from __future__ import annotations

import contextlib
import json
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import h11
import httpx
from hypothesis import strategies as st

from harness.control import ControlServer
from harness.journal import Journal
from harness.lanes import BackgroundLanes, LaneSet
from harness.profile import profile_from_dict
from harness.toxiproxy.server import ToxiproxyServer

from .fuzz_profiles import awkward_scalars, faults, json_like, mostly

FAST = {"tokens_per_second": 5000, "ttft": 0.0, "answer_tokens": 8}
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36"
Check = Callable[[Any], None]


def _strict(line: bytes) -> Any:
    def refuse(name: str) -> Any:
        raise AssertionError(f"journal line holds bare {name}: {line[:200]!r}")

    return json.loads(line, parse_constant=refuse)


def deep_json(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def _encode(body: Any) -> bytes:
    if isinstance(body, bytes):
        return body
    return json.dumps(body, allow_nan=True).encode()


segments = st.one_of(
    st.sampled_from(["faults", "calls", "journal", "marks", "lanes", "x", "", "..", "%2F", "faults%00"]),
    st.text(max_size=8).map(lambda s: quote(s, safe="")),
)
json_bodies = st.one_of(
    faults(),
    st.fixed_dictionaries(
        {},
        optional={
            "id": mostly(st.text(max_size=8), awkward_scalars),
            "outcome": mostly(st.sampled_from(["ok", "error", "unknown"]), awkward_scalars),
            "lane": mostly(st.sampled_from(["primary", "stable"]), awkward_scalars),
            "text": awkward_scalars,
            "complete": awkward_scalars,
            "duration": mostly(st.floats(0, 10), awkward_scalars),
            "started_at": awkward_scalars,
            "ended_at": awkward_scalars,
            "error": awkward_scalars,
        },
    ),
    json_like,
)
bodies = st.one_of(
    json_bodies.map(_encode),
    st.sampled_from([b"", b"null", b"{", b'{"fault": NaN}', b'{"duration": 1e999}', b"\xff\xfe", b'{"a": "\\ud800"}']),
    st.integers(30, 100_000).map(deep_json),
    st.binary(max_size=30),
)


@st.composite
def control_requests(draw: st.DrawFn) -> tuple[str, str, dict[str, str], bytes]:
    method = draw(st.sampled_from(["POST", "POST", "PUT", "GET", "DELETE", "PATCH", "HEAD", "OPTIONS"]))
    path = "/" + "/".join(draw(st.lists(segments, min_size=1, max_size=3)))
    if draw(st.integers(0, 5)) == 0:
        path += "?since=" + quote(draw(st.sampled_from(["0", "-1", "1e3", "9" * 30, "NaN", "\u0661", ""])))
    headers = {
        "Content-Type": draw(
            mostly(
                st.just("application/json"),
                st.sampled_from(["text/plain", "", "application/json; charset=latin-1", "multipart/form-data"]),
            )
        )
    }
    extra = draw(st.integers(0, 9))
    if extra == 0:
        headers["User-Agent"] = BROWSER
    elif extra == 1:
        headers["Origin"] = "http://evil.example"
    elif extra == 2:
        headers["Host"] = "evil.example"
    return method, path, headers, draw(bodies)


def _assert_json_error(status: int, ctype: str, content: bytes, method: str, *, allow_500: bool = False) -> None:
    assert status < 500 or allow_500, f"{status}: {content[:300]!r}"
    if status >= 400 and method != "HEAD":
        assert ctype.startswith("application/json"), f"{status} {ctype}: {content[:200]!r}"
        body = json.loads(content)
        assert body.get("status") == status and isinstance(body.get("error"), str), body


@contextlib.contextmanager
def control_target() -> Iterator[Check]:
    with tempfile.TemporaryDirectory(prefix="routechaos-fuzz-") as tmp:
        path = Path(tmp) / "journal.jsonl"
        profile = profile_from_dict(
            {
                "lanes": {
                    "primary": {"dialect": "openai", "simulator": FAST},
                    "stable": {"dialect": "anthropic", "simulator": FAST},
                }
            }
        )
        bg = BackgroundLanes(LaneSet(profile, Journal(path))).start()
        control = ControlServer(bg.lanes)
        bg.call(control.start)
        client = httpx.Client(timeout=30)
        state = {"offset": 0, "n": 0}

        def check(request: tuple[str, str, dict[str, str], bytes]) -> None:
            method, rel, headers, body = request
            url = control.url + rel
            r = client.request(method, url, headers=headers, content=body)
            _assert_json_error(r.status_code, r.headers.get("content-type", ""), r.content, method)
            state["n"] += 1
            if state["n"] % 20 == 0:
                client.delete(control.url + "/faults")  # keep the plan small
            with path.open("rb") as fh:
                fh.seek(state["offset"])
                data = fh.read()
            done = data[: data.rfind(b"\n") + 1]
            for line in done.splitlines():
                _strict(line)
            state["offset"] += len(done)

        try:
            yield check
        finally:
            client.close()
            bg.call(control.stop)
            bg.stop()


# -- embedded Toxiproxy --------------------------------------------------------------------------
listens = mostly(
    st.just("127.0.0.1:0"),
    st.one_of(
        awkward_scalars, st.sampled_from(["localhost:0", "127.0.0.1:99999", ":0", "127.0.0.1:-1", "[::1]:0", "x"])
    ),
)
proxy_bodies = st.fixed_dictionaries(
    {"name": mostly(st.sampled_from(["q", "r", "p"]), awkward_scalars)},
    optional={
        "listen": listens,
        "upstream": mostly(st.just("127.0.0.1:9"), awkward_scalars),
        "enabled": mostly(st.booleans(), awkward_scalars),
    },
)
tox_attrs = st.dictionaries(
    st.sampled_from(["latency", "jitter", "rate", "delay", "bytes", "timeout", "average_size", "size_variation"]),
    mostly(st.integers(0, 5000), st.one_of(awkward_scalars, st.sampled_from([2**63, -(2**63) - 1, 1e300, 10**307]))),
    max_size=3,
)
toxic_bodies = st.fixed_dictionaries(
    {},
    optional={
        "name": mostly(st.sampled_from(["t", "u"]), awkward_scalars),
        "type": mostly(
            st.sampled_from(
                ["latency", "bandwidth", "slicer", "limit_data", "reset_peer", "timeout", "slow_close", "noop"]
            ),
            awkward_scalars,
        ),
        "stream": mostly(st.sampled_from(["upstream", "downstream", "UpStream"]), awkward_scalars),
        "toxicity": mostly(st.floats(0, 1), st.one_of(awkward_scalars, st.sampled_from([1e39, -1e39, 3e38]))),
        "attributes": mostly(tox_attrs, json_like),
    },
)
tox_bodies = st.one_of(
    proxy_bodies.map(_encode),
    toxic_bodies.map(_encode),
    st.lists(proxy_bodies, max_size=3).map(_encode),
    st.sampled_from(
        [
            b"",
            b"{",
            b'{"toxicity": NaN, "type": "latency"}',
            b'{"attributes": {"latency": Infinity}, "type": "latency"}',
            b"[1]",
        ]
    ),
    st.integers(30, 100_000).map(deep_json),
    json_like.map(_encode),
)
tox_paths = st.one_of(
    st.sampled_from(
        [
            "/proxies",
            "/proxies/p",
            "/proxies/p/toxics",
            "/proxies/p/toxics/t",
            "/populate",
            "/reset",
            "/version",
            "/proxies/nope",
            "/proxies/p/toxics/nope",
            "/",
            "/proxies/p/toxics/t/x",
        ]
    ),
    segments.map(lambda s: "/proxies/" + s),
    segments.map(lambda s: "/proxies/p/toxics/" + s),
)


@st.composite
def toxiproxy_requests(draw: st.DrawFn) -> tuple[str, str, dict[str, str], bytes]:
    method = draw(st.sampled_from(["POST", "POST", "GET", "DELETE", "PATCH", "PUT"]))
    headers = {"Content-Type": draw(mostly(st.just("application/json"), st.sampled_from(["text/plain", ""])))}
    return method, draw(tox_paths), headers, draw(tox_bodies)


@contextlib.contextmanager
def toxiproxy_target() -> Iterator[Check]:
    server = ToxiproxyServer.run_in_thread()
    client = httpx.Client(base_url=server.url, timeout=30)
    base = {"name": "p", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"}

    def restore() -> None:
        proxies = client.get("/proxies").json()
        for name in proxies:
            if name != "p":
                client.delete(f"/proxies/{quote(name, safe='')}")
        if "p" not in proxies:
            client.post("/proxies", json=base)
        client.post("/reset")
        client.post("/proxies/p/toxics", json={"name": "t", "type": "latency", "attributes": {"latency": 1}})

    def check(request: tuple[str, str, dict[str, str], bytes]) -> None:
        method, path, headers, body = request
        r = client.request(method, path, headers=headers, content=body)
        status, content = r.status_code, r.content
        # Toxiproxy itself answers a listen address it cannot use with its JSON 500 (a Go net
        # error through apiError); the embedded server does the same, byte for byte
        listen_error = status == 500 and content.startswith(b'{"error": "listen tcp: ')
        assert status < 500 or listen_error, f"{status}: {content[:300]!r}"
        plain = (status == 404 and content == b"404 page not found\n") or (status == 405 and content == b"")
        if status >= 400 and not plain:
            _assert_json_error(status, r.headers.get("content-type", ""), content, method, allow_500=listen_error)
        for _ in range(3):
            try:
                r.json() if status < 300 and content else None
            except ValueError as exc:
                raise AssertionError(f"a {status} answer is not JSON: {content[:200]!r}") from exc
            break
        if method != "GET":
            restore()

    try:
        restore()
        yield check
    finally:
        client.close()
        server.stop()


# -- raw HTTP to a lane --------------------------------------------------------------------------
GOOD_BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
header_lines = st.sampled_from(
    [
        b"Host: 127.0.0.1",
        b"Content-Type: application/json",
        b"Content-Type: text/plain",
        b"Content-Length: 0",
        b"Content-Length: -1",
        b"Content-Length: 99999999999999999999",
        b"Content-Length: +5",
        b"Content-Length: 5, 5",
        b"Transfer-Encoding: chunked",
        b"Transfer-Encoding: gzip, chunked",
        b"Transfer-Encoding: chunked, identity",
        b"Transfer-Encoding:\x0bchunked",
        b"Connection: close",
        b"Connection: keep-alive",
        b"Expect: 100-continue",
        b"Authorization: Bearer sk-proj-FAKEfuzzKEY0123456789abcdefghij",
        b"X-Routechaos-Fault: stall",
        b"Bad Header: x",
        b"NoColon",
        b"X-Null: a\x00b",
        b" folded: continuation",
        b"X-Big: " + b"a" * 20_000,
        b"Content-Encoding: gzip",
        b"Accept-Encoding: br",
    ]
)
body_texts = st.one_of(
    st.sampled_from([GOOD_BODY, {**GOOD_BODY, "stream": True}, {**GOOD_BODY, "max_tokens": 10**30}]).map(_encode),
    json_bodies.map(_encode),
    st.sampled_from(
        [b'{"model": "m", "messages": [{"role": "user", "content": "\\ud800"}]}', b'{"x": NaN}', b"{", b"\xff"]
    ),
    st.integers(100, 50_000).map(deep_json),
    st.binary(max_size=40),
)


def _chunked(body: bytes, bent: int) -> bytes:
    if bent == 0:
        return f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    if bent == 1:
        return b"zz\r\n" + body + b"\r\n0\r\n\r\n"
    if bent == 2:
        return f"{len(body) + 10:x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    if bent == 3:
        return f"{len(body):x};ext=1\r\n".encode() + body + b"\r\n0\r\nTrailer: x\r\n\r\n"
    return f"{len(body):x}\r\n".encode() + body  # never ends


@st.composite
def raw_requests(draw: st.DrawFn) -> tuple[bytes, bool]:
    """(bytes to send, whether the request method is HEAD)."""
    method = draw(
        st.sampled_from(
            [b"POST", b"POST", b"POST", b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE", b"G\x00T", b"", b"post"]
        )
    )
    target = draw(
        st.one_of(
            st.sampled_from(
                [
                    b"/v1/chat/completions",
                    b"/v1/chat/completions",
                    b"/v1/models",
                    b"/",
                    b"*",
                    b"/v1/chat/completions?x=%zz",
                    b"http://x/v1/chat/completions",
                    b"/v1/../v1/chat/completions",
                    b"/" + b"a" * 9000,
                ]
            ),
            st.binary(max_size=12),
        )
    )
    version = draw(
        st.sampled_from([b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.1x", b"", b"HTTP/0.9"])
    )
    eol = draw(mostly(st.just(b"\r\n"), st.sampled_from([b"\n", b"\r"])))
    headers = draw(st.lists(header_lines, max_size=5))
    body = draw(body_texts)
    framing = draw(st.integers(0, 6))
    if framing <= 2:
        headers.append(b"Content-Length: %d" % len(body))
    elif framing == 3:
        headers.append(b"Transfer-Encoding: chunked")
        body = _chunked(body, draw(st.integers(0, 4)))
    elif framing == 4:
        headers += [b"Content-Length: %d" % len(body), b"Transfer-Encoding: chunked"]  # smuggling shape
    if draw(mostly(st.just(True), st.just(False))):
        headers.insert(0, b"Host: 127.0.0.1")
    data = method + b" " + target + b" " + version + eol + b"".join(h + eol for h in headers) + eol + body
    if draw(st.integers(0, 5)) == 0:  # a second, good request pipelined behind it
        good = _encode(GOOD_BODY)
        data += (
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(good), good)
        )
    # cut short, one in 16 (not at 0: Hypothesis draws bounds often); the lane rightly waits for the rest
    if draw(st.integers(0, 15)) == 7:
        data = data[: draw(st.integers(1, max(1, len(data))))]
    return data, method == b"HEAD"


def exchange(port: int, data: bytes, *, wait: float = 0.3, patience: float = 20.0) -> tuple[bytes, str]:
    """Send ``data`` on a fresh connection and read what comes back: (bytes, how reading ended:
    ``eof``, ``reset``, ``idle`` or ``timeout``).

    The write side stays open (aiohttp takes a half-close for a client gone). So reading stops at
    the server's close, or when the connection goes quiet between responses: after ``wait``
    seconds with nothing at all (the server may rightly be waiting for the rest of a request), or
    0.02 s after a complete response (keep-alive: a pipelined answer that comes later is not
    read, which loses an example's reach, never its verdict); inside a response it waits up to
    ``patience``."""
    raw = b""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=patience) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        last = time.monotonic()
        while True:
            sock.settimeout(0.01)
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                quiet = time.monotonic() - last
                state = _progress(raw)
                if state == "between" and quiet >= (0.02 if raw else wait):
                    return raw, "idle"
                if time.monotonic() - start > patience:
                    return raw, "timeout"
                continue
            except ConnectionResetError:
                return raw, "reset"
            if not chunk:
                return raw, "eof"
            raw += chunk
            last = time.monotonic()


def _progress(raw: bytes) -> str:
    """``between`` responses (or before any), or ``inside`` one, as far as ``raw`` goes."""
    if not raw:
        return "between"
    for head in (False, True):
        try:
            _parse(raw, head, eof=False)
            return "between"
        except _Incomplete:
            continue
        except h11.RemoteProtocolError:
            return "between"  # malformed: the caller will say so
    return "inside"


class _Incomplete(Exception):
    pass


def parse_responses(raw: bytes, head: bool, *, eof: bool = True) -> list[tuple[int, str, bytes]]:
    """The responses in ``raw`` as h11 reads them (a client's view): (status, content-type, body).
    Raises ``h11.RemoteProtocolError`` when ``raw`` is not a sequence of well-formed responses
    (a HEAD's answer is read as one without a body; when the server could not parse the request
    line it cannot know it was HEAD, so a body is then well-formed too)."""
    try:
        return _parse(raw, head, eof=eof)
    except _Incomplete:
        raise h11.RemoteProtocolError("the connection ends inside a response") from None
    except h11.RemoteProtocolError:
        if not head:
            raise
        return parse_responses(raw, False, eof=eof)


def _parse(raw: bytes, head: bool, *, eof: bool) -> list[tuple[int, str, bytes]]:
    conn = h11.Connection(our_role=h11.CLIENT)
    out: list[tuple[int, str, bytes]] = []
    if not raw:
        return out
    conn.receive_data(raw)
    if eof:
        conn.receive_data(b"")
    while True:
        if conn.our_state is h11.IDLE:
            if out and not conn.trailing_data[0]:
                return out  # nothing more came: the server closed (or idles) after its last answer
            method = "HEAD" if head and not out else "POST"  # a pipelined follower is a POST
            conn.send(h11.Request(method=method, target="/", headers=[("Host", "x"), ("Content-Length", "0")]))
            conn.send(h11.EndOfMessage())
        event = conn.next_event()
        if isinstance(event, h11.InformationalResponse):
            continue
        if isinstance(event, h11.Response):
            status, body = event.status_code, b""
            ctype = dict(event.headers).get(b"content-type", b"").decode("latin-1")
            while True:
                event = conn.next_event()
                if isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    break
                elif event is h11.NEED_DATA and not eof:
                    raise _Incomplete
                else:
                    raise h11.RemoteProtocolError(f"the response ends before its body does ({event})")
            out.append((status, ctype, body))
            if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
                conn.start_next_cycle()
            continue
        if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            return out
        if event is h11.NEED_DATA:
            if not eof:
                if conn.trailing_data[0]:  # the head of a response has begun
                    raise _Incomplete
                return out
            raise h11.RemoteProtocolError("the connection ends inside a response")
        raise h11.RemoteProtocolError(f"unexpected {event}")


@contextlib.contextmanager
def lane_target() -> Iterator[Check]:
    profile = profile_from_dict({"lanes": {"primary": {"dialect": "openai", "simulator": FAST}}})
    bg = BackgroundLanes(LaneSet(profile, Journal())).start()
    port = int(bg.urls["primary"].rsplit(":", 1)[1].split("/")[0])
    good = _encode(GOOD_BODY)
    probe = b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    probe += b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(good), good)

    def check(request: tuple[bytes, bool]) -> None:
        data, head = request
        before = len(bg.journal.attempts())
        raw, how = exchange(port, data)
        assert how != "timeout", f"a response begun and not finished in 20 s: {raw[:200]!r}"
        try:
            responses = parse_responses(raw, head, eof=how in ("eof", "reset"))
        except h11.RemoteProtocolError as exc:
            raise AssertionError(f"not well-formed HTTP ({exc}): {raw[:300]!r} ({how})") from None
        for status, ctype, body in responses:
            assert status < 500 or status in (502, 503, 504), f"{status}: {body[:300]!r}"
            if status >= 400 and not head:
                assert ctype.startswith("application/json"), f"{status} {ctype}: {body[:200]!r}"
                json.loads(body)
        deadline = time.monotonic() + 30  # a bound, not a speed: the machine may be loaded
        while len(bg.journal.attempts()) - before < len(responses) and time.monotonic() < deadline:
            time.sleep(0.005)  # the attempt is closed just after its last byte is written
        journaled = len(bg.journal.attempts()) - before
        assert journaled >= len(responses), f"{len(responses)} responses, {journaled} attempts journaled"
        raw, how = exchange(port, probe, wait=60.0, patience=60.0)
        got = parse_responses(raw, False, eof=how in ("eof", "reset"))
        assert got and got[0][0] == 200, f"the lane stopped serving: {raw[:300]!r} ({how})"

    try:
        yield check
    finally:
        bg.stop()
