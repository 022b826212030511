"""The control API and the embedded Toxiproxy refuse what a web page can send.

A page open in the developer's browser can reach loopback: with a form post (``text/plain`` or
form-encoded bodies need no CORS preflight), with ``fetch`` (``Origin`` set), or through DNS
rebinding (its own domain resolving to 127.0.0.1: ``Host: evil.example``). Before, every one of
them got a 201: ``refuse@*`` took both lanes down, ``POST /calls`` forged the verdict, and a
rebinding page read the journal.
"""

from __future__ import annotations

import json

import httpx
import pytest

from harness.toxiproxy import ToxiproxyServer
from harness.toxiproxy.client import ToxiproxyClient
from harness.webguard import Gate

from .conftest import BROWSER_UA

TAKE_EVERY_LANE_DOWN = json.dumps({"fault": "refuse", "lane": "*"}).encode()
JSON = {"Content-Type": "application/json"}

# (what a web page does, the headers it sends, the status it gets)
WEB_PAGE = [
    ("browser user agent", {"User-Agent": BROWSER_UA}, 403),
    ("fetch from a foreign origin", {"Origin": "https://evil.example"}, 403),
    ("fetch from a sandboxed frame", {"Origin": "null"}, 403),
    ("fetch metadata only", {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"}, 403),
    ("DNS rebinding", {"Host": "evil.example:{port}"}, 403),
    ("DNS rebinding on port 80", {"Host": "evil.example"}, 403),
    ("a Host naming another port", {"Host": "127.0.0.1:1"}, 403),
]
SIMPLE_BODIES = ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data"]


def _headers(template: dict[str, str], port: int) -> dict[str, str]:
    return {k: v.format(port=port) for k, v in template.items()}


@pytest.mark.parametrize("what,headers,status", WEB_PAGE, ids=[w[0] for w in WEB_PAGE])
def test_control_api_refuses_a_web_page(controlled, what, headers, status):
    bg, control = controlled
    r = httpx.post(
        control.url + "/faults", content=TAKE_EVERY_LANE_DOWN, headers={**JSON, **_headers(headers, control.port)}
    )
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json") and r.json()["status"] == status
    assert bg.lanes.faults.entries == []  # type: ignore[union-attr]
    assert all(lane.listening for lane in bg.lanes.lanes.values())


@pytest.mark.parametrize("ctype", [*SIMPLE_BODIES, None])
def test_control_api_refuses_a_body_not_declared_json(controlled, ctype):
    bg, control = controlled
    headers = {"Content-Type": ctype} if ctype else {}
    r = httpx.post(control.url + "/faults", content=TAKE_EVERY_LANE_DOWN, headers=headers)
    assert r.status_code == 415 and "application/json" in r.json()["error"]
    assert bg.lanes.faults.entries == []  # type: ignore[union-attr]


def test_control_api_needs_the_drills_token(controlled):
    bg, control = controlled
    base = f"http://127.0.0.1:{control.port}"
    call = {"id": "forged", "outcome": "ok", "text": "anything"}
    for url in (base + "/calls", base + "/not-the-token/calls", base + "/" + control.token[:-1] + "/calls"):
        r = httpx.post(url, json=call)
        assert r.status_code == 403 and "token" in r.json()["error"]
    assert httpx.get(base + "/journal").status_code == 403
    assert bg.journal.calls() == []
    # the URL the drill hands out works, and so does localhost on the bound port
    assert httpx.post(control.url + "/calls", json=call).status_code == 201
    r = httpx.get(control.url + "/lanes", headers={"Host": f"localhost:{control.port}"})
    assert r.status_code == 200 and [x["name"] for x in r.json()] == ["a", "b"]


def test_dns_rebinding_cannot_read_the_journal(controlled):
    bg, control = controlled
    httpx.post(
        bg.urls["a"] + "/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "q"}]}
    )
    assert len(httpx.get(control.url + "/journal").json()) == 1
    r = httpx.get(control.url + "/journal", headers={"Host": f"rebind.evil.example:{control.port}"})
    assert r.status_code == 403 and "attempt" not in r.text


def test_unknown_routes_and_methods_are_json_errors(controlled):
    _, control = controlled
    r = httpx.get(control.url + "/nope")
    assert r.status_code == 404 and r.json()["status"] == 404
    r = httpx.get(control.url + "/calls")
    assert r.status_code == 405 and r.json()["status"] == 405
    assert httpx.get(control.url).json()["endpoints"]


# -- the embedded Toxiproxy ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def toxiproxy():
    with ToxiproxyServer.run_in_thread(seed=7) as handle:
        yield handle


CREATE = json.dumps({"name": "web-page", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"}).encode()


def _proxies(url: str) -> dict:
    return httpx.get(url + "/proxies").json()


@pytest.mark.parametrize("what,headers,status", WEB_PAGE, ids=[w[0] for w in WEB_PAGE])
def test_embedded_toxiproxy_refuses_a_web_page(toxiproxy, what, headers, status):
    port = int(toxiproxy.url.rsplit(":", 1)[1])
    r = httpx.post(toxiproxy.url + "/proxies", content=CREATE, headers={**JSON, **_headers(headers, port)})
    assert r.status_code == status
    if what == "browser user agent":  # byte-exact with Go Toxiproxy's stopBrowsersMiddleware
        assert r.text == "User agent not allowed\n" and r.headers["content-type"] == "text/plain; charset=utf-8"
    else:
        assert r.json()["status"] == status
    assert "web-page" not in _proxies(toxiproxy.url)


@pytest.mark.parametrize("ctype", [*SIMPLE_BODIES, None])
def test_embedded_toxiproxy_refuses_a_body_not_declared_json(toxiproxy, ctype):
    headers = {"Content-Type": ctype} if ctype else {}
    r = httpx.post(toxiproxy.url + "/proxies", content=CREATE, headers=headers)
    assert r.status_code == 415 and r.json()["status"] == 415
    assert "web-page" not in _proxies(toxiproxy.url)


def test_real_toxiproxy_clients_still_work(toxiproxy):
    """The typed client and toxiproxy-python send no Origin, a non-browser user agent, a JSON
    body with its content type, and an empty body for ``POST /reset``."""
    toxiproxy_python = pytest.importorskip("toxiproxy")
    with ToxiproxyClient(toxiproxy.url) as client:
        client.create_proxy("typed", "127.0.0.1:0", "127.0.0.1:9")
        client.add_toxic("typed", "latency", attributes={"latency": 5}, name="lat")
        client.reset()
        client.delete_proxy("typed")
    host, port = toxiproxy.url.split("//", 1)[1].rsplit(":", 1)
    toxiproxy_python.api.APIConsumer.host, toxiproxy_python.api.APIConsumer.port = host, int(port)
    server = toxiproxy_python.Toxiproxy()
    made = server.create(name="py", upstream="127.0.0.1:9", listen="127.0.0.1:0")
    made.add_toxic(type="latency", attributes={"latency": 5})
    assert server.reset() and "py" in server.proxies()
    made.destroy()


def test_a_name_the_server_is_reached_by_on_purpose_can_be_allowed():
    with ToxiproxyServer.run_in_thread(host="0.0.0.0", allowed_hosts=("toxiproxy",)) as handle:
        port = int(handle.url.rsplit(":", 1)[1])
        for host, status in [(f"toxiproxy:{port}", 200), (f"10.1.2.3:{port}", 200), (f"evil.example:{port}", 403)]:
            url = f"http://127.0.0.1:{port}/version"
            assert httpx.get(url, headers={"Host": host}).status_code == status, host


# -- the gate itself (pure) ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "bound,host,ok",
    [
        (("127.0.0.1", 8474), "127.0.0.1:8474", True),
        (("127.0.0.1", 8474), "LOCALHOST:8474", True),
        (("127.0.0.1", 8474), "127.0.0.1", False),
        (("127.0.0.1", 8474), "127.0.0.1:8475", False),
        (("127.0.0.1", 8474), "10.0.0.1:8474", False),
        (("127.0.0.1", 8474), "evil.example:8474", False),
        (("127.0.0.1", 80), "127.0.0.1", True),
        (("::1", 9000), "[::1]:9000", True),
        (("::1", 9000), "::1:9000", False),
        (("0.0.0.0", 9000), "192.168.1.20:9000", True),
        (("0.0.0.0", 9000), "[fe80::1]:9000", True),
        (("0.0.0.0", 9000), "my-laptop.local:9000", False),
        (("localhost", 9000), "127.0.0.1:9000", True),
        (("127.0.0.1", 9000), "127.0.0.1:+9000", False),
        (("127.0.0.1", 9000), "[127.0.0.1:9000", False),
        (("127.0.0.1", 9000), "", False),
    ],
)
def test_gate_host_rules(bound, host, ok):
    gate = Gate()
    gate.bind(*bound)
    assert gate.host_allowed(host) is ok


def test_gate_lets_a_request_without_host_or_body_through():
    from multidict import CIMultiDict

    gate = Gate()
    gate.bind("127.0.0.1", 8474)
    assert gate.check("POST", CIMultiDict(), has_body=False) is None  # toxiproxy-python's POST /reset
    assert gate.check("DELETE", CIMultiDict({"Host": "127.0.0.1:8474"}), has_body=False) is None
    assert gate.check("POST", CIMultiDict({"Content-Type": "application/vnd.x+json"}), has_body=True) is None


def test_routechaos_fault_finds_the_token_in_the_serve_state_file(tmp_path, monkeypatch):
    import os
    import signal
    import stat
    import subprocess
    import sys
    import time

    from harness.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ROUTECHAOS_CONTROL_URL", raising=False)
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "serve"], stdout=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline().split() for _ in range(3)]
        assert lines[2][0] == "control"
        state = tmp_path / ".routechaos" / f"serve-{proc.pid}.json"  # one state file per serve
        for _ in range(200):  # written just after the "control" line
            if state.exists() and state.read_text():
                break
            time.sleep(0.025)
        assert json.loads(state.read_text())["control"] == lines[2][1]
        assert stat.S_IMODE(os.stat(state).st_mode) == 0o600  # it holds the token
        assert main(["fault", "add", "overloaded", "--lane", "stable", "--name", "x"]) == 0
        assert main(["fault", "list"]) == 0
        # the address without its token is refused, with a message that says why
        bare = lines[2][1].rsplit("/", 1)[0]
        assert main(["fault", "--control", bare, "list"]) == 2
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
