"""Socket helpers for the Toxiproxy tests (a plain module: conftest is not importable)."""

from __future__ import annotations

import socket
import time

from harness.toxiproxy.client import Proxy

IO_TIMEOUT = 3.0  # no socket operation in these tests may block longer than this
BIG_BODY = b"0123456789abcdef" * 4096  # 64 KiB, like Toxiproxy's e2e /test1


# -- socket helpers --------


def connect(proxy: Proxy, timeout: float = IO_TIMEOUT) -> socket.socket:
    sock = socket.create_connection((proxy.host, proxy.port), timeout=timeout)
    sock.settimeout(timeout)
    return sock


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        data = sock.recv(n - len(buf))
        if not data:
            break
        buf += data
    return bytes(buf)


def recv_all(sock: socket.socket, limit: int = 10 * 1024 * 1024) -> bytes:
    """Read until EOF (bounded by ``limit`` bytes and the socket timeout)."""
    buf = bytearray()
    while len(buf) < limit:
        data = sock.recv(65536)
        if not data:
            break
        buf += data
    return bytes(buf)


def roundtrip(sock: socket.socket, payload: bytes) -> tuple[bytes, float]:
    """Send to the echo upstream and read the same number of bytes back; returns (data, seconds)."""
    start = time.perf_counter()
    sock.sendall(payload)
    data = recv_exact(sock, len(payload))
    return data, time.perf_counter() - start
