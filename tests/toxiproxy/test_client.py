"""The typed client, against the embedded server and (when given) a real Toxiproxy."""

from __future__ import annotations

import socket
import uuid

import pytest

from harness.toxiproxy.client import (
    AsyncToxiproxyClient,
    BadRequest,
    Conflict,
    NotFound,
    Proxy,
    Toxic,
    ToxiproxyClient,
    ToxiproxyError,
    ToxiproxyUnavailable,
)


def test_typed_proxy_and_toxic_round_trip(client: ToxiproxyClient, echo_server) -> None:
    name = f"c-{uuid.uuid4().hex[:8]}"
    upstream = f"127.0.0.1:{echo_server[1]}"
    proxy = client.create_proxy(name, listen="127.0.0.1:0", upstream=upstream)
    try:
        assert isinstance(proxy, Proxy) and proxy.enabled and proxy.toxics == ()
        assert proxy.host == "127.0.0.1" and proxy.port > 0
        assert client.get_proxy(name) == proxy
        assert client.proxies()[name] == proxy
        assert client.version()

        toxic = client.add_toxic(name, "latency", attributes={"latency": 5})
        assert toxic == Toxic("latency_downstream", "latency", "downstream", 1.0, {"latency": 5, "jitter": 0})
        assert client.get_toxic(name, toxic.name) == toxic
        assert client.get_proxy(name).toxics == (toxic,)
        updated = client.update_toxic(name, toxic.name, attributes={"latency": 7}, toxicity=0.5)
        assert updated.attributes["latency"] == 7 and updated.toxicity == 0.5
        client.remove_toxic(name, toxic.name)
        assert client.toxics(name) == []

        with client.toxic(name, "timeout", stream="upstream", attributes={"timeout": 0}, name="hole") as t:
            assert t.name == "hole" and t.stream == "upstream"
            assert [x.name for x in client.toxics(name)] == ["hole"]
        assert client.toxics(name) == []

        assert client.disable(name).enabled is False
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((proxy.host, proxy.port), timeout=1).close()
        assert client.enable(name).enabled is True
        with client.down(name):
            assert client.get_proxy(name).enabled is False
        assert client.get_proxy(name).enabled is True

        populated = client.populate([{"name": name, "listen": proxy.listen, "upstream": upstream}])
        assert [p.name for p in populated] == [name]
        client.add_toxic(name, "noop")
        client.reset()
        assert client.toxics(name) == []
    finally:
        client.delete_proxy(name)


def test_errors_are_typed(client: ToxiproxyClient, echo_server) -> None:
    name = f"c-{uuid.uuid4().hex[:8]}"
    client.create_proxy(name, listen="127.0.0.1:0", upstream=f"127.0.0.1:{echo_server[1]}")
    try:
        with pytest.raises(Conflict) as conflict:
            client.create_proxy(name, listen="127.0.0.1:0", upstream=f"127.0.0.1:{echo_server[1]}")
        assert conflict.value.status == 409 and conflict.value.message == "proxy already exists"
        with pytest.raises(BadRequest, match="invalid toxic type"):
            client.add_toxic(name, "nonsense")
        with pytest.raises(NotFound, match="toxic not found"):
            client.remove_toxic(name, "nope")
        with pytest.raises(NotFound, match="proxy not found"):
            client.get_proxy(f"{name}-missing")
    finally:
        client.delete_proxy(name)
    assert issubclass(NotFound, ToxiproxyError) and issubclass(Conflict, ToxiproxyError)


def test_unreachable_server() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        with ToxiproxyClient(f"http://127.0.0.1:{port}", timeout=1) as c:
            with pytest.raises(ToxiproxyUnavailable):
                c.version()


@pytest.mark.asyncio
async def test_async_client(toxiproxy_url: str, echo_server) -> None:
    name = f"a-{uuid.uuid4().hex[:8]}"
    async with AsyncToxiproxyClient(toxiproxy_url) as c:
        assert await c.version()
        proxy = await c.create_proxy(name, listen="127.0.0.1:0", upstream=f"127.0.0.1:{echo_server[1]}")
        try:
            assert (await c.proxies())[name] == proxy
            async with c.toxic(name, "latency", attributes={"latency": 1}) as toxic:
                assert (await c.toxics(name)) == [toxic]
                await c.update_toxic(name, toxic.name, attributes={"latency": 2})
                assert (await c.get_toxic(name, toxic.name)).attributes["latency"] == 2
            assert await c.toxics(name) == []
            assert (await c.disable(name)).enabled is False
            assert (await c.enable(name)).enabled is True
            assert (await c.update_proxy(name, enabled=True)).listen == proxy.listen
            with pytest.raises(NotFound):
                await c.remove_toxic(name, "nope")
            await c.reset()
        finally:
            await c.delete_proxy(name)
