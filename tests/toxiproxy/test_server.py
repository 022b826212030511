"""The embedded server's own lifecycle: start/stop, threads, no leaks, CLI entry points."""

from __future__ import annotations

import asyncio
import json
import random
import socket
import time

import pytest

from harness.toxiproxy import AsyncToxiproxyClient, ToxiproxyClient, ToxiproxyServer, main
from harness.toxiproxy.server import serve_forever
from harness.toxiproxy.toxics import TOXICS, Chunk, SlicerToxic


async def _echo_server() -> tuple[asyncio.AbstractServer, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


@pytest.mark.asyncio
async def test_stop_with_live_connections_is_prompt_and_leaks_nothing() -> None:
    echo, echo_port = await _echo_server()
    server = ToxiproxyServer(seed=7)
    url = await server.start(port=0)
    async with AsyncToxiproxyClient(url) as c:
        proxy = await c.create_proxy("live", listen="127.0.0.1:0", upstream=f"127.0.0.1:{echo_port}")
        await c.add_toxic("live", "timeout", attributes={"timeout": 0})  # connections hang forever
        await c.add_toxic("live", "latency", stream="upstream", attributes={"latency": 10_000})
    clients = [await asyncio.open_connection(proxy.host, proxy.port) for _ in range(5)]
    for _, writer in clients:
        writer.write(b"stuck")
        await writer.drain()
    await asyncio.sleep(0.05)
    assert len(server.collection.proxies["live"].connections) == 5

    start = time.perf_counter()
    await server.stop()
    assert time.perf_counter() - start < 1.0

    for reader, writer in clients:  # every client sees its connection end
        try:
            assert await asyncio.wait_for(reader.read(), 2) == b""
        except ConnectionResetError:
            pass
        writer.close()
    with pytest.raises(OSError):
        await asyncio.open_connection(proxy.host, proxy.port)
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", int(url.rsplit(":", 1)[1]))
    echo.close()
    await echo.wait_closed()
    for _ in range(10):
        await asyncio.sleep(0)
    leaked = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert leaked == []


@pytest.mark.asyncio
async def test_async_context_manager_and_in_process_populate() -> None:
    echo, echo_port = await _echo_server()
    async with ToxiproxyServer() as server:
        await server.populate([{"name": "p", "listen": "127.0.0.1:0", "upstream": f"127.0.0.1:{echo_port}"}])
        proxy = server.collection.get("p")
        host, port = proxy.listen.rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"ping")
        assert await asyncio.wait_for(reader.readexactly(4), 2) == b"ping"
        writer.close()
    echo.close()
    await echo.wait_closed()


def test_run_in_thread_start_stop() -> None:
    handle = ToxiproxyServer.run_in_thread()
    try:
        with ToxiproxyClient(handle.url) as c:
            assert c.version().endswith("routechaos")
    finally:
        start = time.perf_counter()
        handle.stop()
        handle.stop()  # idempotent
        assert time.perf_counter() - start < 2
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", int(handle.url.rsplit(":", 1)[1])), timeout=1).close()


def test_api_port_in_use_fails_to_start(embedded) -> None:
    port = int(embedded.url.rsplit(":", 1)[1])
    with pytest.raises(OSError):
        ToxiproxyServer.run_in_thread(port=port)


@pytest.mark.asyncio
async def test_serve_forever_with_config(tmp_path) -> None:
    echo, echo_port = await _echo_server()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        api_port = s.getsockname()[1]
    config = tmp_path / "proxies.json"
    config.write_text(json.dumps([{"name": "cfg", "listen": "127.0.0.1:0", "upstream": f"127.0.0.1:{echo_port}"}]))
    task = asyncio.create_task(serve_forever("127.0.0.1", api_port, seed=1, config=str(config)))
    try:
        async with AsyncToxiproxyClient(f"http://127.0.0.1:{api_port}", timeout=1) as c:
            for _ in range(100):  # bounded wait for startup
                try:
                    proxies = await c.proxies()
                    break
                except Exception:
                    await asyncio.sleep(0.02)
            else:
                pytest.fail("serve_forever did not start")
        assert list(proxies) == ["cfg"]
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    echo.close()
    await echo.wait_closed()


def test_main_help(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    assert "--port" in capsys.readouterr().out


def test_toxic_registry_and_slicer_cuts() -> None:
    assert set(TOXICS) == {
        "noop",
        "latency",
        "bandwidth",
        "slicer",
        "limit_data",
        "reset_peer",
        "timeout",
        "slow_close",
    }
    slicer = SlicerToxic(average_size=10, size_variation=3)
    cuts = slicer.cuts(100, random.Random(0))
    assert cuts[-1] == 100
    sizes = [b - a for a, b in zip([0, *cuts], cuts, strict=False)]
    assert all(1 <= s <= 22 for s in sizes) and sum(sizes) == 100
    with pytest.raises(ValueError):
        SlicerToxic.from_attributes({"average_size": 0})
    with pytest.raises(ValueError):
        TOXICS["latency"].from_attributes({"latency": "slow"})
    assert Chunk(b"x", 0.0).data == b"x"
