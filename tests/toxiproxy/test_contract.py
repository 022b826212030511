"""Contract: what each toxic does, as a real TCP (and HTTP) client sees it.

Runs against the embedded server and, when ``TOXIPROXY_URL`` is set, against a real Toxiproxy, so
the two are held to the same behaviour. Timing bounds are generous on purpose (≥ 0.8× the effect,
< effect + 1 s): they tell "applied" from "not applied" without flaking on a slow machine.
"""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest
from toxiproxy_testlib import BIG_BODY, connect, recv_all, recv_exact, roundtrip

from harness.toxiproxy.client import ToxiproxyClient

SLACK = 1.0  # seconds a slow machine may add to any expected duration


def _closed_or_reset(sock: socket.socket) -> bool:
    """True if the peer closed or reset the connection (no data expected)."""
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True


# -- pass-through --------


def test_passthrough_keeps_bytes_intact(client: ToxiproxyClient, make_proxy, echo_server) -> None:
    proxy = make_proxy(echo_server)
    payload = bytes(range(256)) * 2048  # 512 KiB, needs a concurrent writer
    with connect(proxy) as sock:
        writer = threading.Thread(target=sock.sendall, args=(payload,))
        writer.start()
        data = recv_exact(sock, len(payload))
        writer.join(5)
    assert data == payload


def test_passthrough_overhead_is_small(client: ToxiproxyClient, make_proxy, echo_server) -> None:
    """Median round trip through the proxy adds well under a millisecond to a direct one."""
    proxy = make_proxy(echo_server)

    def median_rtt(sock: socket.socket) -> float:
        samples = sorted(roundtrip(sock, b"ping")[1] for _ in range(200))
        return samples[len(samples) // 2]

    with socket.create_connection(echo_server, timeout=3) as direct, connect(proxy) as proxied:
        direct.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        proxied.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        base, via = median_rtt(direct), median_rtt(proxied)
    assert via - base < 0.001, f"proxy adds {(via - base) * 1e6:.0f} µs per round trip"


# -- latency --------


@pytest.mark.parametrize("stream", ["downstream", "upstream"])
def test_latency_delays_each_chunk(client: ToxiproxyClient, make_proxy, echo_server, stream: str) -> None:
    proxy = make_proxy(echo_server)
    client.add_toxic(proxy.name, "latency", stream=stream, attributes={"latency": 100})
    with connect(proxy) as sock:
        data, elapsed = roundtrip(sock, b"hello")
    assert data == b"hello"
    assert 0.08 <= elapsed < 0.1 + SLACK


def test_latency_shifts_the_stream_and_keeps_gaps(client: ToxiproxyClient, make_proxy, echo_server) -> None:
    """Two chunks 50 ms apart arrive ~200 ms late each, not 200 ms then 400 ms."""
    proxy = make_proxy(echo_server)
    client.add_toxic(proxy.name, "latency", attributes={"latency": 200})
    with connect(proxy) as sock:
        start = time.perf_counter()
        sock.sendall(b"one")
        time.sleep(0.05)
        sock.sendall(b"two")
        assert recv_exact(sock, 3) == b"one"
        first = time.perf_counter() - start
        assert recv_exact(sock, 3) == b"two"
        second = time.perf_counter() - start
    assert first >= 0.16
    assert second >= 0.2
    assert second < 0.4, f"latency accumulated: second chunk after {second:.3f}s"


# -- bandwidth, slicer --------


def test_bandwidth_limits_throughput(client: ToxiproxyClient, make_proxy, echo_server) -> None:
    proxy = make_proxy(echo_server)
    client.add_toxic(proxy.name, "bandwidth", attributes={"rate": 100})  # 100 KB/s
    payload = b"x" * 20_000  # 0.2 s at 100 KB/s
    with connect(proxy) as sock:
        data, elapsed = roundtrip(sock, payload)
    assert data == payload
    assert 0.16 <= elapsed < 0.2 + SLACK


def test_slicer_splits_chunks(client: ToxiproxyClient, make_proxy, echo_server) -> None:
    proxy = make_proxy(echo_server)
    client.add_toxic(proxy.name, "slicer", attributes={"average_size": 100, "size_variation": 0, "delay": 10_000})
    payload = bytes(range(250)) * 4  # 1000 bytes → 10 slices, 10 ms apart
    with connect(proxy) as sock:
        start = time.perf_counter()
        sock.sendall(payload)
        reads, data = 0, b""
        while len(data) < len(payload):
            piece = sock.recv(65536)
            assert piece
            reads += 1
            data += piece
        elapsed = time.perf_counter() - start
    assert data == payload
    assert reads >= 4, f"only {reads} reads: not sliced"
    assert 0.07 <= elapsed < 0.1 + SLACK


# -- limit_data, reset_peer, timeout, slow_close --------


def test_limit_data_cuts_after_n_bytes(client: ToxiproxyClient, make_proxy, echo_server) -> None:
    proxy = make_proxy(echo_server)
    client.add_toxic(proxy.name, "limit_data", attributes={"bytes": 100})
    with connect(proxy) as sock:
        sock.sendall(b"a" * 60)
        assert recv_exact(sock, 60) == b"a" * 60
        sock.sendall(b"b" * 60)
        rest = recv_all(sock)
    assert rest == b"b" * 40


@pytest.mark.parametrize("timeout_ms", [0, 100])
def test_reset_peer_sends_rst(client: ToxiproxyClient, make_proxy, echo_server, timeout_ms: int) -> None:
    proxy = make_proxy(echo_server)
    client.add_toxic(proxy.name, "reset_peer", attributes={"timeout": timeout_ms})
    with connect(proxy) as sock:
        start = time.perf_counter()
        sock.sendall(b"hello")
        with pytest.raises(ConnectionResetError):
            sock.recv(1024)
            sock.recv(1024)  # in case the RST raced the first read
        elapsed = time.perf_counter() - start
    assert 0.8 * timeout_ms / 1000 <= elapsed < timeout_ms / 1000 + SLACK


def test_timeout_zero_is_a_black_hole_until_removed(client: ToxiproxyClient, make_proxy, echo_server) -> None:
    proxy = make_proxy(echo_server)
    toxic = client.add_toxic(proxy.name, "timeout", attributes={"timeout": 0})
    with connect(proxy) as sock:
        sock.sendall(b"hello")
        sock.settimeout(0.3)
        with pytest.raises(socket.timeout):
            sock.recv(1024)  # neither data nor a close
        client.remove_toxic(proxy.name, toxic.name)
        sock.settimeout(SLACK)
        assert _closed_or_reset(sock), "removing a timeout toxic closes the connection"


def test_timeout_closes_after_n_ms_and_drops_data(client: ToxiproxyClient, make_proxy, echo_server) -> None:
    proxy = make_proxy(echo_server)
    with connect(proxy) as sock:
        client.add_toxic(proxy.name, "timeout", attributes={"timeout": 150})
        start = time.perf_counter()
        sock.sendall(b"hello")
        data = recv_all(sock)
        elapsed = time.perf_counter() - start
    assert data == b""
    assert 0.12 <= elapsed < 0.15 + SLACK


def test_slow_close_delays_the_close(client: ToxiproxyClient, make_proxy, echo_server) -> None:
    proxy = make_proxy(echo_server)
    client.add_toxic(proxy.name, "slow_close", attributes={"delay": 200})
    with connect(proxy) as sock:
        start = time.perf_counter()
        sock.sendall(b"bye")  # the echo upstream answers, then closes
        assert recv_exact(sock, 3) == b"bye"
        got_data = time.perf_counter() - start
        assert sock.recv(1024) == b""
        closed = time.perf_counter() - start
    assert got_data < 0.15
    assert 0.16 <= closed < 0.2 + SLACK


# -- down, live toxics, toxicity --------


def test_disabled_proxy_refuses_and_drops_connections(client: ToxiproxyClient, make_proxy, echo_server) -> None:
    proxy = make_proxy(echo_server)
    with connect(proxy) as live:
        assert roundtrip(live, b"hi")[0] == b"hi"
        client.disable(proxy.name)
        assert _closed_or_reset(live)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((proxy.host, proxy.port), timeout=1).close()
    again = client.enable(proxy.name)
    assert again.listen == proxy.listen  # same port
    with connect(proxy) as sock:
        assert roundtrip(sock, b"back")[0] == b"back"


def test_toxics_apply_to_live_connections(client: ToxiproxyClient, make_proxy, echo_server) -> None:
    proxy = make_proxy(echo_server)
    with connect(proxy) as sock:
        assert roundtrip(sock, b"a")[1] < 0.1
        with client.toxic(proxy.name, "latency", attributes={"latency": 150}) as toxic:
            data, slow = roundtrip(sock, b"b")
            assert data == b"b" and 0.12 <= slow < 0.15 + SLACK
            client.update_toxic(proxy.name, toxic.name, attributes={"latency": 300})
            assert 0.24 <= roundtrip(sock, b"c")[1] < 0.3 + SLACK
        assert client.toxics(proxy.name) == []
        data, fast = roundtrip(sock, b"d")
    assert data == b"d" and fast < 0.1


def test_toxicity_zero_never_applies(client: ToxiproxyClient, make_proxy, echo_server) -> None:
    proxy = make_proxy(echo_server)
    client.add_toxic(proxy.name, "latency", toxicity=0.0, attributes={"latency": 300})
    for _ in range(3):
        with connect(proxy) as sock:
            assert roundtrip(sock, b"x")[1] < 0.2


# -- HTTP through the proxy --------


@pytest.fixture
def http_proxy(make_proxy, http_server):
    proxy = make_proxy(http_server)
    with httpx.Client(base_url=f"http://{proxy.host}:{proxy.port}", timeout=3, trust_env=False) as http:
        yield proxy, http


def test_http_passthrough_and_latency(client: ToxiproxyClient, http_proxy) -> None:
    proxy, http = http_proxy
    assert http.get("/hello").text == "hello world"
    assert http.get("/big").content == BIG_BODY
    with client.toxic(proxy.name, "latency", attributes={"latency": 100}):
        start = time.perf_counter()
        assert http.get("/hello").text == "hello world"  # the pooled connection is slowed too
        assert 0.08 <= time.perf_counter() - start < 0.1 + SLACK


def test_http_bandwidth(client: ToxiproxyClient, http_proxy) -> None:
    proxy, http = http_proxy
    with client.toxic(proxy.name, "bandwidth", attributes={"rate": 320}):  # 64 KiB ≈ 0.2 s
        start = time.perf_counter()
        assert http.get("/big").content == BIG_BODY
        assert 0.16 <= time.perf_counter() - start < 0.2 + SLACK


def test_http_limit_data_truncates_response(client: ToxiproxyClient, http_proxy) -> None:
    proxy, http = http_proxy
    with client.toxic(proxy.name, "limit_data", attributes={"bytes": 1000}):
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            http.get("/big")


def test_http_reset_peer(client: ToxiproxyClient, http_proxy) -> None:
    proxy, http = http_proxy
    with client.toxic(proxy.name, "reset_peer", attributes={"timeout": 0}):
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
            http.get("/hello")


def test_http_black_hole_times_out(client: ToxiproxyClient, http_proxy) -> None:
    proxy, http = http_proxy
    with client.toxic(proxy.name, "timeout", attributes={"timeout": 0}):
        with pytest.raises(httpx.ReadTimeout):
            http.get("/hello", timeout=0.3)


def test_http_down_refuses(client: ToxiproxyClient, http_proxy) -> None:
    proxy, http = http_proxy
    with client.down(proxy.name):
        with pytest.raises(httpx.ConnectError):
            http.get("/hello")
    assert http.get("/hello").text == "hello world"


def test_unreachable_upstream_closes_the_client(client: ToxiproxyClient, make_proxy) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        proxy = make_proxy(("127.0.0.1", closed.getsockname()[1]))
        with connect(proxy) as sock:
            assert _closed_or_reset(sock)


def test_changing_upstream_restarts_the_proxy(client: ToxiproxyClient, make_proxy, echo_server, http_server):
    proxy = make_proxy(http_server)
    with connect(proxy) as old:
        moved = client.update_proxy(proxy.name, upstream=f"{echo_server[0]}:{echo_server[1]}")
        assert moved.upstream.endswith(f":{echo_server[1]}") and moved.enabled
        assert _closed_or_reset(old)  # live connections are dropped by the restart
    with connect(moved) as sock:
        assert roundtrip(sock, b"echo")[0] == b"echo"
