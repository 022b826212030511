"""Two surfaces the fuzz targets found wanting, held here input by input.

The embedded Toxiproxy API read bodies with Python's lenient ``json.loads``: ``NaN`` and
``Infinity`` were taken (a toxicity of NaN then came back in the answer as a bare ``NaN``, which
is not JSON), JSON nested 100k deep was a 500 (``RecursionError``), and an attribute of ``1e999``
or ``Infinity`` was a 500 (``OverflowError`` from ``int(inf)``). Go's decoder refuses them all;
now so does the embedded server, with its 400 JSON error.

A lane (and the control API, and the Toxiproxy API) answered a request line claiming
``HTTP/2.0`` with a status line ``HTTP/2.0 ...``, which no HTTP/1 client can read. They answer
as HTTP/1.1 now, and close.
"""

from __future__ import annotations

import json

import httpx
import pytest

from harness.toxiproxy import ToxiproxyServer

from .conftest import parse_response, raw_http

JSON = {"Content-Type": "application/json"}
GOOD = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def toxiproxy():
    with ToxiproxyServer.run_in_thread(seed=3) as handle:
        r = httpx.post(handle.url + "/proxies", json={"name": "p", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"})
        assert r.status_code == 201
        yield handle


@pytest.mark.parametrize(
    "path,body",
    [
        ("/proxies/p/toxics", b'{"type": "latency", "toxicity": NaN}'),
        ("/proxies/p/toxics", b'{"type": "latency", "toxicity": Infinity}'),
        ("/proxies/p/toxics", b'{"type": "latency", "toxicity": 1e39}'),
        ("/proxies/p/toxics", b'{"type": "latency", "attributes": {"latency": 1e999}}'),
        ("/proxies/p/toxics", b'{"type": "latency", "attributes": {"latency": 1e300}}'),
        ("/proxies/p/toxics", b'{"type": "latency", "attributes": {"latency": 9223372036854775808}}'),
        ("/proxies/p/toxics", b'{"type": "latency", "attributes": {"latency": NaN}}'),
        ("/proxies", b"[" * 100_000 + b"]" * 100_000),
        ("/populate", b"[" * 100_000 + b"]" * 100_000),
        ("/proxies", b'{"name": "q\\ud800", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"}'),
    ],
)
def test_the_embedded_toxiproxy_refuses_what_go_refuses_with_a_400(toxiproxy, path, body):
    r = httpx.post(toxiproxy.url + path, content=body, headers=JSON)
    assert r.status_code == 400, r.text
    assert r.json()["status"] == 400 and r.json()["error"].startswith("bad request body")
    assert httpx.get(toxiproxy.url + "/proxies/p/toxics").json() == []
    assert set(httpx.get(toxiproxy.url + "/proxies").json()) == {"p"}


def test_a_toxic_update_refuses_a_non_finite_toxicity(toxiproxy):
    url = toxiproxy.url + "/proxies/p/toxics"
    assert httpx.post(url, json={"name": "t", "type": "latency", "attributes": {"latency": 5}}).status_code == 200
    r = httpx.post(url + "/t", content=b'{"toxicity": -Infinity}', headers=JSON)
    assert r.status_code == 400 and r.json()["status"] == 400
    assert httpx.get(url + "/t").json()["toxicity"] == 1.0


@pytest.mark.parametrize(
    "version,status",
    [("HTTP/2.0", 200), ("HTTP/0.9", 200), ("HTTP/1.7", 400), ("HTTP/3.0", 400)],  # 400: aiohttp refuses them
)
def test_a_lane_answers_any_http_version_claim_as_http_1(start_lanes, version, status):
    bg = start_lanes(lane="openai")
    port = int(bg.urls["lane"].rsplit(":", 1)[1])
    body = json.dumps(GOOD).encode()
    head = f"POST /v1/chat/completions {version}\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    raw = raw_http(port, head.encode() + b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    assert raw.startswith(b"HTTP/1.1 " if status == 200 else b"HTTP/1."), raw[:80]
    got, headers, _ = parse_response(raw)
    assert got == status
    if status == 200:  # answered as HTTP/1.1, and the connection closed after it
        assert headers.get("connection", "").lower() == "close"
    r = httpx.post(bg.urls["lane"] + "/v1/chat/completions", json=GOOD)  # and it serves the next one
    assert r.status_code == 200


def test_the_toxiproxy_api_answers_an_http_2_claim_as_http_1_1(toxiproxy):
    port = int(toxiproxy.url.rsplit(":", 1)[1])
    raw = raw_http(port, b"GET /version HTTP/2.0\r\nHost: 127.0.0.1:%d\r\n\r\n" % port)
    assert raw.startswith(b"HTTP/1.1 200"), raw[:80]
