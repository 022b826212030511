"""Fixtures for the Toxiproxy layer: servers under test, upstreams, and socket helpers.

``toxiproxy_url`` is the embedded server, and also a real Toxiproxy when ``TOXIPROXY_URL`` is set
(it must run on this machine: proxies listen on 127.0.0.1 and reach upstreams on 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import os
import socket
import socketserver
import threading
import uuid
from collections.abc import Callable, Iterator

import pytest
from aiohttp import web
from toxiproxy_testlib import BIG_BODY

from harness.toxiproxy import ThreadedToxiproxyServer, ToxiproxyServer
from harness.toxiproxy.client import Proxy, ToxiproxyClient

# -- servers under test --------


@pytest.fixture(scope="session")
def embedded() -> Iterator[ThreadedToxiproxyServer]:
    with ToxiproxyServer.run_in_thread(seed=1234) as handle:
        yield handle


@pytest.fixture(params=["embedded", "real"])
def toxiproxy_url(request: pytest.FixtureRequest) -> str:
    if request.param == "real":
        url = os.environ.get("TOXIPROXY_URL")
        if not url:
            pytest.skip("TOXIPROXY_URL not set: no real Toxiproxy to compare with")
        return url.rstrip("/")
    return request.getfixturevalue("embedded").url


@pytest.fixture
def client(toxiproxy_url: str) -> Iterator[ToxiproxyClient]:
    with ToxiproxyClient(toxiproxy_url) as c:
        yield c


@pytest.fixture
def make_proxy(client: ToxiproxyClient) -> Iterator[Callable[..., Proxy]]:
    """Create proxies with unique names on 127.0.0.1:0; delete them after the test."""
    names: list[str] = []

    def make(upstream: tuple[str, int] | str, **kwargs: object) -> Proxy:
        name = f"t-{uuid.uuid4().hex[:10]}"
        target = upstream if isinstance(upstream, str) else f"{upstream[0]}:{upstream[1]}"
        proxy = client.create_proxy(name, listen=str(kwargs.get("listen", "127.0.0.1:0")), upstream=target)
        names.append(name)
        return proxy

    yield make
    for name in names:
        try:
            client.delete_proxy(name)
        except Exception:
            pass


# -- upstreams --------


class _EchoHandler(socketserver.BaseRequestHandler):
    """Echo everything; after echoing a chunk that contains ``bye``, close."""

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(10)
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    return
                sock.sendall(data)
                if b"bye" in data:
                    return
        except OSError:
            return


class _ThreadingServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False


@pytest.fixture(scope="session")
def echo_server() -> Iterator[tuple[str, int]]:
    server = _ThreadingServer(("127.0.0.1", 0), _EchoHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server.server_address[0], server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def http_server() -> Iterator[tuple[str, int]]:
    """A small aiohttp server in a thread: /hello and /big (64 KiB)."""

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello world")

    async def big(request: web.Request) -> web.Response:
        return web.Response(body=BIG_BODY)

    app = web.Application()
    app.router.add_get("/hello", hello)
    app.router.add_get("/big", big)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    host, port = runner.addresses[0][:2]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield host, port
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()
