"""toxiproxy-python (douglas/toxiproxy-python 0.1.1) driving the embedded server.

Quirks of that client, read from its source, that shape these tests:

* The API address is class-level state (``APIConsumer.host``/``port``, default 127.0.0.1:8474),
  set for every instance by ``Toxiproxy().update_api_consumer(host, port)``; the fixture restores it.
* ``Toxiproxy.create`` lists all proxies first and raises ``ProxyExists`` itself, so a duplicate
  never reaches the server's 409; ``listen`` defaults to ``127.0.0.1:0``.
* ``Toxiproxy.populate`` is client-side (create/destroy calls, never ``POST /populate``), requires
  ``listen`` in every entry, and returns only the proxies it (re)created. Because the server
  reports the real port, an entry with ``listen: 127.0.0.1:0`` differs from the existing proxy on
  every call and is destroyed and re-created.
* ``Proxy.add_toxic`` returns None; there is no way to update a toxic (only destroy and re-add).
* ``Toxiproxy.version()`` returns the raw body (bytes), not the version string.
* It uses ``requests``, which honours ``HTTP_PROXY``; ``NO_PROXY`` must cover 127.0.0.1 if set.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator

import pytest
import toxiproxy
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import NotFound, ProxyExists
from toxiproxy_testlib import roundtrip

from harness.toxiproxy import ThreadedToxiproxyServer


@pytest.fixture
def tp(embedded: ThreadedToxiproxyServer) -> Iterator[toxiproxy.Toxiproxy]:
    saved = APIConsumer.host, APIConsumer.port
    server = toxiproxy.Toxiproxy()
    host, port = embedded.url.removeprefix("http://").rsplit(":", 1)
    server.update_api_consumer(host, int(port))
    names_before = set(server.proxies())
    yield server
    for name, proxy in server.proxies().items():
        if name not in names_before:
            proxy.destroy()
    APIConsumer.host, APIConsumer.port = saved


def _name() -> str:
    return f"py-{uuid.uuid4().hex[:8]}"


def test_running_and_version(tp: toxiproxy.Toxiproxy) -> None:
    assert tp.running() is True
    assert b'"version"' in tp.version()


def test_create_toxics_destroy(tp: toxiproxy.Toxiproxy, echo_server) -> None:
    name = _name()
    proxy = tp.create(upstream=f"127.0.0.1:{echo_server[1]}", name=name)
    assert proxy.name == name and proxy.enabled is True
    assert proxy.listen.startswith("127.0.0.1:") and not proxy.listen.endswith(":0")
    assert tp.get_proxy(name).listen == proxy.listen
    with pytest.raises(ProxyExists):
        tp.create(upstream=f"127.0.0.1:{echo_server[1]}", name=name)

    proxy.add_toxic(type="latency", attributes={"latency": 120})
    toxics = proxy.toxics()
    assert list(toxics) == ["latency_downstream"]
    toxic = proxy.get_toxic("latency_downstream")
    assert (toxic.type, toxic.stream, toxic.toxicity) == ("latency", "downstream", 1)
    assert toxic.attributes == {"latency": 120, "jitter": 0}
    port = int(proxy.listen.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
        sock.settimeout(3)
        start = time.perf_counter()
        sock.sendall(b"hi")
        assert sock.recv(10) == b"hi"
        assert time.perf_counter() - start >= 0.09

    assert proxy.destroy_toxic("latency_downstream") is True
    assert proxy.toxics() == {}
    with pytest.raises(NotFound):
        proxy.destroy_toxic("latency_downstream")

    assert tp.destroy(proxy) is True
    assert tp.get_proxy(name) is None


def test_add_toxic_upstream_with_name_and_toxicity(tp: toxiproxy.Toxiproxy, echo_server) -> None:
    proxy = tp.create(upstream=f"127.0.0.1:{echo_server[1]}", name=_name())
    proxy.add_toxic(name="slow", type="bandwidth", stream="upstream", toxicity=0.5, attributes={"rate": 10})
    toxic = proxy.get_toxic("slow")
    assert (toxic.type, toxic.stream, toxic.toxicity, toxic.attributes) == (
        "bandwidth",
        "upstream",
        0.5,
        {"rate": 10},
    )


def test_disable_enable_and_down(tp: toxiproxy.Toxiproxy, echo_server) -> None:
    proxy = tp.create(upstream=f"127.0.0.1:{echo_server[1]}", name=_name())
    port = int(proxy.listen.rsplit(":", 1)[1])
    proxy.disable()
    assert proxy.enabled is False and tp.get_proxy(proxy.name).enabled is False
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    proxy.enable()
    assert tp.get_proxy(proxy.name).enabled is True
    with proxy.down():
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
        sock.settimeout(3)
        sock.sendall(b"up")
        assert sock.recv(10) == b"up"


def test_reset(tp: toxiproxy.Toxiproxy, echo_server) -> None:
    proxy = tp.create(upstream=f"127.0.0.1:{echo_server[1]}", name=_name())
    proxy.add_toxic(type="timeout", attributes={"timeout": 0})
    proxy.disable()
    assert tp.reset() is True
    fresh = tp.get_proxy(proxy.name)
    assert fresh.enabled is True and fresh.toxics() == {}


def test_populate(tp: toxiproxy.Toxiproxy, echo_server) -> None:
    a, b = _name(), _name()
    upstream = f"127.0.0.1:{echo_server[1]}"
    created = tp.populate(
        [
            {"name": a, "upstream": upstream, "listen": "127.0.0.1:0"},
            {"name": b, "upstream": upstream, "listen": "127.0.0.1:0", "enabled": False},
        ]
    )
    assert sorted(p.name for p in created) == sorted([a, b])
    assert tp.get_proxy(a).enabled is True and tp.get_proxy(b).enabled is False
    # With the real listen address the entry matches and is left alone (nothing returned).
    same = tp.get_proxy(a)
    assert tp.populate([{"name": a, "upstream": upstream, "listen": same.listen}]) == []
    assert tp.get_proxy(a).listen == same.listen


def test_proxy_made_by_toxiproxy_python_carries_traffic(tp: toxiproxy.Toxiproxy, echo_server) -> None:
    proxy = tp.create(upstream=f"127.0.0.1:{echo_server[1]}", name=_name())
    with socket.create_connection(("127.0.0.1", int(proxy.listen.rsplit(":", 1)[1])), timeout=3) as sock:
        sock.settimeout(3)
        assert roundtrip(sock, b"hello")[0] == b"hello"
